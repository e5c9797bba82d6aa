//! Time since boot from /proc/uptime and the boot time from /proc/stat.

use crate::collect::procfile::{ProcFile, boot_time_from};
use crate::collect::{CollectError, Collector, ProcRoot, Sample};

pub const UPTIME_SECONDS: &str = "host_uptime_seconds";
pub const BOOT_TIME_SECONDS: &str = "host_boot_time_seconds";

/// `host_uptime_seconds` (including time suspended) and `host_boot_time_seconds` (Unix time).
#[derive(Debug)]
pub struct UptimeCollector {
    root: ProcRoot,
}

impl UptimeCollector {
    pub fn new(root: ProcRoot) -> Self {
        Self { root }
    }
}

impl Collector for UptimeCollector {
    fn name(&self) -> &'static str {
        "uptime"
    }

    fn collect(&mut self, _now_ms: i64, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let file = ProcFile::read(&self.root, "uptime")?;
        let uptime: procfs::Uptime = file.parse()?;
        if !uptime.uptime.is_finite() || uptime.uptime < 0.0 {
            return Err(file.malformed(format_args!("uptime {} out of range", uptime.uptime)));
        }
        let btime = boot_time_from(&ProcFile::read(&self.root, "stat")?)?;
        out.push(Sample::new(UPTIME_SECONDS, uptime.uptime));
        out.push(Sample::new(BOOT_TIME_SECONDS, btime as f64));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testutil::{Fixture, assert_close, collect, value};

    #[test]
    fn uptime_and_boot_time() {
        let fx = Fixture::new();
        fx.write_btime(1_700_000_000);
        fx.write("uptime", "12345.67 40000.00\n");
        let mut c = UptimeCollector::new(fx.root());
        let s = collect(&mut c, 0);
        assert_close(value(&s, UPTIME_SECONDS, &[]), 12_345.67);
        assert_close(value(&s, BOOT_TIME_SECONDS, &[]), 1_700_000_000.0);
        fx.write("uptime", "12355.67 40020.00\n");
        let s = collect(&mut c, 10_000);
        assert_eq!(s.len(), 2);
        assert_close(value(&s, UPTIME_SECONDS, &[]), 12_355.67);
    }

    #[test]
    fn malformed_files_are_named() {
        let fx = Fixture::new();
        fx.write_btime(1);
        let mut c = UptimeCollector::new(fx.root());
        for bad in ["", "abc 1\n", "inf 1\n", "-3 1\n"] {
            fx.write("uptime", bad);
            let err = c.collect(0, &mut Vec::new()).unwrap_err();
            assert!(err.to_string().contains("uptime"), "{bad:?}: {err}");
            assert!(matches!(err, CollectError::Malformed { .. }), "{err:?}");
        }
        fx.write("uptime", "5.0 1.0\n");
        fx.write("stat", "cpu 1 1 1 1\nbtime soon\n");
        let err = c.collect(0, &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string().contains("/stat") && err.to_string().contains("btime"),
            "{err}"
        );
    }
}
