//! Admin API wire types: the JSON the operator CLI and the daemon exchange. Field names are a
//! contract with scripts that use `--json`; add fields, never rename them.
//!
//! Objects are referred to by id or, for humans, by name: an account by its name or domain, a
//! VA by `ACCOUNT/Default/child/...` (its path from the Default VA, prefixed by the account).
//!
//! One file per resource, as in `server/admin/`; everything is re-exported here so callers
//! name `protocol::admin::X` whatever file `X` lives in.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

mod accounts;
mod cisco_acks;
mod cisco_devices;
mod compliance;
mod devices;
mod events;
mod licenses;
mod reservations;
mod status;
mod sync;
mod tokens;
mod users;

pub use accounts::*;
pub use cisco_acks::*;
pub use cisco_devices::*;
pub use compliance::*;
pub use devices::*;
pub use events::*;
pub use licenses::*;
pub use reservations::*;
pub use status::*;
pub use sync::*;
pub use tokens::*;
pub use users::*;

pub type Time = OffsetDateTime;

/// The error body of every failed call, admin and device alike.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}
