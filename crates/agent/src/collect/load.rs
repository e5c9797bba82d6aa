//! Load averages from /proc/loadavg.

use crate::collect::procfile::ProcFile;
use crate::collect::{CollectError, Collector, ProcRoot, Sample};

pub const LOAD1: &str = "host_load1";
pub const LOAD5: &str = "host_load5";
pub const LOAD15: &str = "host_load15";
/// The 5-minute load average divided by the number of cpus: comparable across hosts.
pub const LOAD5_PER_CPU: &str = "host_load5_per_cpu";

/// `host_load1`, `host_load5`, `host_load15`: run-queue plus uninterruptible tasks averaged
/// over 1, 5 and 15 minutes (not divided by the number of cpus), and `host_load5_per_cpu`
/// (divided by the cpus listed in /proc/stat, so one threshold fits every host).
#[derive(Debug)]
pub struct LoadCollector {
    root: ProcRoot,
}

impl LoadCollector {
    pub fn new(root: ProcRoot) -> Self {
        Self { root }
    }
}

impl Collector for LoadCollector {
    fn name(&self) -> &'static str {
        "load"
    }

    fn collect(&mut self, _now_ms: i64, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let file = ProcFile::read(&self.root, "loadavg")?;
        let load: procfs::LoadAverage = file.parse()?;
        for (name, v) in [
            (LOAD1, load.one),
            (LOAD5, load.five),
            (LOAD15, load.fifteen),
        ] {
            let v = f64::from(v);
            if !v.is_finite() || v < 0.0 {
                return Err(file.malformed(format_args!("load average {v} out of range")));
            }
            out.push(Sample::new(name, v));
        }
        let stat = ProcFile::read(&self.root, "stat")?;
        let cpus = stat
            .text()?
            .lines()
            .filter(|line| {
                line.strip_prefix("cpu")
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .count();
        if cpus == 0 {
            return Err(stat.malformed("no cpuN line"));
        }
        out.push(Sample::new(
            LOAD5_PER_CPU,
            f64::from(load.five) / cpus as f64,
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testutil::{Fixture, assert_close, collect, value};

    #[test]
    fn reads_the_three_averages() {
        let fx = Fixture::new();
        fx.write("loadavg", "0.50 1.25 2.00 3/512 12345\n");
        fx.write(
            "stat",
            "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 1 2 3 4 5 6 7 8 9 10\nintr 0\nbtime 1\n",
        );
        let mut c = LoadCollector::new(fx.root());
        for now in [0, 10_000] {
            let s = collect(&mut c, now);
            assert_eq!(s.len(), 4);
            assert_close(value(&s, LOAD1, &[]), 0.5);
            assert_close(value(&s, LOAD5, &[]), 1.25);
            assert_close(value(&s, LOAD15, &[]), 2.0);
            assert_close(value(&s, LOAD5_PER_CPU, &[]), 0.625);
        }
    }

    #[test]
    fn malformed_loadavg_names_the_file() {
        let fx = Fixture::new();
        let mut c = LoadCollector::new(fx.root());
        for bad in [
            "0.50 abc 2.00 3/512 1\n",
            "",
            "nan 1 1 1/1 1\n",
            "-1 1 1 1/1 1\n",
        ] {
            fx.write("loadavg", bad);
            let err = c.collect(0, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(err, CollectError::Malformed { .. }),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().contains("loadavg"), "{err}");
        }
    }
}
