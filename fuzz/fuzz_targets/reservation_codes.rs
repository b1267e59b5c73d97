//! License reservation codes (SPEC §8b): request and return codes reach the admin API from
//! devices by hand, authorization codes reach devices; every decoder must refuse garbage with
//! an error, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use satellite::protocol::reservation::{RequestCode, ReturnCode, open_authorization};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = RequestCode::decode(&text);
    let _ = ReturnCode::decode(&text);
    let _ = open_authorization(&text, None);
    for prefix in ["SRQ1-", "SAC1-", "SRT1-"] {
        let code = format!("{prefix}{text}");
        let _ = RequestCode::decode(&code);
        let _ = ReturnCode::decode(&code);
        let _ = open_authorization(&code, Some("00"));
    }
});
