//! The agent: collects this host's metrics, keeps them in an on-disk outbox and pushes them to the server.
//!
//! Never depends on the server's crates: it speaks to the server only through `client` and `protocol`.
#![forbid(unsafe_code)]

pub mod backup;
pub mod check;
pub mod check_runner;
pub mod collect;
pub mod outbox;
pub mod runner;
pub mod state;

pub use runner::{AgentOptions, run};
