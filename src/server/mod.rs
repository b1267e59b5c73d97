//! The network side: accept loops, the admin and device routers, and the one mapping from
//! errors to HTTP responses. Nothing here binds a port or installs a signal handler: the
//! daemon passes listeners and a shutdown signal in, so tests can use port 0.

pub mod admin;
pub mod console;
pub mod device;
pub mod device_ctx;
pub mod error;
pub mod gate;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod ratelimit;
pub mod rum;
pub mod sync;
