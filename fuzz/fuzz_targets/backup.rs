//! Backup files (SPEC §9) come back from removable media and other machines: the reader must
//! refuse anything damaged, truncated or forged with an error, never a panic and never an
//! allocation the file's length fields alone decide, whatever the bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use satellite::store::backup::verify_bytes;

fuzz_target!(|data: &[u8]| {
    if let Ok(summary) = verify_bytes(data) {
        // Only a file whose checksum matches gets here: its counts must agree.
        let held: u64 = summary.tables.iter().map(|(_, n)| n).sum();
        assert_eq!(held, summary.records);
        assert_eq!(summary.bytes, data.len() as u64);
    }
});
