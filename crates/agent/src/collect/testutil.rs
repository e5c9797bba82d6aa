//! Test fixtures: a temporary directory laid out like /proc.

use std::path::Path;

use crate::collect::{Collector, ProcRoot, Sample};

pub(crate) struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
    }

    pub(crate) fn root(&self) -> ProcRoot {
        ProcRoot::new(self.dir.path())
    }

    /// Write `content` to `rel` below the fixture root, creating parent directories.
    pub(crate) fn write(&self, rel: impl AsRef<Path>, content: &str) {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture dir");
        }
        std::fs::write(path, content).expect("write fixture file");
    }

    pub(crate) fn remove(&self, rel: impl AsRef<Path>) {
        std::fs::remove_file(self.dir.path().join(rel)).expect("remove fixture file");
    }

    /// A minimal /proc/stat with the given boot time (for collectors that only need btime).
    pub(crate) fn write_btime(&self, btime: u64) {
        self.write(
            "stat",
            &format!("cpu  1 0 1 1 0 0 0 0 0 0\nctxt 1\nbtime {btime}\nprocesses 1\n"),
        );
    }
}

pub(crate) fn collect(c: &mut dyn Collector, now_ms: i64) -> Vec<Sample> {
    let mut out = Vec::new();
    c.collect(now_ms, &mut out)
        .unwrap_or_else(|e| panic!("collect {}: {e}", c.name()));
    out
}

/// The value of the one sample named `name` whose labels include all of `labels`.
pub(crate) fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {name}{labels:?}, found {found:?} in {samples:#?}"
    );
    found[0].value
}

pub(crate) fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}
