//! File writing shared by everything that keeps secrets or state on disk (the device CA, the
//! agent's key and state, sync signing keys).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` through a temporary file created with `mode`, so the data is
/// never visible with broader permissions or half-written, then makes the rename durable. On
/// failure, returns the path the failing operation touched, for the caller's error message.
pub fn write_atomically(
    path: &Path,
    contents: &[u8],
    mode: u32,
) -> Result<(), (PathBuf, io::Error)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.tmp"));
    let at = |p: &Path| {
        let p = p.to_owned();
        move |e: io::Error| (p, e)
    };
    // A temporary file left by a crash may have been created with other permissions; it is
    // removed so that `create_new` sets the mode.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err((tmp, err)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(at(&tmp))?;
    file.write_all(contents).map_err(at(&tmp))?;
    file.sync_all().map_err(at(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(at(path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(at(dir))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_file_appears_whole_with_its_mode_and_replaces_a_stale_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(dir.path().join(".key.pem.tmp"), b"stale").unwrap();
        super::write_atomically(&path, b"secret", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.path().join(".key.pem.tmp").exists());
        let err = super::write_atomically(&dir.path().join("missing/x"), b"", 0o600).unwrap_err();
        assert!(err.0.ends_with(".x.tmp"), "{err:?}");
    }
}
