//! The little XML the loop needs, written and scanned by hand: CDATA sections for the export,
//! and finding a few named elements in an ACK file. This is not an XML parser; it knows the
//! elements it looks for and treats everything inside them as opaque bytes, which is what the
//! satellite must do with content whose format is not public.

use std::ops::Range;

const CDATA_OPEN: &str = "<![CDATA[";
const CDATA_CLOSE: &str = "]]>";

/// Appends `text` as CDATA. A CDATA section cannot hold `]]>`, so the section is closed after
/// `]]` and a new one opened before `>`: a reader joins the sections into `text` again.
pub(super) fn push_cdata(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(CDATA_OPEN.as_bytes());
    let mut rest = text;
    while let Some(i) = rest.find(CDATA_CLOSE) {
        out.extend_from_slice(&rest.as_bytes()[..i + 2]);
        out.extend_from_slice(b"]]><![CDATA[");
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest.as_bytes());
    out.extend_from_slice(CDATA_CLOSE.as_bytes());
}

/// Where the document's root element starts: after a byte-order mark, whitespace and an XML
/// declaration.
pub(super) fn root_start(doc: &[u8]) -> usize {
    let mut at = skip_ws(doc, 0);
    if doc[at..].starts_with("\u{feff}".as_bytes()) {
        at = skip_ws(doc, at + 3);
    }
    if doc[at..].starts_with(b"<?xml")
        && let Some(end) = find(doc, b"?>", at)
    {
        at = skip_ws(doc, end + 2);
    }
    at
}

/// Whether the bytes at `at` open an element named `name` (and not a longer name).
pub(super) fn opens(doc: &[u8], at: usize, name: &str) -> bool {
    doc[at..].starts_with(b"<")
        && doc[at + 1..].starts_with(name.as_bytes())
        && matches!(
            doc.get(at + 1 + name.len()),
            Some(b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n')
        )
}

/// Every `<name ...>...</name>` element in `doc[within]`, start tag to end tag inclusive, in
/// order. `Err` holds the offset of a start tag whose end tag is missing.
pub(super) fn elements(
    doc: &[u8],
    within: Range<usize>,
    name: &str,
) -> Result<Vec<Range<usize>>, usize> {
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut from = within.start;
    while let Some(start) = find(&doc[..within.end], format!("<{name}").as_bytes(), from) {
        if !opens(doc, start, name) {
            from = start + 1;
            continue;
        }
        let Some(end) = find(&doc[..within.end], close.as_bytes(), start) else {
            return Err(start);
        };
        out.push(start..end + close.len());
        from = end + close.len();
    }
    Ok(out)
}

/// The offset of the first `needle` in `hay` at or after `from`.
pub(super) fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

pub(super) fn skip_ws(doc: &[u8], mut at: usize) -> usize {
    while doc.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// `doc` without trailing whitespace: the end of its root element.
pub(super) fn trimmed_end(doc: &[u8]) -> usize {
    doc.len()
        - doc
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count()
}
