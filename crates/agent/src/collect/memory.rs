//! Physical memory usage from /proc/meminfo, and the small /proc/meminfo parser swap shares.
//!
//! /proc/meminfo is parsed here rather than with `procfs::Meminfo`, whose parser can panic on
//! malformed input (unchecked `* 1024` on the value, byte slicing of the field name).

use std::collections::HashMap;

use crate::collect::procfile::ProcFile;
use crate::collect::{CollectError, Collector, ProcRoot, Sample};

pub const MEMORY_TOTAL_BYTES: &str = "host_memory_total_bytes";
pub const MEMORY_AVAILABLE_BYTES: &str = "host_memory_available_bytes";
pub const MEMORY_CACHED_BYTES: &str = "host_memory_cached_bytes";
pub const MEMORY_BUFFERS_BYTES: &str = "host_memory_buffers_bytes";
pub const MEMORY_USED_BYTES: &str = "host_memory_used_bytes";
pub const MEMORY_USED_PERCENT: &str = "host_memory_used_percent";

/// The /proc/meminfo fields the collectors use, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemInfo {
    pub(crate) total: u64,
    pub(crate) free: u64,
    /// `MemAvailable` (Linux ≥ 3.14).
    pub(crate) available: Option<u64>,
    pub(crate) buffers: u64,
    pub(crate) cached: u64,
    pub(crate) s_reclaimable: u64,
    pub(crate) swap_total: u64,
    pub(crate) swap_free: u64,
}

impl MemInfo {
    pub(crate) fn read(root: &ProcRoot) -> Result<Self, CollectError> {
        Self::parse(&ProcFile::read(root, "meminfo")?)
    }

    pub(crate) fn parse(file: &ProcFile) -> Result<Self, CollectError> {
        let mut fields: HashMap<&str, u64> = HashMap::new();
        for line in file.text()?.lines() {
            if line.trim().is_empty() {
                continue;
            }
            let (name, rest) = line
                .split_once(':')
                .ok_or_else(|| file.malformed(format_args!("line without colon: {line:?}")))?;
            let mut parts = rest.split_whitespace();
            let number = parts
                .next()
                .ok_or_else(|| file.malformed(format_args!("{name} has no value")))?;
            let number: u64 = number
                .parse()
                .map_err(|e| file.malformed(format_args!("{name} value {number:?}: {e}")))?;
            let multiplier = match parts.next() {
                None => 1,
                Some("kB") => 1024,
                Some(unit) => {
                    return Err(file.malformed(format_args!("{name} has unknown unit {unit:?}")));
                }
            };
            let bytes = number
                .checked_mul(multiplier)
                .ok_or_else(|| file.malformed(format_args!("{name} value {number} overflows")))?;
            fields.insert(name.trim(), bytes);
        }
        let required = |name: &str| {
            fields
                .get(name)
                .copied()
                .ok_or_else(|| file.malformed(format_args!("no {name} line")))
        };
        Ok(Self {
            total: required("MemTotal")?,
            free: required("MemFree")?,
            available: fields.get("MemAvailable").copied(),
            buffers: required("Buffers")?,
            cached: required("Cached")?,
            s_reclaimable: fields.get("SReclaimable").copied().unwrap_or(0),
            swap_total: required("SwapTotal")?,
            swap_free: required("SwapFree")?,
        })
    }
}

/// `part / whole` in percent, 0 when `whole` is 0, clamped to 0..=100.
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 100.0 / whole as f64).clamp(0.0, 100.0)
}

/// Memory gauges. `available` is the kernel's `MemAvailable` estimate (before Linux 3.14:
/// `MemFree + Buffers + Cached + SReclaimable`, capped at total); `used` is total − available,
/// so page cache that can be dropped does not count as used.
#[derive(Debug)]
pub struct MemoryCollector {
    root: ProcRoot,
}

impl MemoryCollector {
    pub fn new(root: ProcRoot) -> Self {
        Self { root }
    }
}

impl Collector for MemoryCollector {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn collect(&mut self, _now_ms: i64, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let m = MemInfo::read(&self.root)?;
        let cached = m.cached.saturating_add(m.s_reclaimable);
        let available = m
            .available
            .unwrap_or_else(|| m.free.saturating_add(m.buffers).saturating_add(cached))
            .min(m.total);
        let used = m.total - available;
        out.push(Sample::new(MEMORY_TOTAL_BYTES, m.total as f64));
        out.push(Sample::new(MEMORY_AVAILABLE_BYTES, available as f64));
        out.push(Sample::new(MEMORY_CACHED_BYTES, cached as f64));
        out.push(Sample::new(MEMORY_BUFFERS_BYTES, m.buffers as f64));
        out.push(Sample::new(MEMORY_USED_BYTES, used as f64));
        out.push(Sample::new(MEMORY_USED_PERCENT, percent(used, m.total)));
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::collect::testutil::{Fixture, assert_close, collect, value};

    pub(crate) fn meminfo(swap_total_kb: u64, swap_free_kb: u64) -> String {
        format!(
            "MemTotal:       16000000 kB\n\
             MemFree:         2000000 kB\n\
             MemAvailable:   12000000 kB\n\
             Buffers:          500000 kB\n\
             Cached:          6000000 kB\n\
             SwapCached:            0 kB\n\
             SwapTotal:      {swap_total_kb} kB\n\
             SwapFree:       {swap_free_kb} kB\n\
             SReclaimable:    1000000 kB\n\
             HugePages_Total:       0\n"
        )
    }

    #[test]
    fn memory_gauges_in_bytes() {
        let fx = Fixture::new();
        fx.write("meminfo", &meminfo(0, 0));
        let mut c = MemoryCollector::new(fx.root());
        for now in [0, 10_000] {
            let s = collect(&mut c, now);
            assert_eq!(s.len(), 6);
            assert_close(value(&s, MEMORY_TOTAL_BYTES, &[]), 16_000_000.0 * 1024.0);
            assert_close(
                value(&s, MEMORY_AVAILABLE_BYTES, &[]),
                12_000_000.0 * 1024.0,
            );
            assert_close(value(&s, MEMORY_CACHED_BYTES, &[]), 7_000_000.0 * 1024.0);
            assert_close(value(&s, MEMORY_BUFFERS_BYTES, &[]), 500_000.0 * 1024.0);
            assert_close(value(&s, MEMORY_USED_BYTES, &[]), 4_000_000.0 * 1024.0);
            assert_close(value(&s, MEMORY_USED_PERCENT, &[]), 25.0);
        }
    }

    #[test]
    fn old_kernel_without_mem_available_estimates_it() {
        let fx = Fixture::new();
        fx.write(
            "meminfo",
            "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 200 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
        );
        let s = collect(&mut MemoryCollector::new(fx.root()), 0);
        assert_close(value(&s, MEMORY_AVAILABLE_BYTES, &[]), 350.0 * 1024.0);
        assert_close(value(&s, MEMORY_USED_PERCENT, &[]), 65.0);
    }

    #[test]
    fn malformed_meminfo_names_the_file() {
        let fx = Fixture::new();
        let mut c = MemoryCollector::new(fx.root());
        for bad in [
            "MemTotal: lots kB\n",
            "MemTotal 5 kB\n",
            "MemTotal: 18446744073709551615 kB\nMemFree: 1 kB\n",
            "Memé: 5 kB\n",
            "MemTotal: 5 parsecs\n",
            "MemTotal: 5 kB\n",
        ] {
            fx.write("meminfo", bad);
            let err = c.collect(0, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(err, CollectError::Malformed { .. }),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().contains("meminfo"), "{err}");
        }
    }
}
