//! Sync files and license files (SPEC §8) arrive from the network and on removable media: `open`
//! must refuse anything it cannot verify with an error, never a panic, whatever the bytes.
//!
//! The corpus holds real signed files from a fixed test key, which is pinned here, so the fuzzer
//! also explores the checks that run after the signature (sender, recipient, sequence, age).

#![no_main]

use libfuzzer_sys::fuzz_target;
use satellite::protocol::sync::{
    DEFAULT_MAX_AGE, DEFAULT_MAX_SKEW, LicenseFile, OffsetDateTime, SatelliteId, SatelliteKey,
    SyncRequest, SyncResponse, TrustedKeys, VerifyCtx, open, peek_kind,
};

fuzz_target!(|data: &[u8]| {
    let key = SatelliteKey::from_seed(&[7; 32]);
    let trusted = TrustedKeys::new().with(SatelliteId::new("child-1"), key.public_key());
    let accounts = ["example.com".to_string()];
    let me = SatelliteId::new("upstream");
    let ctx = VerifyCtx {
        me: &me,
        accounts: &accounts,
        trusted: &trusted,
        last_seq: |_: &SatelliteId| Some(11),
        // 2025-03-02T00:00:00Z, a day after the corpus files were signed.
        now: OffsetDateTime::from_unix_timestamp(1_740_873_600).expect("valid"),
        max_age: DEFAULT_MAX_AGE,
        max_skew: DEFAULT_MAX_SKEW,
    };
    let _ = peek_kind(data);
    if let Ok(request) = open::<SyncRequest, _>(data, &ctx) {
        assert_eq!(request.seq, 12);
        assert_eq!(request.to, me);
    }
    if let Ok(response) = open::<SyncResponse, _>(data, &ctx) {
        assert_eq!(response.seq, 12);
    }
    if let Ok(file) = open::<LicenseFile, _>(data, &ctx) {
        assert_eq!(file.account_domain, "example.com");
    }
});
