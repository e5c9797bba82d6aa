//! Swap space usage from /proc/meminfo and swap traffic rates from /proc/vmstat.

use crate::collect::memory::{MemInfo, percent};
use crate::collect::procfile::{ProcFile, boot_time};
use crate::collect::rate::CounterTracker;
use crate::collect::{CollectError, Collector, ProcRoot, Sample};

pub const SWAP_TOTAL_BYTES: &str = "host_swap_total_bytes";
pub const SWAP_USED_BYTES: &str = "host_swap_used_bytes";
pub const SWAP_USED_PERCENT: &str = "host_swap_used_percent";
pub const SWAP_IN_PAGES_PER_SECOND: &str = "host_swap_in_pages_per_second";
pub const SWAP_OUT_PAGES_PER_SECOND: &str = "host_swap_out_pages_per_second";

/// Swap gauges (percent is 0 on a host without swap) and `pswpin`/`pswpout` rates. A kernel
/// built without swap has no `pswpin`/`pswpout` lines; then the rate series are left out.
#[derive(Debug)]
pub struct SwapCollector {
    root: ProcRoot,
    rates: CounterTracker,
}

impl SwapCollector {
    pub fn new(root: ProcRoot) -> Self {
        Self {
            root,
            rates: CounterTracker::new(),
        }
    }
}

impl Collector for SwapCollector {
    fn name(&self) -> &'static str {
        "swap"
    }

    fn collect(&mut self, now_ms: i64, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let m = MemInfo::read(&self.root)?;
        let vmstat_file = ProcFile::read(&self.root, "vmstat")?;
        let vmstat: procfs::VmStat = vmstat_file.parse()?;
        let btime = boot_time(&self.root)?;

        let used = m.swap_total.saturating_sub(m.swap_free);
        out.push(Sample::new(SWAP_TOTAL_BYTES, m.swap_total as f64));
        out.push(Sample::new(SWAP_USED_BYTES, used as f64));
        out.push(Sample::new(SWAP_USED_PERCENT, percent(used, m.swap_total)));

        for (field, metric) in [
            ("pswpin", SWAP_IN_PAGES_PER_SECOND),
            ("pswpout", SWAP_OUT_PAGES_PER_SECOND),
        ] {
            let Some(&raw) = vmstat.0.get(field) else {
                continue;
            };
            let value = u64::try_from(raw)
                .map_err(|_| vmstat_file.malformed(format_args!("negative {field} {raw}")))?;
            self.rates
                .push_rate(out, metric, &[], value, now_ms, btime, 1.0);
        }
        self.rates.forget_stale(now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::memory::tests::meminfo;
    use crate::collect::testutil::{Fixture, assert_close, collect, value};

    #[test]
    fn swap_usage_and_page_rates() {
        let fx = Fixture::new();
        fx.write_btime(1_700_000_000);
        fx.write("meminfo", &meminfo(4_000_000, 3_000_000));
        fx.write(
            "vmstat",
            "nr_free_pages 1\npswpin 1000\npswpout 5000\npgfault 7\n",
        );
        let mut c = SwapCollector::new(fx.root());
        let s = collect(&mut c, 100_000);
        assert_eq!(s.len(), 3, "no rates on first sight: {s:?}");
        assert_close(value(&s, SWAP_TOTAL_BYTES, &[]), 4_000_000.0 * 1024.0);
        assert_close(value(&s, SWAP_USED_BYTES, &[]), 1_000_000.0 * 1024.0);
        assert_close(value(&s, SWAP_USED_PERCENT, &[]), 25.0);

        fx.write(
            "vmstat",
            "nr_free_pages 1\npswpin 1250\npswpout 6000\npgfault 9\n",
        );
        let s = collect(&mut c, 110_000);
        assert_eq!(s.len(), 5);
        assert_close(value(&s, SWAP_IN_PAGES_PER_SECOND, &[]), 25.0);
        assert_close(value(&s, SWAP_OUT_PAGES_PER_SECOND, &[]), 100.0);
    }

    #[test]
    fn no_swap_is_zero_percent_and_missing_counters_are_skipped() {
        let fx = Fixture::new();
        fx.write_btime(1);
        fx.write("meminfo", &meminfo(0, 0));
        fx.write("vmstat", "nr_free_pages 1\n");
        let mut c = SwapCollector::new(fx.root());
        collect(&mut c, 0);
        let s = collect(&mut c, 10_000);
        assert_eq!(s.len(), 3);
        assert_close(value(&s, SWAP_USED_PERCENT, &[]), 0.0);
    }

    #[test]
    fn malformed_vmstat_names_the_file() {
        let fx = Fixture::new();
        fx.write_btime(1);
        fx.write("meminfo", &meminfo(0, 0));
        let mut c = SwapCollector::new(fx.root());
        for bad in ["pswpin many\n", "pswpin\n", "pswpin -5\n"] {
            fx.write("vmstat", bad);
            let err = c.collect(0, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(err, CollectError::Malformed { .. }),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().contains("vmstat"), "{err}");
        }
    }
}
