//! Wire messages between the agent, the CLI and the server: the JSON API bodies and Prometheus remote_write.
//!
//! The protocol grows by adding messages and optional fields, never by changing old ones.
#![forbid(unsafe_code)]

pub mod alerting;
pub mod api;
pub mod backup;
pub mod collectd;
pub mod credential;
pub mod remote_write;

/// The version of this protocol spoken by this build; sent by the agent and the CLI.
pub const PROTOCOL_VERSION: u32 = 1;
