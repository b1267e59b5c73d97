//! Black-box tests of the `satellite` binary: a real daemon, the real CLI, real TLS.

mod inproc;
mod util;

mod agent_cli;
mod allocation;
mod backup;
mod bad_input;
mod concurrency;
mod config;
mod corrupt;
mod crash;
mod device_auth;
mod device_timers;
mod devices;
mod durability;
mod full_disk;
mod https;
mod license_import;
mod metrics;
mod operator_devices;
mod power_loss;
mod process;
mod reservation;
mod rum;
mod sync;
mod upgrade;
mod walkthrough;
