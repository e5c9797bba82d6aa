//! Std-like helpers shared by every crate: the clock seam and random identifiers.
#![forbid(unsafe_code)]

pub mod clock;
pub mod ids;

pub use clock::{Clock, FakeClock, SystemClock};
