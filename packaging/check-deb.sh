#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine with dpkg, checks what an operator
# relies on, and removes it again (CI runs it from .ci/run). Run it as root on a Debian host
# where satellite is not installed: it installs and purges the package for real.
#
# Checked: the binary and its version, the manual pages (`man -w`), the completions, the
# conffile, the unit (`systemd-analyze verify`), the system user and group; then, with the
# packaged configuration, a daemon started the way the unit starts it, and `satellite status`
# with no options as root, as a member of the `satellite` group, and refused for anyone else
# with the fix named; finally that removing and purging leave no binary and no conffile.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

say() { printf 'check-deb: %s\n' "$*"; }
fail() { printf 'check-deb: FAILED: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then fail "run as root (it installs the package with dpkg)"; fi
if dpkg-query -W -f='${Status}' satellite 2>/dev/null | grep -q 'ok installed'; then
  fail "satellite is already installed here; this check installs and purges it, so run it elsewhere"
fi

# Tools: cargo-deb from crates.io (skipped when present, so a warm machine pays nothing),
# dpkg-dev for dpkg-shlibdeps, man-db for `man -w`, systemd for systemd-analyze.
if ! command -v cargo-deb >/dev/null 2>&1; then
  cargo install cargo-deb --locked
fi
missing=()
command -v dpkg-shlibdeps >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v man >/dev/null 2>&1 || missing+=(man-db)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v adduser >/dev/null 2>&1 || missing+=(adduser)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

deb=$(packaging/build-deb.sh | tail -1)
say "built $deb ($(du -h "$deb" | cut -f1))"

work=$(mktemp -d)
daemon_pid=""
operator=satellite-check-operator
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  if getent passwd "$operator" >/dev/null; then userdel "$operator" >/dev/null 2>&1 || true; fi
  if dpkg-query -W -f='${Status}' satellite 2>/dev/null | grep -q 'ok installed'; then
    dpkg -P satellite >/dev/null 2>&1 || true
  fi
  rm -rf "$work" /run/satellite
}
trap cleanup EXIT

DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"

# The files.
[ "$(command -v satellite)" = /usr/bin/satellite ] || fail "satellite is not /usr/bin/satellite"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
satellite --version | grep -qx "satellite $version" || fail "satellite --version: $(satellite --version)"
man -w satellite >/dev/null || fail "man -w satellite finds no page"
man -w satellite-status >/dev/null || fail "man -w satellite-status finds no page"
unit=/usr/lib/systemd/system/satellite.service
[ -f "$unit" ] || unit=/lib/systemd/system/satellite.service
[ -f "$unit" ] || fail "no satellite.service under /usr/lib/systemd/system or /lib/systemd/system"
grep -q '^ExecStart=/usr/bin/satellite ' "$unit" || fail "the unit does not run /usr/bin/satellite"
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify complains: $verify"
dpkg-query -W -f='${Conffiles}\n' satellite | grep -q ' /etc/satellite/satellite.toml ' \
  || fail "/etc/satellite/satellite.toml is not a conffile"
for f in /usr/share/bash-completion/completions/satellite /usr/share/zsh/vendor-completions/_satellite \
         /usr/share/fish/vendor_completions.d/satellite.fish; do
  grep -q 'reserve' "$f" || fail "$f does not complete the subcommands"
done
bash -c 'source /usr/share/bash-completion/completions/satellite && complete -p satellite' >/dev/null \
  || fail "the bash completion does not register for satellite"
for f in README.md copyright examples/satellite.toml docs/sync.md; do
  [ -f "/usr/share/doc/satellite/$f" ] || fail "/usr/share/doc/satellite/$f is missing"
done
satellite --config /etc/satellite/satellite.toml config check >/dev/null \
  || fail "the packaged configuration does not pass config check"
getent passwd satellite >/dev/null || fail "the postinst created no satellite user"
getent group satellite >/dev/null || fail "the postinst created no satellite group"
say "files, manual pages, completions, unit, conffile, user: ok"

# No daemon yet: the CLI names the places it looked at and how to point it elsewhere.
if out=$(cd "$work" && satellite status 2>&1); then fail "status succeeded with no daemon: $out"; fi
grep -q '/run/satellite/admin.sock' <<<"$out" || fail "the error does not name /run/satellite/admin.sock: $out"
grep -q 'SATELLITE_SOCKET' <<<"$out" || fail "the error does not name SATELLITE_SOCKET: $out"

# A daemon started as the unit starts it (there is no systemd here): user and group
# satellite, the runtime directory /run/satellite of mode 0750, the packaged configuration.
# Only the data directory differs (a temporary one), devices get a free port and the HTTPS
# admin API is off, so nothing on this machine's ports is disturbed.
install -d -m 0750 -o satellite -g satellite /run/satellite
install -d -m 0700 -o satellite -g satellite "$work/state"
sed -e "s|^data_dir = .*|data_dir = \"$work/state\"|" \
    -e "s|^listen = \"127.0.0.1:8443\"|listen = \"127.0.0.1:0\"|" \
    -e "s|^\[admin\]|[admin]\nlisten = \"\"|" \
    /etc/satellite/satellite.toml > "$work/satellite.toml"
chmod 0644 "$work/satellite.toml"
chmod 0755 "$work"
(cd / && exec setpriv --reuid=satellite --regid=satellite --init-groups \
   satellite --config "$work/satellite.toml" serve) > "$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 300); do
  [ -S /run/satellite/admin.sock ] && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon.log" >&2; fail "the daemon exited"; }
  sleep 0.1
done
[ -S /run/satellite/admin.sock ] || { cat "$work/daemon.log" >&2; fail "no socket after 30 s"; }
mode=$(stat -c '%a %G' /run/satellite/admin.sock)
[ "$mode" = "660 satellite" ] || fail "the socket has mode and group '$mode', not '660 satellite'"

(cd "$work" && satellite status >/dev/null) || fail "satellite status as root with no options"
useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --groups satellite "$operator"
(cd / && setpriv --reuid="$operator" --regid="$operator" --init-groups satellite status >/dev/null) \
  || fail "satellite status as a member of the satellite group"
if out=$(cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups satellite status 2>&1); then
  fail "satellite status succeeded for a user outside the satellite group"
fi
grep -q 'usermod -aG satellite' <<<"$out" || fail "the refusal does not name the fix: $out"
say "satellite status with no options: root ok, group member ok, others refused with the fix named"

kill "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=""
userdel "$operator"

# Removal keeps the conffile, purge removes it; the binary goes with removal.
dpkg -r satellite >/dev/null
[ ! -e /usr/bin/satellite ] || fail "/usr/bin/satellite is still there after dpkg -r"
[ -f /etc/satellite/satellite.toml ] || fail "dpkg -r removed the conffile (only purge should)"
dpkg -P satellite >/dev/null
[ ! -e /etc/satellite/satellite.toml ] || fail "dpkg -P left /etc/satellite/satellite.toml"
[ ! -e /etc/systemd/system/multi-user.target.wants/satellite.service ] \
  || fail "dpkg -P left the unit enabled"
hash -r
! command -v satellite >/dev/null 2>&1 || fail "a satellite command is still on PATH: $(command -v satellite)"
say "removed and purged: ok"
