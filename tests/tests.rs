//! Black-box tests of the `satellite` binary: a real daemon, the real CLI, real TLS.

mod util;

mod bad_input;
mod config;
mod corrupt;
mod durability;
mod https;
mod process;
mod walkthrough;
