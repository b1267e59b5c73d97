//! Wire types: everything that crosses a process boundary as JSON. Domain types stay inside;
//! conversions happen here, at the edge, so a wire field can be added without touching the
//! domain and a domain refactor cannot silently change what clients see.

pub mod admin;
pub mod cisco;
pub mod device;
pub mod reservation;
pub mod rum;
pub mod sync;
