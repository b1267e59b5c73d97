//! Tests of `config`.

use std::ffi::OsStr;
use std::time::Duration;

use super::validate::MAX_DURATION_SECS;
use super::*;

const FIXED_DIR: &str = "/var/lib/satellite";

fn resolve(toml: &str) -> Result<Settings, ConfigError> {
    Config::from_toml_str(toml)?.resolve_with_state_directory(Some(OsStr::new(FIXED_DIR)))
}

fn error(toml: &str) -> String {
    match resolve(toml) {
        Ok(settings) => panic!("expected an error for {toml:?}, got {settings:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn empty_config_gives_the_embedded_defaults() {
    let s = resolve("").expect("empty config resolves");
    assert_eq!(s.data_dir, PathBuf::from(FIXED_DIR));
    assert_eq!(s.device.listen, "127.0.0.1:8443".parse().expect("addr"));
    assert_eq!(s.device.max_connections, 10_000);
    assert_eq!(s.device.max_body_bytes, 65_536);
    assert_eq!(s.device.request_timeout, Duration::from_secs(30));
    assert_eq!(s.device.handshake_timeout, Duration::from_secs(10));
    assert_eq!(s.device.max_connections_per_address, 256);
    assert_eq!(s.device.body_timeout, Duration::from_secs(20));
    assert_eq!(s.device.header_timeout, Duration::from_secs(10));
    assert_eq!(s.device.idle_timeout, Duration::from_secs(30));
    assert_eq!(s.device.http2_keepalive_interval, Duration::from_secs(30));
    assert_eq!(s.device.http2_keepalive_timeout, Duration::from_secs(10));
    assert_eq!(
        s.admin.listen,
        Some("127.0.0.1:8444".parse().expect("addr"))
    );
    assert_eq!(s.admin.socket, PathBuf::from(FIXED_DIR).join("admin.sock"));
    assert_eq!(s.admin.socket_mode, 0o600);
    assert_eq!(s.admin.max_body_bytes, 1_048_576);
    assert_eq!(s.admin.request_timeout, Duration::from_secs(300));
    assert_eq!(s.admin.body_timeout, Duration::from_secs(30));
    assert_eq!(s.log.level, "info");
    assert_eq!(s.log.format, LogFormat::Text);
    assert_eq!(s.timers.certificate_validity, time::Duration::days(365));
    assert_eq!(s.timers.renew_after, time::Duration::days(180));
    assert_eq!(s.timers.report_interval, time::Duration::days(30));
    assert_eq!(s.timers.authorization_valid, time::Duration::days(90));
    assert_eq!(s.timers.deregister_after, time::Duration::days(90));
    assert_eq!(s.timers.clock_skew, time::Duration::hours(1));
    assert_eq!(s.timers.sweep_interval, Duration::from_secs(60));
    assert_eq!(s.shutdown.drain_timeout, Duration::from_secs(10));
    assert_eq!(s.tls, None);
    assert_eq!(s.trusted_license_keys.iter().count(), 0);
    // No file at all is the same as an empty file.
    let none = Config::default()
        .resolve_with_state_directory(Some(OsStr::new(FIXED_DIR)))
        .expect("default config resolves");
    assert_eq!(none, s);
}

#[test]
fn shipped_reference_config_matches_the_defaults() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/satellite.toml"
    ));
    let shipped = Config::load(path)
        .and_then(|c| c.resolve_with_state_directory(Some(OsStr::new(FIXED_DIR))))
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(shipped, resolve("").expect("empty config resolves"));
}

#[test]
fn trusted_license_keys_are_validated_naming_the_entry() {
    let key = crate::protocol::sync::SatelliteKey::from_seed(&[7; 32]).public_key_hex();
    let s = resolve(&format!(
        "[sync]\ntrusted_license_keys = [ {{ name = \"portal\", key = \"{key}\" }} ]\n"
    ))
    .expect("resolves");
    let (_, peer) = s.trusted_license_keys.iter().next().expect("one key");
    assert_eq!(peer.name.as_str(), "portal");
    let msg = error(&format!(
        "[sync]\ntrusted_license_keys = [ {{ name = \"a\", key = \"{key}\" }}, \
         {{ name = \"portal\", key = \"abc\" }} ]\n"
    ));
    assert!(msg.contains("sync.trusted_license_keys"), "{msg}");
    assert!(msg.contains("entry 1 (`portal`)"), "{msg}");
    let msg = error("[sync]\ntrusted_license_keys = [ { name = \"a\" } ]\n");
    assert!(msg.contains("key"), "{msg}");
}

#[test]
fn data_dir_falls_back_to_the_working_directory_without_systemd() {
    let s = Config::default()
        .resolve_with_state_directory(None)
        .expect("resolves");
    assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    let s = Config::default()
        .resolve_with_state_directory(Some(OsStr::new("/a:/b")))
        .expect("resolves");
    assert_eq!(s.data_dir, PathBuf::from("/a"));
    let s = resolve("data_dir = \"/srv/sat\"\n[admin]\nsocket = \"/run/sat/admin.sock\"")
        .expect("resolves");
    assert_eq!(s.data_dir, PathBuf::from("/srv/sat"));
    assert_eq!(s.admin.socket, PathBuf::from("/run/sat/admin.sock"));
}

#[test]
fn typo_in_a_key_is_refused_naming_it() {
    let msg = error("[device]\nlisen = \"0.0.0.0:8443\"\n");
    assert!(msg.contains("`lisen`"), "{msg}");
    assert!(msg.contains("listen"), "lists the expected keys: {msg}");
    assert!(msg.starts_with("config (inline): "), "{msg}");
    let msg = error("[devcie]\n");
    assert!(msg.contains("`devcie`"), "{msg}");
    let msg = error("# comment\ndata_dir = 5\n");
    assert!(msg.starts_with("config (inline): `data_dir`: "), "{msg}");
    let msg = error("[log]\nlevel = \"info\"\nlevel = \"debug\"\n");
    assert!(msg.contains("line 3"), "{msg}");
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("satellite.toml");
    std::fs::write(&path, "[timers]\nrenew_after = \"400d\"\n").expect("write");
    let msg = Config::load(&path)
        .and_then(|c| c.resolve())
        .expect_err("refused")
        .to_string();
    assert_eq!(
        msg,
        format!(
            "config {}: `timers.renew_after` = \"400d\" must be shorter than \
             `timers.certificate_validity` (365d)",
            path.display()
        )
    );
    let missing = dir.path().join("missing.toml");
    let msg = Config::load(&missing).expect_err("refused").to_string();
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
}

#[test]
fn wrong_type_is_refused_naming_the_key() {
    let msg = error("[device]\nmax_connections = \"many\"\n");
    assert_eq!(
        msg,
        "config (inline): `device.max_connections`: invalid type: string \"many\", \
         expected usize (line 2, column 19)"
    );
    let msg = error("[log]\nformat = \"xml\"\n");
    assert!(msg.contains("format") && msg.contains("xml"), "{msg}");
}

#[test]
fn bad_durations_are_refused_naming_the_key() {
    for bad in [
        "",
        "10",
        "-5s",
        "5x",
        "s",
        "1.5h",
        " 5s",
        "0s",
        "99999999999999999999d",
    ] {
        let msg = error(&format!("[timers]\nclock_skew = {bad:?}\n"));
        assert!(msg.contains("`timers.clock_skew`"), "{bad:?}: {msg}");
    }
    let msg = error("[shutdown]\ndrain_timeout = \"10\"\n");
    assert!(
        msg.contains("`shutdown.drain_timeout` = \"10\" has no unit"),
        "{msg}"
    );
    let msg = error("[timers]\ncertificate_validity = \"36501d\"\n");
    assert!(msg.contains("too long"), "{msg}");
}

#[test]
fn durations_accept_every_unit() {
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("3h"), Ok(Duration::from_secs(10_800)));
    assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(2_592_000)));
    assert_eq!(
        parse_duration("36500d"),
        Ok(Duration::from_secs(MAX_DURATION_SECS))
    );
    assert!(parse_duration("18446744073709551615s").is_err());
    assert!(parse_duration("é").is_err());
}

#[test]
fn socket_mode_must_be_0600_or_0660() {
    assert_eq!(
        resolve("[admin]\nsocket_mode = \"0660\"")
            .expect("ok")
            .admin
            .socket_mode,
        0o660
    );
    for bad in ["0666", "0644", "600x", "", "rw"] {
        let msg = error(&format!("[admin]\nsocket_mode = {bad:?}\n"));
        assert!(msg.contains("`admin.socket_mode`"), "{msg}");
    }
}

#[test]
fn renew_after_must_be_shorter_than_validity() {
    let msg = error("[timers]\nrenew_after = \"365d\"\n");
    assert!(
        msg.contains("`timers.renew_after` = \"365d\" must be shorter"),
        "{msg}"
    );
    // Seconds-scale timers, as used by tests of the daemon, are fine.
    let s =
        resolve("[timers]\ncertificate_validity = \"10s\"\nrenew_after = \"5s\"\n").expect("ok");
    assert_eq!(s.timers.renew_after, time::Duration::seconds(5));
}

#[test]
fn other_values_are_checked() {
    assert!(error("[device]\nlisten = \"localhost\"").contains("`device.listen`"));
    assert!(error("[device]\nmax_connections = 0").contains("`device.max_connections`"));
    assert!(error("[device]\nmax_connections = -1").contains("max_connections"));
    assert!(error("[admin]\nlisten = \"127.0.0.1:8443\"").contains("`admin.listen`"));
    assert!(error("[log]\nlevel = \"info,[\"").contains("`log.level`"));
    assert!(error("[tls]\ncert = \"c.pem\"").contains("`tls.cert`"));
    assert!(error("[timers]\nreport_interval = \"91d\"").contains("`timers.report_interval`"));
    assert!(error("data_dir = \"\"").contains("`data_dir`"));
    let long = format!("[admin]\nsocket = \"/{}\"", "s".repeat(120));
    assert!(error(&long).contains("`admin.socket`"));
    let s =
        resolve("[admin]\nlisten = \"\"\n[tls]\ncert = \"c.pem\"\nkey = \"/k.pem\"").expect("ok");
    assert_eq!(s.admin.listen, None);
    assert_eq!(
        s.tls,
        Some(TlsFiles {
            cert: PathBuf::from(FIXED_DIR).join("c.pem"),
            key: PathBuf::from("/k.pem"),
        })
    );
}

#[test]
fn connection_limits_are_checked_naming_the_key() {
    let msg = error("[device]\nmax_connections = 100\nmax_connections_per_address = 101");
    assert!(
        msg.contains(
            "`device.max_connections_per_address` = 101 must not be greater than \
             `device.max_connections` (100)"
        ),
        "{msg}"
    );
    assert!(
        error("[device]\nmax_connections_per_address = 0")
            .contains("`device.max_connections_per_address`")
    );
    for key in [
        "body_timeout",
        "header_timeout",
        "idle_timeout",
        "http2_keepalive_interval",
        "http2_keepalive_timeout",
    ] {
        let msg = error(&format!("[device]\n{key} = \"0s\""));
        assert!(msg.contains(&format!("`device.{key}`")), "{msg}");
    }
    for key in ["request_timeout", "body_timeout"] {
        let msg = error(&format!("[admin]\n{key} = \"5\""));
        assert!(msg.contains(&format!("`admin.{key}`")), "{msg}");
    }
    let s = resolve("[device]\nmax_connections = 4\nmax_connections_per_address = 4\n")
        .expect("a cap per address equal to the listener's is allowed");
    assert_eq!(s.device.max_connections_per_address, 4);
}

#[test]
fn sync_settings_have_defaults_and_bad_values_name_their_key() {
    let s = resolve("").expect("defaults");
    assert_eq!(s.sync.interval, Some(Duration::from_secs(24 * 3600)));
    assert_eq!(s.sync.retry_min, Duration::from_secs(30));
    assert_eq!(s.sync.retry_max, Duration::from_secs(3600));
    assert_eq!(s.sync.proxy, None);
    assert_eq!(s.sync.max_age, time::Duration::days(30));
    assert_eq!(s.sync.max_changes_per_message, 10_000);
    assert!(!s.sync.name.is_empty(), "the host name by default");

    let s = resolve("[sync]\ninterval = \"off\"\nname = \"hq\"\nproxy = \"http://proxy:3128\"\n")
        .expect("valid");
    assert_eq!(s.sync.interval, None);
    assert_eq!(s.sync.name, "hq");
    assert_eq!(s.sync.proxy.as_deref(), Some("http://proxy:3128"));

    for (toml, key) in [
        ("[sync]\nproxy = \"socks5://x:1\"\n", "sync.proxy"),
        ("[sync]\nretry_min = \"2h\"\n", "sync.retry_max"),
        ("[sync]\ninterval = \"often\"\n", "sync.interval"),
        ("[sync]\nname = \"two words\"\n", "sync.name"),
        (
            "[sync]\nmax_changes_per_message = 0\n",
            "sync.max_changes_per_message",
        ),
        ("[sync]\nmax_age = \"0s\"\n", "sync.max_age"),
    ] {
        let e = error(toml);
        assert!(e.contains(key), "{toml:?}: {e}");
    }
}

#[test]
fn rum_settings_default_to_keyed_urls_from_anywhere_and_bad_networks_name_the_key() {
    let s = resolve("").expect("resolves");
    assert_eq!(s.rum, RumSettings::default());
    assert!(
        !s.rum.guessable_urls,
        "only the unguessable URLs by default"
    );
    let s = resolve("[rum]\nguessable_urls = true\nallow = [\"10.0.0.0/8\", \"::1\"]\n")
        .expect("resolves");
    assert!(s.rum.guessable_urls);
    let shown: Vec<String> = s.rum.allow.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["10.0.0.0/8", "::1/128"]);
    let msg = error("[rum]\nallow = [\"10.0.0.0/8\", \"10.0.0.0/40\"]\n");
    assert!(msg.contains("`rum.allow`"), "{msg}");
    assert!(msg.contains("entry 1"), "{msg}");
    assert!(msg.contains("0 to 32"), "{msg}");
    let msg = error("[rum]\nallow = \"10.0.0.0/8\"\n");
    assert!(msg.contains("rum.allow"), "{msg}");
}

#[test]
fn console_sessions_are_validated_naming_the_key() {
    let s = resolve("").expect("defaults");
    assert_eq!(s.console.idle_timeout, time::Duration::minutes(30));
    assert_eq!(s.console.absolute_timeout, time::Duration::hours(12));
    let msg = error("[console]\nidle_timeout = \"2h\"\nabsolute_timeout = \"1h\"\n");
    assert!(
        msg.contains("`console.absolute_timeout` = \"1h\" is shorter than console.idle_timeout"),
        "{msg}"
    );
    let msg = error("[console]\nidle_timeout = \"0s\"\n");
    assert!(msg.contains("`console.idle_timeout`"), "{msg}");
    let new = resolve("[console]\nidle_timeout = \"5m\"\n").unwrap();
    assert_eq!(s.changed_keys(&new), vec!["console.idle_timeout"]);
}

#[test]
fn cisco_ack_alert_after_defaults_to_30_days_and_names_the_key() {
    let s = resolve("").expect("resolves");
    assert_eq!(s.cisco.ack_alert_after_days, 30);
    let s = resolve("[cisco]\nack_alert_after = 0\n").expect("0 turns it off");
    assert_eq!(s.cisco.ack_alert_after_days, 0);
    let msg = error("[cisco]\nack_alert_after = 3651\n");
    assert!(msg.contains("cisco.ack_alert_after"), "{msg}");
    assert!(msg.contains("3650"), "{msg}");
    let old = resolve("").unwrap();
    let new = resolve("[cisco]\nack_alert_after = 7\n").unwrap();
    assert_eq!(old.changed_keys(&new), ["cisco.ack_alert_after"]);
}
