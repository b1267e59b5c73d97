//! The XML body form of a RUM upload: `<RUMReport>` elements holding CDATA. A strict extractor
//! for that one shape, not an XML parser (see the module docs of `rum`).

use std::borrow::Cow;

use super::{ReportAt, RumError, at, is_ws, skip_ws};

const OPEN: &str = "<RUMReport";
const CLOSE: &str = "</RUMReport>";
const CDATA_OPEN: &str = "<![CDATA[";
const CDATA_CLOSE: &str = "]]>";

/// The CDATA text (trimmed) of every `<RUMReport>` element, in order, at most `max` of them.
/// An element's text is borrowed from the body unless it was split into several CDATA
/// sections, which are joined as XML defines (with any whitespace between them).
pub(super) fn envelopes(s: &str, max: usize) -> Result<Vec<Cow<'_, str>>, RumError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(start) = find_open(s, pos) {
        if out.len() == max {
            return Err(RumError::TooManyReports { max });
        }
        let at = at(out.len());
        let name_end = start + OPEN.len();
        let Some(gt) = s[name_end..].find('>').map(|i| name_end + i) else {
            return Err(RumError::UnterminatedElement { at });
        };
        // A self-closing `<RUMReport/>` has no content at all.
        if s[..gt].ends_with('/') {
            return Err(RumError::NotCdata { at, offset: gt - 1 });
        }
        let content = skip_ws(s, gt + 1);
        if !s[content..].starts_with(CDATA_OPEN) {
            return Err(misplaced(s, content, at));
        }
        let (text, close) = cdata_sections(s, content, at)?;
        if !s[close..].starts_with(CLOSE) {
            return Err(misplaced(s, close, at));
        }
        out.push(match text {
            Cow::Borrowed(text) => Cow::Borrowed(text.trim_matches(is_ws)),
            Cow::Owned(text) => Cow::Owned(text.trim_matches(is_ws).to_owned()),
        });
        pos = close + CLOSE.len();
    }
    if out.is_empty() {
        return Err(RumError::NoReport);
    }
    Ok(out)
}

/// Reads the CDATA section starting at `start` and any that follow it (whitespace between them
/// is text too), returning the joined text and the offset after the last one and whitespace.
fn cdata_sections(s: &str, start: usize, at: ReportAt) -> Result<(Cow<'_, str>, usize), RumError> {
    let mut text: Cow<'_, str> = Cow::Borrowed("");
    let mut section = start;
    loop {
        let data = section + CDATA_OPEN.len();
        let Some(data_end) = s[data..].find(CDATA_CLOSE).map(|i| data + i) else {
            return Err(RumError::UnterminatedCdata { at });
        };
        if section == start {
            text = Cow::Borrowed(&s[data..data_end]);
        } else {
            text.to_mut().push_str(&s[data..data_end]);
        }
        let after = data_end + CDATA_CLOSE.len();
        let next = skip_ws(s, after);
        if !s[next..].starts_with(CDATA_OPEN) {
            return Ok((text, next));
        }
        text.to_mut().push_str(&s[after..next]);
        section = next;
    }
}

/// Finds the next `<RUMReport` start tag, skipping longer names such as `<RUMReportAck>`.
fn find_open(s: &str, mut from: usize) -> Option<usize> {
    while let Some(i) = s[from..].find(OPEN) {
        let start = from + i;
        match s.as_bytes().get(start + OPEN.len()) {
            None | Some(b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n') => return Some(start),
            Some(_) => from = start + OPEN.len(),
        }
    }
    None
}

/// Something other than the expected CDATA or end tag inside an element: if the element is
/// never closed that is the real problem, otherwise the content is.
fn misplaced(s: &str, offset: usize, at: ReportAt) -> RumError {
    if s[offset..].contains(CLOSE) {
        RumError::NotCdata { at, offset }
    } else {
        RumError::UnterminatedElement { at }
    }
}
