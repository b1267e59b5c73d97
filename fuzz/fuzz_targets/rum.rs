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
        assert!(ids.insert(r.report_id), "report_id {} returned twice", r.report_id);
        assert!(r.count <= MAX_COUNT);
        assert!(r.measured_at >= 0);
        for text in [&r.udi_pid, &r.udi_serial, &r.entitlement_tag, &r.asset_name] {
            assert!(!text.is_empty() && text.len() <= MAX_FIELD_BYTES);
        }
        assert!(r.software_version.as_ref().is_none_or(|v| v.len() <= MAX_FIELD_BYTES));
        // `raw` is a slice of the body, relayed upstream byte for byte, or the joined text of
        // a CDATA section split in two.
        let body = std::str::from_utf8(data).expect("accepted bodies are UTF-8");
        assert!(
            body.contains(r.raw.as_str())
                || body.replace("]]><![CDATA[", "").contains(r.raw.as_str())
                || body.contains("]]>")
        );
    }
});
