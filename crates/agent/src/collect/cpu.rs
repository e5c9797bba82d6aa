//! CPU time split by state over the last interval, from /proc/stat jiffies of all cpus combined.

use crate::collect::procfile::{ProcFile, parse_kernel_stats};
use crate::collect::rate::same_boot;
use crate::collect::{CollectError, Collector, ProcRoot, Sample};

pub const CPU_PERCENT: &str = "host_cpu_percent";
pub const CPU_BUSY_PERCENT: &str = "host_cpu_busy_percent";

/// The states reported, in /proc/stat order except idle last. `guest`/`guest_nice` are left
/// out: the kernel already counts them inside `user`/`nice`.
pub const STATES: [&str; 8] = [
    "user", "nice", "system", "iowait", "irq", "softirq", "steal", "idle",
];
const IOWAIT: usize = 3;
const IDLE: usize = 7;

#[derive(Debug, Clone, Copy)]
struct Snapshot {
    jiffies: [u64; 8],
    boot_time: u64,
}

/// `host_cpu_percent{state}` and `host_cpu_busy_percent`. The first collection (and the first
/// after a reboot) emits nothing: percentages need two snapshots.
#[derive(Debug)]
pub struct CpuCollector {
    root: ProcRoot,
    previous: Option<Snapshot>,
}

impl CpuCollector {
    pub fn new(root: ProcRoot) -> Self {
        Self {
            root,
            previous: None,
        }
    }
}

impl Collector for CpuCollector {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&mut self, _now_ms: i64, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let file = ProcFile::read(&self.root, "stat")?;
        let stats = parse_kernel_stats(&file)?;
        let t = &stats.total;
        let current = Snapshot {
            jiffies: [
                t.user,
                t.nice,
                t.system,
                t.iowait.unwrap_or(0),
                t.irq.unwrap_or(0),
                t.softirq.unwrap_or(0),
                t.steal.unwrap_or(0),
                t.idle,
            ],
            boot_time: stats.btime,
        };
        let Some(previous) = self.previous.replace(current) else {
            return Ok(());
        };
        if !same_boot(previous.boot_time, current.boot_time) {
            return Ok(());
        }
        // iowait (and, after cpu hotplug, any state) can go backwards: count such a state as 0
        // for the interval instead of producing a negative share.
        let mut deltas = [0u64; 8];
        for (d, (now, before)) in deltas
            .iter_mut()
            .zip(current.jiffies.iter().zip(previous.jiffies.iter()))
        {
            *d = now.saturating_sub(*before);
        }
        let total: u128 = deltas.iter().map(|&d| u128::from(d)).sum();
        if total == 0 {
            return Ok(());
        }
        let percent = |d: u64| (d as f64 * 100.0 / total as f64).clamp(0.0, 100.0);
        for (state, &d) in STATES.iter().zip(deltas.iter()) {
            out.push(Sample::with_labels(
                CPU_PERCENT,
                &[("state", state)],
                percent(d),
            ));
        }
        let busy = 100.0 - percent(deltas[IDLE]) - percent(deltas[IOWAIT]);
        out.push(Sample::new(CPU_BUSY_PERCENT, busy.clamp(0.0, 100.0)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testutil::{Fixture, assert_close, collect, value};

    fn stat(cpu: &str, btime: u64) -> String {
        format!(
            "cpu  {cpu}\ncpu0 {cpu}\nintr 1 0\nctxt 100\nbtime {btime}\nprocesses 10\nprocs_running 1\nprocs_blocked 0\n"
        )
    }

    #[test]
    fn percentages_from_jiffy_deltas() {
        let fx = Fixture::new();
        //            user nice system idle iowait irq softirq steal guest guest_nice
        fx.write(
            "stat",
            &stat("1000 100 500 8000 200 0 50 0 300 0", 1_700_000_000),
        );
        let mut c = CpuCollector::new(fx.root());
        assert!(
            collect(&mut c, 0).is_empty(),
            "first collection has no previous snapshot"
        );

        // deltas: user 400, nice 0, system 200, idle 1000, iowait 200, irq 100, softirq 50,
        // steal 50 => total 2000 (guest +300 is already inside user)
        fx.write(
            "stat",
            &stat("1400 100 700 9000 400 100 100 50 600 0", 1_700_000_000),
        );
        let s = collect(&mut c, 10_000);
        assert_eq!(s.len(), 9);
        let pct = |state| value(&s, CPU_PERCENT, &[("state", state)]);
        assert_close(pct("user"), 20.0);
        assert_close(pct("nice"), 0.0);
        assert_close(pct("system"), 10.0);
        assert_close(pct("idle"), 50.0);
        assert_close(pct("iowait"), 10.0);
        assert_close(pct("irq"), 5.0);
        assert_close(pct("softirq"), 2.5);
        assert_close(pct("steal"), 2.5);
        assert_close(value(&s, CPU_BUSY_PERCENT, &[]), 40.0);
        let sum: f64 = s
            .iter()
            .filter(|x| x.name == CPU_PERCENT)
            .map(|x| x.value)
            .sum();
        assert_close(sum, 100.0);
    }

    #[test]
    fn iowait_going_backwards_counts_as_zero() {
        let fx = Fixture::new();
        fx.write("stat", &stat("100 0 100 100 500 0 0 0", 1));
        let mut c = CpuCollector::new(fx.root());
        collect(&mut c, 0);
        fx.write("stat", &stat("200 0 100 200 400 0 0 0", 1));
        let s = collect(&mut c, 10_000);
        assert_close(value(&s, CPU_PERCENT, &[("state", "iowait")]), 0.0);
        assert_close(value(&s, CPU_PERCENT, &[("state", "user")]), 50.0);
        assert_close(value(&s, CPU_BUSY_PERCENT, &[]), 50.0);
    }

    #[test]
    fn reboot_and_idle_interval_emit_nothing() {
        let fx = Fixture::new();
        fx.write("stat", &stat("100 0 100 100 0 0 0 0", 1_000_000));
        let mut c = CpuCollector::new(fx.root());
        collect(&mut c, 0);
        fx.write("stat", &stat("5 0 5 5 0 0 0 0", 2_000_000));
        assert!(collect(&mut c, 10_000).is_empty(), "rebooted");
        assert!(collect(&mut c, 20_000).is_empty(), "no jiffies elapsed");
        fx.write("stat", &stat("15 0 5 15 0 0 0 0", 2_000_000));
        assert_close(
            value(&collect(&mut c, 30_000), CPU_PERCENT, &[("state", "user")]),
            50.0,
        );
    }

    #[test]
    fn malformed_stat_names_the_file() {
        let fx = Fixture::new();
        fx.write("stat", "cpu  1 2 x 4\nbtime 1\n");
        let mut c = CpuCollector::new(fx.root());
        let err = c.collect(0, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, CollectError::Malformed { .. }), "{err:?}");
        assert_eq!(err.path(), fx.root().join("stat"));
        assert!(err.to_string().contains("/stat"), "{err}");
    }

    #[test]
    fn missing_stat_is_a_read_error_naming_the_file() {
        let fx = Fixture::new();
        let mut c = CpuCollector::new(fx.root());
        let err = c.collect(0, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, CollectError::Read { .. }), "{err:?}");
        assert!(err.to_string().starts_with("cannot read "), "{err}");
        assert_eq!(err.path(), fx.root().join("stat"));
    }
}
