//! Agent checks: monitors the agent runs on a schedule that decide a state themselves
//! (`process`, `tcp`, `http`, `command`, `postgres`, `prometheus`), one module per kind.
//!
//! Every kind has the same shape: an options struct checked when the monitor is built
//! (`XCheck::from_options`), and an implementation of [`Check`] that never fails to produce a
//! [`CheckOutcome`]: a refused connection or a crashed plugin is an outcome, not an error.

pub mod command;
pub mod http;
mod net_util;
pub mod options;
pub mod options_host;
pub mod perfdata;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod registry_host;
pub mod registry_net;
pub mod tcp;

#[cfg(test)]
mod net_testutil;

use std::future::Future;
use std::pin::Pin;

pub use crate::collect::Sample;

/// Nagios-compatible status of one check run (the numeric value is the plugin exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

/// The result of one run of a check. A check never fails to produce one: a refused connection,
/// a timeout or a plugin that crashed is an outcome with status Critical or Unknown and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    pub status: CheckStatus,
    /// One human line for the NOC, e.g. `HTTP 503 from http://127.0.0.1:8080/health in 12 ms`
    /// or a plugin's first output line (without perfdata). At most ~1 KiB.
    pub message: String,
    /// Metrics of this run (the runner adds `host`, `platform` and `monitor` labels and the time).
    pub samples: Vec<Sample>,
}

/// A check's options are wrong (reported when the spec is loaded, before anything runs).
#[derive(Debug, thiserror::Error)]
#[error("options{path}: {message}")]
pub struct CheckConfigError {
    /// JSON path inside the monitor's `options`, e.g. `.url` or `.relabel[0].regex`; empty for the whole object.
    pub path: String,
    pub message: String,
}

/// A boxed future returned by [`Check::run`].
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckOutcome> + Send + 'a>>;

/// One configured check. Built once from the monitor's options, then run every interval
/// (never concurrently with itself). Implementations keep state between runs where needed
/// (e.g. per-process CPU time for rogue process detection) and must honour their own timeout.
pub trait Check: Send {
    /// The monitor kind this check implements (`http`, `tcp`, `command`, ...).
    fn kind(&self) -> &'static str;
    /// Run once. `now_ms` is the Unix time in milliseconds of this run (from the agent's clock).
    fn run(&mut self, now_ms: i64) -> CheckFuture<'_>;
}

impl CheckStatus {
    /// The status for a Nagios plugin exit code; anything but 0..=3 is unknown.
    pub fn from_code(code: i64) -> CheckStatus {
        match code {
            0 => CheckStatus::Ok,
            1 => CheckStatus::Warning,
            2 => CheckStatus::Critical,
            _ => CheckStatus::Unknown,
        }
    }

    /// The Nagios code (0 ok, 1 warning, 2 critical, 3 unknown).
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Monitor kinds the agent's built-in collectors cover (no check to build) or the server
/// evaluates itself (`heartbeat`).
pub const COLLECTOR_KINDS: &[&str] = &[
    "cpu",
    "memory",
    "swap",
    "df",
    "interface",
    "load",
    "heartbeat",
];

/// Builds the check for a monitor of `kind`; `None` when the kind needs no check of its own.
pub fn build(
    kind: &str,
    options: &serde_json::Map<String, serde_json::Value>,
    proc_root: &std::path::Path,
) -> Option<Result<Box<dyn Check>, CheckConfigError>> {
    if COLLECTOR_KINDS.contains(&kind) {
        return None;
    }
    registry_net::build_net_check(kind, options)
        .or_else(|| registry_host::build_host_check(kind, options, proc_root))
        .or_else(|| {
            Some(Err(CheckConfigError {
                path: String::new(),
                message: format!("monitor kind {kind:?} has no check in this agent"),
            }))
        })
}
