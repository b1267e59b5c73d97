//! `satellite status`: the caller's counts and, for administrators, the satellite's own state.

use serde::{Deserialize, Serialize};

use super::Time;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: Time,
    #[serde(with = "time::serde::rfc3339")]
    pub now: Time,
    /// `satellite` for a system administrator; `granted` when the counts below are limited to
    /// the caller's grants (SPEC §7).
    pub scope: String,
    pub accounts: usize,
    pub virtual_accounts: usize,
    pub licenses: usize,
    pub tokens: usize,
    pub devices: usize,
    /// Devices by state (`registered`, `authorized`, `out_of_compliance`, `authorization_expired`).
    pub devices_by_state: Vec<(String, usize)>,
    /// Satellite-wide figures: for system administrators only (absent otherwise).
    #[serde(flatten)]
    pub satellite: Option<SatelliteStatus>,
}

/// The part of [`Status`] about the satellite itself rather than the caller's objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SatelliteStatus {
    pub data_dir: String,
    pub store_bytes: u64,
    pub schema_version: u32,
    pub users: usize,
    /// Store flushes (group commits) since start and the mean flush time in milliseconds.
    pub store_flushes: u64,
    pub store_flush_mean_ms: f64,
    /// Set when a flush failed: the store refuses writes until restart.
    pub store_failure: Option<String>,
    pub unreadable_records: Vec<String>,
    pub listeners: Vec<String>,
    pub workers: Vec<WorkerStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub name: String,
    pub state: String,
    pub detail: String,
}
