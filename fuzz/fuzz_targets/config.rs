//! The configuration file (SPEC §9) is written by hand: parsing and validating it must answer
//! every input with settings or an error naming the cause, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use satellite::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_str(text) {
        Ok(config) => {
            // No environment: the fuzzer must not depend on (or read) `$STATE_DIRECTORY`.
            if let Ok(settings) = config.resolve_with_state_directory(None) {
                assert!(settings.device.max_connections >= 1);
                assert!(settings.device.max_body_bytes >= 1);
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
    }
});
