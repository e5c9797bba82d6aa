//! Linux host-metric collectors: the shared sample, collector and /proc root types.
//!
//! Every collector reads files below a [`ProcRoot`] (normally `/proc`, a fixture directory in
//! tests), never reads the clock itself (time is the `now_ms` parameter) and appends
//! [`Sample`]s to a caller-owned buffer. Labels never include the host: the agent adds
//! `host`/`platform` when it ships the samples.
//!
//! Rates are computed by each collector's own [`rate::CounterTracker`]; no state is persisted,
//! so after an agent restart the first collection emits no rate series (only gauges).

pub mod cpu;
pub mod disk;
mod error;
pub mod filesystem;
pub mod kernel;
pub mod load;
pub mod memory;
pub mod network;
mod procfile;
pub mod rate;
pub mod swap;
pub mod uptime;

#[cfg(test)]
mod testutil;

use std::path::{Path, PathBuf};

pub use error::CollectError;

/// One metric value. `labels` never contain `host`; the agent adds host and platform labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// A sample without labels.
    pub fn new(name: &str, value: f64) -> Self {
        Self {
            name: name.to_owned(),
            labels: Vec::new(),
            value,
        }
    }

    /// A sample with labels given as `(name, value)` pairs.
    pub fn with_labels(name: &str, labels: &[(&str, &str)], value: f64) -> Self {
        Self {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        }
    }

    /// The value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A source of host samples. Collectors keep their own state between calls (previous counter
/// values for rates) and must be called with a non-decreasing `now_ms` (Unix milliseconds).
pub trait Collector: Send {
    /// Short stable name of the collector (`cpu`, `memory`, ...), for logs and error reports.
    fn name(&self) -> &'static str;

    /// Append this interval's samples to `out`. On error nothing needs to be appended, but
    /// samples appended before the error may remain; callers should log the error and go on
    /// with the other collectors.
    fn collect(&mut self, now_ms: i64, out: &mut Vec<Sample>) -> Result<(), CollectError>;
}

/// Where the proc filesystem is mounted (`/proc` on a host; e.g. `/host/proc` in a container
/// with the host's proc bind-mounted; a fixture directory in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcRoot(PathBuf);

impl ProcRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// The root directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A file below the root, e.g. `root.join("net/dev")`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.0.join(rel)
    }
}

impl Default for ProcRoot {
    fn default() -> Self {
        Self(PathBuf::from("/proc"))
    }
}

/// Every collector of this crate, reading below `root`; the filesystem collector uses the
/// real `statvfs(2)` ([`filesystem::RustixStatFs`]).
pub fn default_collectors(root: &ProcRoot) -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(cpu::CpuCollector::new(root.clone())),
        Box::new(load::LoadCollector::new(root.clone())),
        Box::new(memory::MemoryCollector::new(root.clone())),
        Box::new(swap::SwapCollector::new(root.clone())),
        Box::new(filesystem::FilesystemCollector::new(
            root.clone(),
            Box::new(filesystem::RustixStatFs),
        )),
        Box::new(disk::DiskCollector::new(root.clone())),
        Box::new(network::NetworkCollector::new(root.clone())),
        Box::new(kernel::KernelCollector::new(root.clone())),
        Box::new(uptime::UptimeCollector::new(root.clone())),
    ]
}
