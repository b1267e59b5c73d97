//! Black-box tests of the `satellite` binary: a real daemon, the real CLI, real TLS.

mod inproc;
mod util;

mod allocation;
mod bad_input;
mod config;
mod corrupt;
mod device_auth;
mod device_timers;
mod devices;
mod durability;
mod https;
mod process;
mod walkthrough;
