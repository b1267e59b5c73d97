//! A device's last answer as the catalog keeps it in memory.
//!
//! The answer to a usage report lists the device's usage line for line (tag, units) with a
//! status each (`Catalog::authorization`), and the record keeps its usage beside it. Kept as
//! an `AuthorizationState`, every reporting device held a second vector of the same tags and
//! units: a 64-byte block per device, 61 MiB at a million devices. So the record keeps only
//! the statuses, two bits a line, with a fingerprint of the usage they were computed for; an
//! answer whose lines are not the usage's (more than [`PACKED_LINES`] lines, or a usage that
//! changed afterwards) keeps its own list. The stored bytes do not change: a record is written
//! with the answer's full list (`wire.rs`), as before.

use super::{AuthorizationState, EntitlementStatus, InstanceStatus, Stamp, Tag, TagCounts};

/// The most lines whose statuses fit in [`AnswerLines::OfUsage`].
pub const PACKED_LINES: usize = 16;

/// The last answer given to a device, with the lines kept against the device's usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastAnswer {
    pub status: InstanceStatus,
    pub expires_at: Stamp,
    pub next_report_by: Stamp,
    lines: AnswerLines,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum AnswerLines {
    /// The lines are the usage's, in order; line `n`'s status is in bits `2n..2n + 2`.
    /// `usage` is the fingerprint of the usage they belong to ([`fingerprint`]).
    OfUsage { statuses: u32, usage: u32 },
    /// Lines that are not the usage's, kept whole.
    Listed(Box<[(Tag, u64, EntitlementStatus)]>),
}

impl LastAnswer {
    /// `answer` as kept by a device whose usage is `usage`.
    pub fn new(answer: &AuthorizationState, usage: &TagCounts) -> Self {
        let lines = pack(&answer.entitlements, usage)
            .unwrap_or_else(|| AnswerLines::Listed(answer.entitlements.clone().into()));
        Self::with_lines(answer, lines)
    }

    /// [`LastAnswer::new`] taking the answer's list, which it keeps only if it must.
    pub fn from_owned(mut answer: AuthorizationState, usage: &TagCounts) -> Self {
        let lines = pack(&answer.entitlements, usage).unwrap_or_else(|| {
            AnswerLines::Listed(std::mem::take(&mut answer.entitlements).into_boxed_slice())
        });
        Self::with_lines(&answer, lines)
    }

    fn with_lines(answer: &AuthorizationState, lines: AnswerLines) -> Self {
        LastAnswer {
            status: answer.status,
            expires_at: answer.expires_at.into(),
            next_report_by: answer.next_report_by.into(),
            lines,
        }
    }

    /// The answer, given the usage of the device that keeps it; `None` if its lines were the
    /// usage's and the usage has changed since (every path that changes a device's usage sets
    /// or clears its answer, so this does not happen).
    pub fn answer(&self, usage: &TagCounts) -> Option<AuthorizationState> {
        let entitlements = self
            .lines(usage)?
            .map(|(t, n, s)| (t.clone(), n, s))
            .collect();
        Some(AuthorizationState {
            status: self.status,
            entitlements,
            expires_at: self.expires_at.get(),
            next_report_by: self.next_report_by.get(),
        })
    }

    /// The answer's lines, given the usage of the device that keeps it (see
    /// [`LastAnswer::answer`]).
    pub fn lines<'a>(&'a self, usage: &'a TagCounts) -> Option<Lines<'a>> {
        match &self.lines {
            AnswerLines::OfUsage {
                statuses,
                usage: print,
            } => {
                if fingerprint(usage) != *print {
                    return None;
                }
                Some(Lines::OfUsage(*statuses, usage.0.iter()))
            }
            AnswerLines::Listed(lines) => Some(Lines::Listed(lines.iter())),
        }
    }

    /// Replaces the tags of a list kept whole with the shared copies in `names`.
    pub fn intern(&mut self, names: &mut std::collections::HashSet<Tag>) {
        if let AnswerLines::Listed(lines) = &mut self.lines {
            for (tag, _, _) in lines.iter_mut() {
                *tag = super::intern(names, tag);
            }
        }
    }

    /// Whether the answer keeps its own list of lines (tests).
    #[cfg(test)]
    pub fn keeps_its_lines(&self) -> bool {
        matches!(self.lines, AnswerLines::Listed(_))
    }
}

/// The lines of a [`LastAnswer`]: tag, units, status.
#[derive(Clone)]
pub enum Lines<'a> {
    /// The statuses still to give, lowest bits first, and the usage lines they go with.
    OfUsage(u32, std::slice::Iter<'a, (Tag, u64)>),
    Listed(std::slice::Iter<'a, (Tag, u64, EntitlementStatus)>),
}

impl<'a> Iterator for Lines<'a> {
    type Item = (&'a Tag, u64, EntitlementStatus);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Lines::OfUsage(statuses, usage) => {
                let (tag, units) = usage.next()?;
                let status = status_of(*statuses);
                *statuses >>= 2;
                Some((tag, *units, status))
            }
            Lines::Listed(lines) => lines.next().map(|(t, n, s)| (t, *n, *s)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Lines::OfUsage(_, usage) => usage.size_hint(),
            Lines::Listed(lines) => lines.size_hint(),
        }
    }
}

impl ExactSizeIterator for Lines<'_> {}

/// The statuses of `lines` packed, if `lines` are `usage`'s tag for tag and unit for unit.
fn pack(lines: &[(Tag, u64, EntitlementStatus)], usage: &TagCounts) -> Option<AnswerLines> {
    if lines.len() != usage.len() || lines.len() > PACKED_LINES {
        return None;
    }
    let mut statuses = 0u32;
    for (n, ((tag, units, status), (used_tag, used_units))) in
        lines.iter().zip(usage.iter()).enumerate()
    {
        if tag != used_tag || units != used_units {
            return None;
        }
        statuses |= bits_of(*status) << (2 * n);
    }
    Some(AnswerLines::OfUsage {
        statuses,
        usage: fingerprint(usage),
    })
}

fn bits_of(s: EntitlementStatus) -> u32 {
    match s {
        EntitlementStatus::Authorized => 0,
        EntitlementStatus::OutOfCompliance => 1,
        EntitlementStatus::NotAuthorized => 2,
        EntitlementStatus::Unknown => 3,
    }
}

fn status_of(bits: u32) -> EntitlementStatus {
    match bits & 3 {
        0 => EntitlementStatus::Authorized,
        1 => EntitlementStatus::OutOfCompliance,
        2 => EntitlementStatus::NotAuthorized,
        _ => EntitlementStatus::Unknown,
    }
}

/// A 32-bit FNV-1a hash of a usage's tags and units: tells a packed answer that the usage it
/// was computed for has changed.
fn fingerprint(usage: &TagCounts) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
        }
    };
    for (tag, units) in usage {
        eat(tag.as_bytes());
        eat(&[0xff]);
        eat(&units.to_le_bytes());
    }
    h
}
