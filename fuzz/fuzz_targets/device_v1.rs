//! Device protocol v1 request bodies (SPEC §3): every decoder a device can reach must refuse
//! garbage with an error, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use satellite::domain::MAX_UNITS;
use satellite::protocol::device::{MAX_USAGE_LINES, decode_register, decode_renew, decode_usage};

fuzz_target!(|data: &[u8]| {
    let _ = decode_register(data);
    let _ = decode_renew(data);
    if let Ok(usage) = decode_usage(data) {
        assert!(usage.usage.len() <= MAX_USAGE_LINES);
        assert!(usage.usage.iter().all(|line| line.count <= MAX_UNITS));
    }
});
