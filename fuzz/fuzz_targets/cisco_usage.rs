//! A pulled device's `usage` and `list` answers (SPEC §11) come from devices over the network:
//! the decoders must never panic, and what they accept must respect the parser's bounds.

#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use satellite::protocol::cisco::pull;
use satellite::protocol::rum::{MAX_COUNT, MAX_FIELD_BYTES, MAX_PULLED_REPORTS};

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = pull::decode_list(data) {
        assert!(list.len() <= MAX_PULLED_REPORTS);
    }
    let Ok(pulled) = pull::decode_usage(data) else {
        return;
    };
    assert!(pulled.reports.len() + pulled.other.len() <= MAX_PULLED_REPORTS);
    let body = std::str::from_utf8(data).expect("accepted answers are UTF-8");
    let mut ids = HashSet::new();
    for r in &pulled.reports {
        assert!(
            ids.insert(r.report_id),
            "report_id {} returned twice",
            r.report_id
        );
        assert!(r.count <= MAX_COUNT && r.measured_at >= 0);
        for text in [&r.udi_pid, &r.udi_serial, &r.entitlement_tag, &r.asset_name] {
            assert!(!text.is_empty() && text.len() <= MAX_FIELD_BYTES);
        }
        // Pulled reports are slices of the answer, relayed byte for byte.
        assert!(body.contains(r.raw.as_str()));
    }
    for o in &pulled.other {
        assert!(body.contains(o.raw.as_str()));
    }
});
