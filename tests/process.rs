//! Process-level behaviour: file permissions, the device listener's health check, SIGTERM.

use std::os::unix::fs::PermissionsExt;

use crate::util::Daemon;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn private_files_are_owner_only_and_sigterm_exits_cleanly() {
    let mut d = Daemon::start();
    assert_eq!(
        d.socket,
        d.data_dir.join("admin.sock"),
        "a relative socket is under data_dir"
    );
    assert_eq!(mode(&d.socket), 0o600, "admin socket");
    assert_eq!(mode(&d.data_dir.join("tls/ca.key")), 0o600, "CA key");
    assert_eq!(
        mode(&d.data_dir.join("tls/server.key")),
        0o600,
        "server key"
    );
    assert_eq!(
        mode(&d.data_dir) & 0o077,
        0,
        "the data directory is private"
    );

    let res = d.device_api().get("/healthz");
    assert_eq!(res.status, 200);
    assert_eq!(res.text.trim(), "ok");
    let res = d.admin_api(None).get("/healthz");
    assert_eq!(res.status, 200);

    // SIGTERM while idle: exit 0, socket removed, the CLI then explains it cannot connect.
    d.stop();
    assert!(
        !d.socket.exists(),
        "the admin socket is removed on shutdown"
    );
    let (code, stderr) = d.cli_err(&["status"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("satellite serve"), "{stderr}");
}
