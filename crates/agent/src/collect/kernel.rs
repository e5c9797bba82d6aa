//! Scheduler activity: context switch and fork rates and process counts, from /proc/stat and a
//! scan of /proc/[pid]/stat.

use crate::collect::procfile::{ProcFile, parse_kernel_stats};
use crate::collect::rate::CounterTracker;
use crate::collect::{CollectError, Collector, ProcRoot, Sample};

pub const CONTEXT_SWITCHES_PER_SECOND: &str = "host_context_switches_per_second";
pub const FORKS_PER_SECOND: &str = "host_forks_per_second";
pub const PROCESSES: &str = "host_processes";

/// Process counts found by scanning the numeric directories of the proc root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessCount {
    pub total: u64,
    pub zombie: u64,
}

/// Count processes (thread-group leaders, one `/proc/<pid>` directory each) and zombies.
/// Processes that exit during the scan, or whose stat cannot be read or parsed, are skipped:
/// the scan races with the whole system and must not fail because of one process.
pub fn count_processes(root: &ProcRoot) -> Result<ProcessCount, CollectError> {
    let entries = std::fs::read_dir(root.path()).map_err(|source| CollectError::Read {
        path: root.path().to_owned(),
        source,
    })?;
    let mut count = ProcessCount::default();
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str() else { continue };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read(entry.path().join("stat")) else {
            continue; // vanished (ENOENT/ESRCH) between readdir and read
        };
        let Some(state) = process_state(&stat) else {
            tracing::debug!(pid, "unparsable /proc/[pid]/stat, process skipped");
            continue;
        };
        count.total += 1;
        if state == b'Z' {
            count.zombie += 1;
        }
    }
    Ok(count)
}

/// The state letter of a /proc/[pid]/stat line: the first field after the command, which is
/// in parentheses and may itself contain spaces and parentheses.
fn process_state(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 1..)?
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace())
        .filter(u8::is_ascii_alphabetic)
}

/// `host_context_switches_per_second`, `host_forks_per_second` and
/// `host_processes{state="total|running|blocked|zombie"}`. `running` and `blocked` are the
/// kernel's `procs_running`/`procs_blocked` and count threads (tasks); `total` and `zombie`
/// count processes.
#[derive(Debug)]
pub struct KernelCollector {
    root: ProcRoot,
    rates: CounterTracker,
}

impl KernelCollector {
    pub fn new(root: ProcRoot) -> Self {
        Self {
            root,
            rates: CounterTracker::new(),
        }
    }
}

impl Collector for KernelCollector {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn collect(&mut self, now_ms: i64, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let file = ProcFile::read(&self.root, "stat")?;
        let stats = parse_kernel_stats(&file)?;
        let count = count_processes(&self.root)?;
        let btime = stats.btime;
        let r = &mut self.rates;
        r.push_rate(
            out,
            CONTEXT_SWITCHES_PER_SECOND,
            &[],
            stats.ctxt,
            now_ms,
            btime,
            1.0,
        );
        r.push_rate(
            out,
            FORKS_PER_SECOND,
            &[],
            stats.processes,
            now_ms,
            btime,
            1.0,
        );
        r.forget_stale(now_ms);
        let mut push = |state, value: u64| {
            out.push(Sample::with_labels(
                PROCESSES,
                &[("state", state)],
                value as f64,
            ));
        };
        push("total", count.total);
        if let Some(running) = stats.procs_running {
            push("running", running.into());
        }
        if let Some(blocked) = stats.procs_blocked {
            push("blocked", blocked.into());
        }
        push("zombie", count.zombie);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testutil::{Fixture, assert_close, collect, value};

    fn stat(ctxt: u64, forks: u64) -> String {
        format!(
            "cpu  1 0 1 1 0 0 0 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\nctxt {ctxt}\nbtime 1700000000\nprocesses {forks}\nprocs_running 3\nprocs_blocked 1\n"
        )
    }

    fn pid_stat(pid: u32, comm: &str, state: char) -> String {
        format!(
            "{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 100 0 0 0 1 1 0 0 20 0 1 0 100 1000 10\n"
        )
    }

    #[test]
    fn rates_and_process_counts() {
        let fx = Fixture::new();
        fx.write("stat", &stat(1_000_000, 5_000));
        fx.write("1/stat", &pid_stat(1, "systemd", 'S'));
        fx.write("42/stat", &pid_stat(42, "weird) Z (name", 'R'));
        fx.write("43/stat", &pid_stat(43, "defunct", 'Z'));
        fx.write("44/stat", &pid_stat(44, "worker", 'D'));
        fx.write("45/stat", "45 (truncated");
        std::fs::create_dir_all(fx.root().join("46")).expect("dir"); // vanished: no stat
        fx.write("self/stat", &pid_stat(1, "not a pid dir", 'Z'));
        fx.write("sys/kernel/x", "1");
        let mut c = KernelCollector::new(fx.root());
        let s = collect(&mut c, 0);
        assert_eq!(s.len(), 4, "no rates on first sight: {s:?}");
        assert_close(value(&s, PROCESSES, &[("state", "total")]), 4.0);
        assert_close(value(&s, PROCESSES, &[("state", "zombie")]), 1.0);
        assert_close(value(&s, PROCESSES, &[("state", "running")]), 3.0);
        assert_close(value(&s, PROCESSES, &[("state", "blocked")]), 1.0);

        fx.write("stat", &stat(1_250_000, 5_300));
        fx.remove("43/stat");
        let s = collect(&mut c, 10_000);
        assert_eq!(s.len(), 6);
        assert_close(value(&s, CONTEXT_SWITCHES_PER_SECOND, &[]), 25_000.0);
        assert_close(value(&s, FORKS_PER_SECOND, &[]), 30.0);
        assert_close(value(&s, PROCESSES, &[("state", "total")]), 3.0);
        assert_close(value(&s, PROCESSES, &[("state", "zombie")]), 0.0);
    }

    #[test]
    fn process_state_parsing() {
        assert_eq!(process_state(b"1 (a b) S 0"), Some(b'S'));
        assert_eq!(process_state(b"1 (a) b) Z 0"), Some(b'Z'));
        assert_eq!(process_state(b"1 (a"), None);
        assert_eq!(process_state(b"1 (a)"), None);
        assert_eq!(process_state(b"1 (a) 5"), None);
    }

    #[test]
    fn malformed_stat_names_the_file() {
        let fx = Fixture::new();
        fx.write("stat", "cpu  1 0 1 1\nctxt lots\nbtime 1\nprocesses 1\n");
        let err = KernelCollector::new(fx.root())
            .collect(0, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, CollectError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("/stat"), "{err}");
    }
}
