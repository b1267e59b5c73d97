//! ACK archives (SPEC §11) come from outside, carried by hand from Cisco's portal: the reader
//! must never panic nor allocate beyond its limits, and whatever it accepts must hold together.

#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use satellite::protocol::cisco::ack::{self, Limits};

/// Small limits, so that the fuzzer reaches them quickly.
const LIMITS: Limits = Limits {
    archive_bytes: 1 << 20,
    inner_bytes: 256 << 10,
    ack_bytes: 64 << 10,
    members: 64,
};

fuzz_target!(|data: &[u8]| {
    let Ok(archive) = ack::read_with(data, &LIMITS) else {
        return;
    };
    assert!(!archive.acks.is_empty());
    assert!(archive.acks.len() + archive.ignored.len() <= LIMITS.members);
    let mut ids = HashSet::new();
    for a in &archive.acks {
        assert!(
            ids.insert(a.file_id),
            "file id {} returned twice",
            a.file_id
        );
        assert!(a.bytes.len() as u64 <= LIMITS.ack_bytes);
        assert!(!a.member.starts_with('/') && !a.member.split('/').any(|p| p == ".."));
        assert!(a.rum_ack_bytes().starts_with(b"<smartLicenseRumAck"));
        assert!(a.rum_ack_bytes().ends_with(b"</smartLicenseRumAck>"));
        for p in a.policy_bytes() {
            assert!(p.starts_with(b"<smartLicensePolicy") && p.ends_with(b"</smartLicensePolicy>"));
        }
    }
});
