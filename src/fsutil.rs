//! Every file the satellite writes goes through here: the device CA and server certificate,
//! the agent's key and state, sync keys and certificates, backups, sync files and signed
//! license files.
//!
//! A file is first written to a temporary file beside its target, under a random name and
//! created exclusively (`O_CREAT | O_EXCL | O_NOFOLLOW`) with its final mode, so:
//! - nothing can be planted in advance: a symbolic link or a file at a guessed temporary name
//!   would make the creation fail instead of being written through, and the name cannot be
//!   guessed;
//! - the data is never readable with broader permissions, not even for an instant, because the
//!   mode is set by the call that creates the file, before any byte is written;
//! - readers see the old file or the whole new one, never a half-written one: the data is
//!   fsync'ed, renamed over the target, and the directory fsync'ed so the rename survives a
//!   power cut.
//!
//! A target that is itself a symbolic link is refused with an error naming it and where it
//! points. The rename would replace the link rather than follow it, but an operator who linked
//! a path somewhere meant something by it, and a silent replacement would hide the surprise.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a file could not be written. Each cause names the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The target path is a symbolic link; nothing was written.
    #[error(
        "refusing to write through the symbolic link {} -> {}; remove it or choose another path",
        path.display(),
        target.display()
    )]
    Symlink {
        /// The target path given.
        path: PathBuf,
        /// Where the link points.
        target: PathBuf,
    },
    /// An operation on the file or its directory failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "write".
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
}

impl WriteError {
    /// The path the failure concerns.
    pub fn path(&self) -> &Path {
        match self {
            WriteError::Symlink { path, .. } | WriteError::Io { path, .. } => path,
        }
    }
}

/// Writes `contents` to `path` with `mode` (less the process umask), atomically and durably
/// (see the module documentation).
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), WriteError> {
    let mut file = NewFile::create(path, mode)?;
    file.write_all(contents)?;
    file.commit()
}

/// A file being written beside its target, for writers that stream (a backup of gigabytes).
/// Nothing appears at the target until [`NewFile::commit`]; dropping it uncommitted removes the
/// temporary file.
#[derive(Debug)]
pub struct NewFile {
    file: Option<File>,
    tmp: PathBuf,
    target: PathBuf,
    dir: PathBuf,
}

impl NewFile {
    /// Creates the temporary file for `target` with `mode` (less the umask). Refuses a target
    /// that is a symbolic link.
    pub fn create(target: &Path, mode: u32) -> Result<NewFile, WriteError> {
        refuse_symlink(target)?;
        let dir = parent_of(target);
        let tmp = dir.join(hidden_name(target, "tmp"));
        let file = create_exclusive(&tmp, mode).map_err(|source| WriteError::Io {
            op: "create a temporary file in",
            path: dir.clone(),
            source,
        })?;
        Ok(NewFile {
            file: Some(file),
            tmp,
            target: target.to_owned(),
            dir,
        })
    }

    /// Where the data is until it is committed: readers that check it before the rename (a
    /// backup is verified first) open this path.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Appends `bytes`.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.handle()
            .write_all(bytes)
            .map_err(|source| self.failed("write", source))
    }

    /// Makes the data durable, renames it over the target and makes the rename durable.
    pub fn commit(mut self) -> Result<(), WriteError> {
        let file = self.file.take().expect("the file is open until commit");
        file.sync_all()
            .map_err(|source| self.failed("sync", source))?;
        drop(file);
        fs::rename(&self.tmp, &self.target).map_err(|source| WriteError::Io {
            op: "rename the new file into place at",
            path: self.target.clone(),
            source,
        })?;
        // The temporary file is the target now: there is nothing left to remove.
        self.tmp = PathBuf::new();
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| WriteError::Io {
                op: "sync the directory",
                path: self.dir.clone(),
                source,
            })
    }

    fn handle(&mut self) -> &mut File {
        self.file.as_mut().expect("the file is open until commit")
    }

    fn failed(&self, op: &'static str, source: io::Error) -> WriteError {
        WriteError::Io {
            op,
            path: self.tmp.clone(),
            source,
        }
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A scratch file beside `target`'s name, created like a temporary file and unlinked at once:
/// only the returned handle (read and write) keeps it, so a crash leaves nothing behind.
pub fn unlinked_file(target: &Path, mode: u32) -> Result<File, WriteError> {
    let mut file = NewFile::create(target, mode)?;
    let handle = file.file.take().expect("the file was just created");
    // The name is removed here rather than by `Drop`, so that a failure is reported.
    let tmp = std::mem::take(&mut file.tmp);
    fs::remove_file(&tmp).map_err(|source| WriteError::Io {
        op: "unlink",
        path: tmp,
        source,
    })?;
    Ok(handle)
}

/// Opens the file at `path` for reading and writing in place, creating it with `mode` if there is
/// none, for a file that is written where it lies and synced by its owner (the store's journal).
/// A symbolic link at `path` is refused (`O_NOFOLLOW`), dangling or not, so the data cannot be
/// sent elsewhere. Returns the file and whether it was created.
pub fn open_in_place(path: &Path, mode: u32) -> io::Result<(File, bool)> {
    match create_exclusive(path, mode) {
        Ok(file) => Ok((file, true)),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
                .map_err(|err| match err.raw_os_error() {
                    Some(libc::ELOOP) => io::Error::other(format!(
                        "{} is a symbolic link; satellite writes this file only in place: \
                         replace the link with the file it points to",
                        path.display()
                    )),
                    _ => err,
                })?;
            Ok((file, false))
        }
        Err(err) => Err(err),
    }
}

/// Opens the existing file at `path` a second time, for writes that bypass the page cache
/// (`O_DIRECT`: block-aligned buffers, offsets and lengths only). `None` where the file system
/// does not support them (tmpfs, for one). Refuses a symbolic link as [`open_in_place`] does.
pub fn open_direct(path: &Path) -> io::Result<Option<File>> {
    match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Creates a new, empty directory (mode 0700) beside `target` under a random name, for work
/// that is renamed to `target` once complete (a restored store or data directory). `mkdir`
/// fails on anything already at the name, a symbolic link included, and never follows one, so
/// nothing can be planted there to receive the data.
pub fn private_dir_beside(target: &Path, what: &str) -> Result<PathBuf, WriteError> {
    let dir = parent_of(target);
    let path = dir.join(hidden_name(target, what));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .map_err(|source| WriteError::Io {
            op: "create a directory in",
            path: dir,
            source,
        })?;
    Ok(path)
}

/// The directory `path` is in.
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Refuses a target that is a symbolic link (dangling or not), naming where it points.
fn refuse_symlink(path: &Path) -> Result<(), WriteError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(WriteError::Symlink {
            path: path.to_owned(),
            target: fs::read_link(path).unwrap_or_else(|_| PathBuf::from("?")),
        }),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(WriteError::Io {
            op: "inspect",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Creates `path`, which must not exist in any form: `O_EXCL` fails on an existing file or a
/// symbolic link (dangling or not), and `O_NOFOLLOW` says the same for systems where `O_EXCL`
/// alone would be weaker. The mode is given to the creating call itself.
fn create_exclusive(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(mode)
        .open(path)
}

/// `.NAME.RANDOM.WHAT`: hidden, recognisably the target's, and unguessable (64 random bits).
fn hidden_name(target: &Path, what: &str) -> String {
    let name = target
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    // File names are limited to 255 bytes; the suffix must still fit after a long name.
    let name: String = name.chars().take(100).collect();
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("the operating system's random source is unavailable");
    format!(".{name}.{}.{what}", crate::app::secrets::hex(&random))
}

/// The permission bits of `path` (`0o7777`) when its group or others may read, write or run it;
/// `None` when only the owner may. Private keys and secrets are refused when they are open to
/// others (each caller names its own fix).
pub fn open_to_others(path: &Path) -> io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
    Ok((mode & 0o077 != 0).then_some(mode))
}

/// Why [`load_or_create_secret`] has no secret to give; each caller names the file's purpose
/// and its fix.
#[derive(Debug)]
pub enum SecretFileError {
    Io(io::Error),
    /// The file's mode lets others in (the permission bits).
    OpenToOthers(u32),
    /// The file does not hold 64 hex digits.
    Malformed,
    Write(WriteError),
}

/// The 256-bit secret kept in `path` as 64 hex digits, created (random, mode 0600, through
/// [`write_atomically`]) when there is none. A file others can read, or one that does not hold
/// such a secret, is an error and is never replaced: what the secret protects (URLs devices
/// are configured with, sealed passwords) would silently change with it.
pub fn load_or_create_secret(path: &Path) -> Result<[u8; 32], SecretFileError> {
    if !path.try_exists().map_err(SecretFileError::Io)? {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system's random source is unavailable");
        let text = format!("{}\n", crate::hex::encode(&secret));
        write_atomically(path, text.as_bytes(), 0o600).map_err(SecretFileError::Write)?;
        return Ok(secret);
    }
    if let Some(mode) = open_to_others(path).map_err(SecretFileError::Io)? {
        return Err(SecretFileError::OpenToOthers(mode));
    }
    let text = fs::read_to_string(path).map_err(SecretFileError::Io)?;
    crate::hex::decode_array(text.trim()).ok_or(SecretFileError::Malformed)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileExt, PermissionsExt, symlink};
    use std::path::Path;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Every name in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A file written in place is created with its mode and opened again as it is; a symbolic
    /// link at its name is refused, dangling or not, and nothing is written where it points.
    #[test]
    fn a_file_written_in_place_is_never_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let (file, created) = open_in_place(&path, 0o600).unwrap();
        assert!(created);
        assert_eq!(mode(&path), 0o600);
        file.write_all_at(b"kept", 0).unwrap();
        drop(file);
        let (file, created) = open_in_place(&path, 0o600).unwrap();
        assert!(!created, "the existing file is opened");
        let mut read = [0u8; 4];
        file.read_exact_at(&mut read, 0).unwrap();
        assert_eq!(&read, b"kept");

        let elsewhere = dir.path().join("elsewhere");
        let link = dir.path().join("linked");
        symlink(&elsewhere, &link).unwrap();
        let err = open_in_place(&link, 0o600).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert!(
            !elsewhere.exists(),
            "nothing was created where the dangling link points"
        );
        fs::write(&elsewhere, b"theirs").unwrap();
        assert!(open_in_place(&link, 0o600).is_err());
        assert_eq!(fs::read(&elsewhere).unwrap(), b"theirs");
    }

    #[test]
    fn the_file_appears_whole_with_its_mode_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        fs::write(&path, b"old").unwrap();
        write_atomically(&path, b"secret", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(names(dir.path()), ["key.pem"], "no temporary file is left");
        write_atomically(&path, b"public", 0o640).unwrap();
        assert_eq!(mode(&path), 0o640);
    }

    #[test]
    fn the_mode_is_set_before_any_byte_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup");
        let mut file = NewFile::create(&path, 0o600).unwrap();
        let tmp = file.temp_path().to_owned();
        assert_eq!(tmp.parent(), Some(dir.path()), "beside the target");
        assert_eq!(fs::metadata(&tmp).unwrap().len(), 0);
        assert_eq!(mode(&tmp), 0o600, "the mode comes with the creation");
        assert!(!path.exists(), "nothing at the target before the commit");
        file.write_all(b"data").unwrap();
        assert_eq!(mode(&tmp), 0o600);
        file.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"data");
        assert!(!tmp.exists());
    }

    #[test]
    fn a_symbolic_link_at_the_target_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"mine").unwrap();
        let link = dir.path().join("out");
        symlink(&victim, &link).unwrap();
        let err = write_atomically(&link, b"secret", 0o600).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "refusing to write through the symbolic link {} -> {}; remove it or choose \
                 another path",
                link.display(),
                victim.display()
            )
        );
        assert_eq!(err.path(), link);
        assert_eq!(fs::read(&victim).unwrap(), b"mine");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // A dangling link is refused too: following it would create a file elsewhere.
        let dangling = dir.path().join("dangling");
        symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(matches!(
            write_atomically(&dangling, b"x", 0o600),
            Err(WriteError::Symlink { .. })
        ));
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(names(dir.path()), ["dangling", "out", "victim"]);
    }

    #[test]
    fn the_temporary_file_is_created_exclusively_and_never_at_a_fixed_name() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"mine").unwrap();
        // The exclusive creation fails on a symbolic link (dangling or not) and on a file.
        let link = dir.path().join("link");
        symlink(&victim, &link).unwrap();
        let err = create_exclusive(&link, 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        let dangling = dir.path().join("dangling");
        symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(create_exclusive(&dangling, 0o600).is_err());
        assert!(!dir.path().join("nowhere").exists());
        assert!(create_exclusive(&victim, 0o600).is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"mine");
        // Links planted at the names earlier versions used are not written through.
        let path = dir.path().join("key.pem");
        for planted in [".key.pem.tmp", "key.pem.partial"] {
            symlink(&victim, dir.path().join(planted)).unwrap();
        }
        write_atomically(&path, b"secret", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"mine");
        // Two temporary names for one target differ.
        assert_ne!(hidden_name(&path, "tmp"), hidden_name(&path, "tmp"));
    }

    #[test]
    fn a_work_directory_is_new_private_and_beside_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data");
        let work = private_dir_beside(&target, "restore").unwrap();
        assert_eq!(work.parent(), Some(dir.path()));
        assert!(fs::symlink_metadata(&work).unwrap().is_dir());
        assert_eq!(mode(&work), 0o700);
        assert!(fs::read_dir(&work).unwrap().next().is_none());
        assert_ne!(private_dir_beside(&target, "restore").unwrap(), work);
    }

    #[test]
    fn an_unlinked_file_has_no_name_but_keeps_its_data() {
        use std::io::{Read, Seek};
        let dir = tempfile::tempdir().unwrap();
        let mut file = unlinked_file(&dir.path().join("backup"), 0o600).unwrap();
        assert!(names(dir.path()).is_empty());
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        file.write_all(b"data").unwrap();
        file.rewind().unwrap();
        let mut back = String::new();
        file.read_to_string(&mut back).unwrap();
        assert_eq!(back, "data");
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing_and_errors_name_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = NewFile::create(&path, 0o600).unwrap();
        file.write_all(b"half").unwrap();
        drop(file);
        assert!(names(dir.path()).is_empty());
        let missing = dir.path().join("missing");
        let err = write_atomically(&missing.join("x"), b"", 0o600).unwrap_err();
        assert_eq!(err.path(), missing, "{err}");
        assert!(
            err.to_string()
                .starts_with("cannot create a temporary file in")
        );
    }
}
