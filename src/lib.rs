//! `satellite`: an on-premises license satellite.
//!
//! # Layout
//!
//! Read in this order, from the ground floor up (the `mod` lines below are alphabetical):
//! - [`domain`]: the pure license domain (accounts, Virtual Accounts, licenses, tokens, users,
//!   roles, devices, RUM, compliance, alerts, reservations, sync ownership, events). No IO;
//!   `now` is a parameter.
//! - [`store`]: persistence over sled, the only code that names sled; `store::codec` is the only
//!   code that names bincode.
//! - [`app`]: the running state (catalog + store + clock + timers) and the single write path;
//!   the only way into the store for everything else.
//! - [`protocol`]: wire types: the admin API, device protocol v1, Cisco RUM reports, signed
//!   sync messages and license files, reservation codes.
//! - [`server`]: accept loops, the admin and device routers, handlers, the one
//!   error-to-HTTP mapping.
//! - [`sync`]: the sync engine (export, import, answer) and its network transport.
//! - [`workers`]: named background work (expiry sweep, alerts, upstream sync) on one runner.
//! - [`pki`], [`fsutil`], [`hex`]: the device CA and certificates, every file the satellite
//!   writes, the one hex encoding.
//! - [`config`]: the TOML configuration, validated into `Settings`.
//! - [`daemon`], [`signals`], [`shutdown`], [`systemd`]: `satellite serve`.
//! - [`logging`]: the log filter the daemon runs with and when it colours its output.
//! - [`agent`]: the device-side client.
//! - [`loadgen`]: the load generator (`satellite loadgen`), many agents over real TLS.
//! - [`cli`]: the operator commands, clients of the admin API.
#![forbid(unsafe_code)]

pub mod agent;
pub mod app;
pub mod cisco;
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
