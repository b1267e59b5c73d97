//! RUM upload bodies (SPEC §3b) come straight from devices: the parser must never panic, and
//! whatever it accepts must respect the bounds it promises.

#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use satellite::protocol::rum::{self, MAX_COUNT, MAX_FIELD_BYTES, MAX_REPORTS};

fuzz_target!(|data: &[u8]| {
    let Ok(reports) = rum::parse(data) else {
        return;
    };
    assert!(!reports.is_empty() && reports.len() <= MAX_REPORTS);
    let mut ids = HashSet::new();
    for r in &reports {
        assert!(
            ids.insert(r.report_id),
            "report_id {} returned twice",
            r.report_id
        );
        assert!(r.count <= MAX_COUNT);
        assert!(r.measured_at >= 0);
        for text in [&r.udi_pid, &r.udi_serial, &r.entitlement_tag, &r.asset_name] {
            assert!(!text.is_empty() && text.len() <= MAX_FIELD_BYTES);
        }
        assert!(
            r.software_version
                .as_ref()
                .is_none_or(|v| v.len() <= MAX_FIELD_BYTES)
        );
        // `raw` is a slice of the body, relayed upstream byte for byte, or the joined text of
        // a CDATA section split in two.
        let body = std::str::from_utf8(data).expect("accepted bodies are UTF-8");
        assert!(body.contains(r.raw.as_str()) || joined_cdata(body).contains(r.raw.as_str()));
    }
});

/// The body with each run of CDATA sections joined as XML reads them: `]]>`, whitespace and
/// `<![CDATA[` between two sections leave only the whitespace.
fn joined_cdata(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find("]]>") {
        let after = &rest[i + 3..];
        let text = after.trim_start_matches([' ', '\t', '\r', '\n']);
        if text.starts_with("<![CDATA[") {
            out.push_str(&rest[..i]);
            out.push_str(&after[..after.len() - text.len()]);
            rest = &text["<![CDATA[".len()..];
        } else {
            out.push_str(&rest[..i + 3]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}
