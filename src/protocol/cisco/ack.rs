//! The ACK archive Cisco's portal returns for an uploaded usage file. No such archive is public:
//! the layout is inferred from how DevNet's sample code (`xe-sip-api-code`, `run_offline_ack`)
//! reads one (docs/cisco.md):
//!
//! ```text
//! ACK_UD_SA_<...>.tar.gz          gzip tar (its own name is not checked)
//! └── ACK_UD_VA_<...>.tar.gz      gzip tar; any `ACK_*.tar.gz` member is read, one level deep
//!     └── ACK_dev_<n>_<...>       <smartLicense><smartLicenseRumAck><data>...</data>...
//!                                 </smartLicenseRumAck>[<smartLicensePolicy>...]</smartLicense>
//! ```
//!
//! An ACK names its device by its file name only: `<n>` is the number of the device file it
//! acknowledges (`dev_<n>_<t>.txt` in the export), which the caller maps back to a device and
//! its reports. The content of `<data>` is not public, so the file is kept byte for byte and only
//! its outline is checked. `ACK_dev_` files directly in the outer archive are read too. Other
//! members are listed in [`AckArchive::ignored`].
//!
//! The reader trusts nothing: every size is bounded before it is allocated (a gzip bomb ends in
//! an error, not in memory exhaustion), member names that climb out (`..`, `/`), links and
//! special files refuse the archive, and so does a truncated or damaged stream.

use std::cell::Cell;
use std::io::{self, Read};
use std::ops::Range;
use std::rc::Rc;

use flate2::read::GzDecoder;

use super::xml;

/// Limits of one read. [`Limits::DEFAULT`] fits thousands of devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Decompressed bytes of all archives together (the outer one and every inner one): a
    /// budget per archive would let each of many small inner archives fill it, a nested bomb.
    pub archive_bytes: u64,
    /// Bytes of one inner `ACK_*.tar.gz` member, compressed.
    pub inner_bytes: u64,
    /// Bytes of one ACK file.
    pub ack_bytes: u64,
    /// Members, counted over all archives.
    pub members: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        archive_bytes: 256 << 20,
        inner_bytes: 64 << 20,
        ack_bytes: 1 << 20,
        members: 100_000,
    };
}

/// One ACK: the device file it answers, and its bytes as the portal wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The `<n>` of its name: the device file `dev_<n>_<t>.txt` of the export.
    pub file_id: u64,
    /// Where it was: `ACK_UD_VA_....tar.gz/ACK_dev_...`, or its name in the outer archive.
    pub member: String,
    /// The whole file, byte for byte: what is imported into the device.
    pub bytes: Vec<u8>,
    /// The `<smartLicenseRumAck>` element within `bytes`.
    pub rum_ack: Range<usize>,
    /// Each `<smartLicensePolicy>` element within `bytes`.
    pub policies: Vec<Range<usize>>,
}

impl Ack {
    pub fn rum_ack_bytes(&self) -> &[u8] {
        &self.bytes[self.rum_ack.clone()]
    }

    pub fn policy_bytes(&self) -> impl Iterator<Item = &[u8]> {
        self.policies.iter().map(|r| &self.bytes[r.clone()])
    }
}

/// What an ACK archive held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckArchive {
    /// The ACKs, in archive order, each `file_id` once.
    pub acks: Vec<Ack>,
    /// Members that are neither an ACK nor an archive of ACKs.
    pub ignored: Vec<String>,
}

const FIX: &str = "give the ACK archive exactly as Cisco's portal returned it";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("{what} is not gzip-compressed (it does not start with 1f 8b); {FIX}")]
    NotGzip { what: String },
    #[error("{what} is damaged ({reason}); {FIX}")]
    Damaged { what: String, reason: String },
    #[error("{what} ends too early (truncated in transfer or on disk?); {FIX}")]
    Truncated { what: String },
    #[error("{what} is not a tar archive ({reason}); {FIX}")]
    NotTar { what: String, reason: String },
    #[error(
        "member {member:?} has a name that leaves the archive (absolute or with `..`); such an archive is refused whatever it holds"
    )]
    UnsafePath { member: String },
    #[error("member {member:?} is a {kind}; an ACK archive holds only files, so it is refused")]
    NotAFile { member: String, kind: String },
    #[error(
        "{what} is larger than {max} bytes, far more than ACKs take; if it is genuine, split the upload into smaller exports"
    )]
    TooLarge { what: String, max: u64 },
    #[error(
        "the archive has more than {max} members; if it is genuine, split the upload into smaller exports"
    )]
    TooManyMembers { max: usize },
    #[error("member {member:?} does not name a device file (`ACK_dev_<number>_...`); {FIX}")]
    BadAckName { member: String },
    #[error("member {member:?} is not an ACK file: {reason}; {FIX}")]
    NotAnAck { member: String, reason: String },
    #[error("two members ({first:?}, {second:?}) acknowledge device file {file_id}; {FIX}")]
    Duplicate {
        file_id: u64,
        first: String,
        second: String,
    },
    #[error("the archive holds no ACK (no `ACK_dev_...` file){hint}; {FIX}")]
    NoAck { hint: &'static str },
}

/// Reads an ACK archive with the default limits.
pub fn read(input: impl Read) -> Result<AckArchive, AckError> {
    read_with(input, &Limits::DEFAULT)
}

/// Reads an ACK archive with the given limits.
pub fn read_with(input: impl Read, limits: &Limits) -> Result<AckArchive, AckError> {
    let mut out = AckArchive {
        acks: Vec::new(),
        ignored: Vec::new(),
    };
    let mut members = 0;
    let mut nested = Vec::new();
    let budget = Rc::new(Cell::new(limits.archive_bytes));
    read_archive(
        input,
        "the file",
        "",
        limits,
        &budget,
        &mut members,
        &mut |member, data| {
            match classify(member) {
                Kind::Inner => nested.push((member.to_owned(), data)),
                Kind::Ack => out.acks.push(ack(member, data)?),
                Kind::Other => out.ignored.push(member.to_owned()),
            }
            Ok(())
        },
    )?;
    for (name, data) in nested {
        let what = format!("member {name:?}");
        let prefix = format!("{name}/");
        read_archive(
            &data[..],
            &what,
            &prefix,
            limits,
            &budget,
            &mut members,
            &mut |member, data| {
                match classify(member) {
                    Kind::Ack => out.acks.push(ack(member, data)?),
                    Kind::Inner | Kind::Other => out.ignored.push(member.to_owned()),
                }
                Ok(())
            },
        )?;
    }
    check_unique(&out.acks)?;
    if out.acks.is_empty() {
        let export = out
            .ignored
            .iter()
            .any(|m| m == "manifest.mf" || base(m).starts_with("UD_VA_"));
        return Err(AckError::NoAck {
            hint: if export {
                " — this is a usage export (UD_SA_...) for the portal, not the ACK archive it returns"
            } else {
                ""
            },
        });
    }
    Ok(out)
}

enum Kind {
    Inner,
    Ack,
    Other,
}

fn classify(member: &str) -> Kind {
    let name = base(member);
    if name.starts_with("ACK_dev_") {
        Kind::Ack
    } else if name.starts_with("ACK_") && name.ends_with(".tar.gz") {
        Kind::Inner
    } else {
        Kind::Other
    }
}

fn base(member: &str) -> &str {
    member.rsplit('/').next().unwrap_or(member)
}

/// What `read_archive` hands each regular file to: its name and its content.
type OnMember<'a> = dyn FnMut(&str, Vec<u8>) -> Result<(), AckError> + 'a;

/// Reads one gzip tar, handing each regular file (name with `prefix`, content) to `each`, the
/// member's size bounded by its kind and the decompressed bytes by what is left of `budget`.
fn read_archive(
    input: impl Read,
    what: &str,
    prefix: &str,
    limits: &Limits,
    budget: &Rc<Cell<u64>>,
    members: &mut usize,
    each: &mut OnMember<'_>,
) -> Result<(), AckError> {
    let mut input = input;
    let mut magic = [0u8; 2];
    if input.read_exact(&mut magic).is_err() || magic != [0x1f, 0x8b] {
        return Err(AckError::NotGzip { what: what.into() });
    }
    let exceeded = Rc::new(Cell::new(false));
    let stream = Bounded {
        inner: GzDecoder::new(io::Cursor::new(magic).chain(input)),
        left: budget.clone(),
        exceeded: exceeded.clone(),
    };
    let fail = |e: io::Error| stream_error(what, e, exceeded.get(), limits.archive_bytes);
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        *members += 1;
        if *members > limits.members {
            return Err(AckError::TooManyMembers {
                max: limits.members,
            });
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let member = format!("{prefix}{name}");
        check_member(&entry, &name, &member)?;
        if !entry.header().entry_type().is_file() {
            continue; // A directory: its name was checked, it holds nothing itself.
        }
        let max = match classify(&name) {
            Kind::Inner => limits.inner_bytes,
            Kind::Ack | Kind::Other => limits.ack_bytes,
        };
        let size = entry.header().size().map_err(fail)?;
        if size > max {
            return Err(AckError::TooLarge {
                what: format!("member {member:?}"),
                max,
            });
        }
        let mut data = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(max)
            .read_to_end(&mut data)
            .map_err(fail)?;
        if (data.len() as u64) < size {
            return Err(AckError::Truncated { what: what.into() });
        }
        each(&member, data)?;
    }
    // Read to the end of the gzip stream, so that its length and checksum are checked too.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(fail)?;
    Ok(())
}

fn check_member<R: Read>(
    entry: &tar::Entry<'_, R>,
    name: &str,
    member: &str,
) -> Result<(), AckError> {
    if name.starts_with('/') || name.split(['/', '\\']).any(|part| part == "..") {
        return Err(AckError::UnsafePath {
            member: member.into(),
        });
    }
    let kind = entry.header().entry_type();
    if kind.is_file() || kind.is_dir() {
        return Ok(());
    }
    let kind = if kind.is_symlink() {
        "symbolic link".into()
    } else if kind.is_hard_link() {
        "hard link".into()
    } else {
        format!("special member (tar type {:?})", kind.as_byte() as char)
    };
    Err(AckError::NotAFile {
        member: member.into(),
        kind,
    })
}

fn stream_error(what: &str, e: io::Error, exceeded: bool, max: u64) -> AckError {
    if exceeded {
        return AckError::TooLarge {
            what: format!("{what} once decompressed"),
            max,
        };
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => AckError::Truncated { what: what.into() },
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
            if e.to_string().contains("deflate") || e.to_string().contains("gzip") =>
        {
            AckError::Damaged {
                what: what.into(),
                reason: e.to_string(),
            }
        }
        _ => AckError::NotTar {
            what: what.into(),
            reason: e.to_string(),
        },
    }
}

/// Checks an ACK file's outline and finds its elements: a `<smartLicense>` root holding one
/// `<smartLicenseRumAck>` with a `<data>` child, and any `<smartLicensePolicy>` elements.
fn ack(member: &str, bytes: Vec<u8>) -> Result<Ack, AckError> {
    let file_id = base(member)
        .split('_')
        .nth(2)
        .filter(|n| !n.is_empty() && n.len() <= 19 && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| AckError::BadAckName {
            member: member.into(),
        })?;
    let not = |reason: &str| AckError::NotAnAck {
        member: member.into(),
        reason: reason.into(),
    };
    let start = xml::root_start(&bytes);
    let end = xml::trimmed_end(&bytes);
    if !xml::opens(&bytes, start, "smartLicense") || !bytes[..end].ends_with(b"</smartLicense>") {
        return Err(not("its root is not `<smartLicense>`"));
    }
    let root = start..end;
    let unclosed = |_| not("an element is not closed");
    let acks = xml::elements(&bytes, root.clone(), "smartLicenseRumAck").map_err(unclosed)?;
    let rum_ack = match &acks[..] {
        [one] => one.clone(),
        [] => return Err(not("it holds no `<smartLicenseRumAck>`")),
        _ => return Err(not("it holds more than one `<smartLicenseRumAck>`")),
    };
    match xml::elements(&bytes, rum_ack.clone(), "data") {
        Ok(data) if !data.is_empty() => {}
        _ => return Err(not("its `<smartLicenseRumAck>` has no `<data>`")),
    }
    let policies = xml::elements(&bytes, root, "smartLicensePolicy").map_err(unclosed)?;
    Ok(Ack {
        file_id,
        member: member.into(),
        bytes,
        rum_ack,
        policies,
    })
}

fn check_unique(acks: &[Ack]) -> Result<(), AckError> {
    let mut seen = std::collections::HashMap::new();
    for a in acks {
        if let Some(first) = seen.insert(a.file_id, &a.member) {
            return Err(AckError::Duplicate {
                file_id: a.file_id,
                first: first.clone(),
                second: a.member.clone(),
            });
        }
    }
    Ok(())
}

/// A reader that fails once more than `left` bytes were read (a budget shared by every
/// archive of one read), and says so in `exceeded`.
struct Bounded<R> {
    inner: R,
    left: Rc<Cell<u64>>,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        let want = buf.len().min(
            usize::try_from(left)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        );
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > left {
            self.exceeded.set(true);
            return Err(io::Error::other("the decompressed size limit was exceeded"));
        }
        self.left.set(left - n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
