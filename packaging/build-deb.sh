#!/usr/bin/env bash
# Builds the Debian package of satellite: the release binary, then what is generated from it
# (manual pages and shell completions, from the clap definition, so they never drift from the
# CLI) and the packaged unit, then `cargo deb --no-build`. Prints the .deb's path last.
#
# Needs cargo-deb (`cargo install cargo-deb --locked`) and dpkg-dev (dpkg-shlibdeps, for the
# package's library dependencies). Generating at packaging time rather than in a build.rs keeps
# every other build as fast as before.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
assets="$root/target/deb-assets"

cargo build --release --locked --bin satellite >&2
bin="$target_dir/release/satellite"

rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"

# Manual pages, compressed as Debian policy asks (-n: no name or time stamp, reproducible).
"$bin" man-pages --out-dir "$assets/man" >&2
gzip -9n "$assets"/man/*.1

"$bin" completions bash > "$assets/completions/satellite.bash"
"$bin" completions zsh > "$assets/completions/_satellite"
"$bin" completions fish > "$assets/completions/satellite.fish"

# The unit of the repository names the binary where a hand install puts it (/usr/local/bin);
# the package puts it in /usr/bin. Everything else is the same file.
sed 's|^ExecStart=/usr/local/bin/satellite |ExecStart=/usr/bin/satellite |' \
  systemd/satellite.service > "$assets/satellite.service"
if ! grep -q '^ExecStart=/usr/bin/satellite ' "$assets/satellite.service"; then
  echo "build-deb: systemd/satellite.service has no ExecStart=/usr/local/bin/satellite line to adapt" >&2
  exit 1
fi

mkdir -p "$target_dir/debian"
# --strip: the release profile keeps line tables for backtraces in development; the installed
# binary does without them (a fifth of the size).
cargo deb --no-build --locked --strip --output "$target_dir/debian/" >&2
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
deb=$(ls -t "$target_dir"/debian/satellite_"$version"-*_"$(dpkg --print-architecture)".deb | head -1)
echo "$deb"
