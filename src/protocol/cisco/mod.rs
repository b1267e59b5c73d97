//! Cisco Smart Licensing Using Policy, the reporting loop (SPEC §11): the wire formats that
//! carry RUM reports from a device to Cisco's portal and the portal's acknowledgements back.
//! Pure code over bytes, `impl Read` and `impl Write`: no sockets, files or clock.
//!
//! * [`pull`]: a device's `/smartlic-service` REST API (pull mode).
//! * [`export`]: the offline usage file handed to the portal (`UD_SA_<time>.tar.gz`).
//! * [`ack`]: the ACK archive the portal returns.
//!
//! docs/cisco.md says which parts are verified against public sources and which are inferred.

pub mod ack;
pub mod export;
pub mod pull;
mod xml;
