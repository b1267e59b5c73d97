//! `satellite`: an on-premises license satellite.
//!
//! # Layout
//!
//! Read in this order:
//! - [`domain`]: the pure license domain (accounts, Virtual Accounts, licenses, tokens, users,
//!   roles, events). No IO; `now` is a parameter.
//! - [`store`]: persistence over sled, the only code that names sled; `store::codec` is the only
//!   code that names bincode.
//! - [`app`]: the running state (catalog + store + clock) and the single write path.
//! - [`protocol`]: JSON wire types of the admin API (and, later, devices and sync).
//! - [`server`]: accept loops, routers, handlers, the one error-to-HTTP mapping.
//! - [`pki`]: the device CA and the server certificate.
//! - [`config`]: the TOML configuration, validated into `Settings`.
//! - [`daemon`], [`signals`], [`shutdown`], [`systemd`]: `satellite serve`.
//! - [`workers`]: named background work (expiry sweep, alerts).
//! - [`logging`]: the log filter the daemon runs with and when it colours its output.
//! - [`agent`]: the device-side client.
//! - [`loadgen`]: the load generator (`satellite loadgen`), many agents over real TLS.
//! - [`cli`]: the operator commands, clients of the admin API.
#![forbid(unsafe_code)]

pub mod agent;
pub mod app;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod fsutil;
pub mod hex;
pub mod loadgen;
pub mod logging;
pub mod pki;
pub mod protocol;
pub mod server;
pub mod shutdown;
pub mod signals;
pub mod store;
pub mod sync;
pub mod systemd;
pub mod workers;
