//! Files the CLI writes (backups, sync files, signed license files) are never written through
//! a symbolic link, neither one at the target nor one planted at a temporary name, and are
//! created with their documented mode (owner only).

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{BIN, Daemon};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A directory holding `victim`, a file of the test's that a planted link points to.
struct Scene {
    dir: tempfile::TempDir,
    victim: PathBuf,
}

const VICTIM: &[u8] = b"the test's own file\n";

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, VICTIM).expect("write the victim");
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        Scene { dir, victim }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A symbolic link `name` pointing to the victim.
    fn plant(&self, name: &str) -> PathBuf {
        let link = self.path(name);
        symlink(&self.victim, &link).expect("plant a link");
        link
    }

    /// The victim is as the test wrote it, and `dir` holds exactly `names` (no temporary file
    /// is left behind).
    fn check(&self, names: &[&str]) {
        assert_eq!(
            std::fs::read(&self.victim).unwrap(),
            VICTIM,
            "written through"
        );
        assert_eq!(mode(&self.victim), 0o644);
        let mut found: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        found.sort();
        let mut names: Vec<&str> = names.to_vec();
        names.push("victim");
        names.sort();
        assert_eq!(found, names);
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777
}

/// A regular file (not a link) with mode 0600.
fn assert_private_file(path: &Path) {
    let meta = std::fs::symlink_metadata(path).expect("stat");
    assert!(
        meta.file_type().is_file(),
        "{} is a regular file",
        path.display()
    );
    assert_eq!(mode(path), 0o600, "{}", path.display());
}

/// The refusal names the link and where it points, and says what to do.
fn assert_refused(stderr: &str, link: &Path, scene: &Scene) {
    let expected = format!(
        "refusing to write through the symbolic link {} -> {}; remove it or choose another path",
        link.display(),
        scene.victim.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn backup_refuses_a_link_at_its_target_and_writes_no_partial_file_by_a_fixed_name() {
    let d = Daemon::start();
    d.account("acme");
    let scene = Scene::new();

    let link = scene.plant("backup.sat");
    let (code, stderr) = d.cli_err(&["backup", "--out", s(&link)]);
    assert_eq!(code, 1, "{stderr}");
    assert_refused(&stderr, &link, &scene);
    scene.check(&["backup.sat"]);

    // A link at the name earlier versions wrote to first (`FILE.partial`) receives nothing.
    scene.plant("b.sat.partial");
    let out = scene.path("b.sat");
    d.cli_ok(&["backup", "--out", s(&out)]);
    assert_private_file(&out);
    scene.check(&["backup.sat", "b.sat", "b.sat.partial"]);
    let restored = scene.dir.path().join("restored");
    let status = Command::new(BIN)
        .args(["--config", s(&d.config_path), "restore", "--in", s(&out)])
        .args(["--data-dir", s(&restored)])
        .output()
        .expect("run restore");
    assert!(status.status.success(), "{status:?}");
    assert_eq!(mode(&restored), 0o700);
}

#[test]
fn sync_export_and_answer_refuse_a_link_and_write_private_files() {
    let (hq, regional) = crate::sync::hq_and_regional();
    let scene = Scene::new();

    let link = scene.plant("req.json");
    let (code, stderr) = regional.cli_err(&["sync", "export", "--out", s(&link)]);
    assert_eq!(code, 1, "{stderr}");
    assert_refused(&stderr, &link, &scene);
    let request = scene.path("request.json");
    regional.cli_ok(&["sync", "export", "--out", s(&request)]);
    assert_private_file(&request);

    // The upstream refuses before it applies the request: the same request is answered after.
    let events = hq.event_count();
    let link = scene.plant("resp.json");
    let (code, stderr) = hq.cli_err(&["sync", "answer", "--in", s(&request), "--out", s(&link)]);
    assert_eq!(code, 1, "{stderr}");
    assert_refused(&stderr, &link, &scene);
    assert_eq!(hq.event_count(), events, "nothing was applied");
    let response = scene.path("response.json");
    hq.cli_ok(&["sync", "answer", "--in", s(&request), "--out", s(&response)]);
    assert_private_file(&response);
    regional.cli_ok(&["sync", "import", s(&response)]);
    scene.check(&["req.json", "request.json", "resp.json", "response.json"]);
}

/// Runs an offline command (no daemon).
fn offline(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SATELLITE_CONFIG")
        .env_remove("SATELLITE_TOKEN")
        .output()
        .expect("run the CLI")
}

#[test]
fn license_sign_refuses_a_link_and_writes_a_private_file() {
    let scene = Scene::new();
    let key = scene.path("issuer.key");
    assert!(
        offline(&["sync", "keygen", "--out", s(&key)])
            .status
            .success()
    );
    assert_private_file(&key);
    let sign = |out: &Path| {
        offline(&[
            "license",
            "sign",
            "--key",
            s(&key),
            "--account",
            "acme.com",
            "--grant",
            "Default:regid.x:1",
            "--out",
            s(out),
        ])
    };
    let link = scene.plant("lic.json");
    let refused = sign(&link);
    assert_eq!(refused.status.code(), Some(1));
    assert_refused(&String::from_utf8_lossy(&refused.stderr), &link, &scene);
    let file = scene.path("license.json");
    assert!(sign(&file).status.success());
    assert_private_file(&file);
    scene.check(&["issuer.key", "lic.json", "license.json"]);
}

/// `text` without terminal colour sequences (`ESC [ ... m`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// A data directory made beforehand with a broad mode is made private at start, and the
/// daemon says so.
#[test]
fn an_existing_data_directory_open_to_others_is_made_private_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut d = Daemon::start_custom(&data, &[]);
    assert_eq!(mode(&data), 0o700);
    let log = plain(&d.log());
    let line = log
        .lines()
        .find(|l| l.contains("the data directory was open to other users"))
        .unwrap_or_else(|| panic!("no line about the data directory's mode in:\n{log}"));
    assert!(
        line.contains("WARN") && line.contains("old_mode=0755") && line.contains("new_mode=0700"),
        "{line}"
    );
    // A private directory is left alone, without a word.
    d.restart();
    assert_eq!(
        d.log().matches("the data directory was open").count(),
        1,
        "{}",
        d.log()
    );
}
