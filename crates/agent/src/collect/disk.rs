//! Block-device I/O rates from /proc/diskstats for whole disks and device-mapper devices.

use crate::collect::procfile::{ProcFile, boot_time};
use crate::collect::rate::CounterTracker;
use crate::collect::{CollectError, Collector, ProcRoot, Sample};

pub const DISK_READS_PER_SECOND: &str = "host_disk_reads_per_second";
pub const DISK_WRITES_PER_SECOND: &str = "host_disk_writes_per_second";
pub const DISK_READ_BYTES_PER_SECOND: &str = "host_disk_read_bytes_per_second";
pub const DISK_WRITTEN_BYTES_PER_SECOND: &str = "host_disk_written_bytes_per_second";
pub const DISK_BUSY_PERCENT: &str = "host_disk_busy_percent";

/// /proc/diskstats counts sectors of 512 bytes whatever the device's real sector size.
pub const SECTOR_BYTES: f64 = 512.0;

/// Name prefixes of devices that are not disks: loop devices, RAM disks (`ram`, `zram`),
/// optical and floppy drives, and network block devices (idle `nbd0..15` exist everywhere).
const SKIPPED_PREFIXES: &[&str] = &["loop", "ram", "zram", "sr", "fd", "nbd"];

/// Prefixes whose partitions are the disk name followed by digits (`sda1`, `vdb2`, `xvda1`).
const LETTER_DISK_PREFIXES: &[&str] = &["sd", "hd", "vd", "xvd"];

/// Whether a /proc/diskstats device is reported: whole disks and device-mapper (`dm-N`, LVM
/// and LUKS volumes) and md RAID devices; not partitions (their I/O is already in the disk's),
/// not loop/RAM/optical/floppy/nbd devices, not eMMC boot and RPMB areas. Partitions are
/// recognised by name: `sda1`-style for sd/hd/vd/xvd disks, and `<name><digit>p<digits>`
/// (`nvme0n1p1`, `mmcblk0p1`, `md0p1`). Unknown names are kept.
pub fn is_reported_disk(name: &str) -> bool {
    if name.is_empty() || SKIPPED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    if name.starts_with("mmcblk") && (name.contains("boot") || name.contains("rpmb")) {
        return false;
    }
    for prefix in LETTER_DISK_PREFIXES {
        if let Some(rest) = name.strip_prefix(prefix) {
            let letters = rest.trim_end_matches(|c: char| c.is_ascii_digit());
            if !letters.is_empty()
                && letters.chars().all(|c| c.is_ascii_lowercase())
                && letters.len() < rest.len()
            {
                return false;
            }
        }
    }
    !is_p_partition(name)
}

/// `<stem><digit>p<digits>`, e.g. `nvme0n1p1`.
fn is_p_partition(name: &str) -> bool {
    let without_number = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if without_number.len() == name.len() {
        return false;
    }
    without_number
        .strip_suffix('p')
        .and_then(|stem| stem.chars().last())
        .is_some_and(|c| c.is_ascii_digit())
}

/// Per-device rates labelled `device`. `busy_percent` is the share of the interval the device
/// had I/O in flight (io_ticks), capped at 100.
#[derive(Debug)]
pub struct DiskCollector {
    root: ProcRoot,
    rates: CounterTracker,
}

impl DiskCollector {
    pub fn new(root: ProcRoot) -> Self {
        Self {
            root,
            rates: CounterTracker::new(),
        }
    }
}

impl Collector for DiskCollector {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn collect(&mut self, now_ms: i64, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let file = ProcFile::read(&self.root, "diskstats")?;
        let stats: procfs::DiskStats = file.parse()?;
        let btime = boot_time(&self.root)?;
        let mut disks: Vec<&procfs::DiskStat> = stats
            .0
            .iter()
            .filter(|d| is_reported_disk(&d.name))
            .collect();
        disks.sort_by(|a, b| a.name.cmp(&b.name));
        for d in disks {
            let labels = [("device", d.name.as_str())];
            let r = &mut self.rates;
            r.push_rate(
                out,
                DISK_READS_PER_SECOND,
                &labels,
                d.reads,
                now_ms,
                btime,
                1.0,
            );
            r.push_rate(
                out,
                DISK_WRITES_PER_SECOND,
                &labels,
                d.writes,
                now_ms,
                btime,
                1.0,
            );
            r.push_rate(
                out,
                DISK_READ_BYTES_PER_SECOND,
                &labels,
                d.sectors_read,
                now_ms,
                btime,
                SECTOR_BYTES,
            );
            r.push_rate(
                out,
                DISK_WRITTEN_BYTES_PER_SECOND,
                &labels,
                d.sectors_written,
                now_ms,
                btime,
                SECTOR_BYTES,
            );
            // io_ticks is milliseconds busy: ms per second / 10 = percent.
            let key = crate::collect::rate::SeriesKey::new(DISK_BUSY_PERCENT, &labels);
            if let Some(ms_per_second) = r.rate(&key, d.time_in_progress, now_ms, btime) {
                let busy = (ms_per_second / 10.0).clamp(0.0, 100.0);
                out.push(Sample::with_labels(DISK_BUSY_PERCENT, &labels, busy));
            }
        }
        self.rates.forget_stale(now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::testutil::{Fixture, assert_close, collect, value};

    #[test]
    fn selection_rule() {
        for keep in [
            "sda", "sdab", "vda", "xvdf", "hda", "nvme0n1", "nvme10n2", "mmcblk0", "dm-0", "md0",
            "md127", "rbd0", "bcache0",
        ] {
            assert!(is_reported_disk(keep), "{keep} should be kept");
        }
        for skip in [
            "sda1",
            "sdab12",
            "vda1",
            "xvda1",
            "hda3",
            "nvme0n1p1",
            "nvme10n2p15",
            "mmcblk0p2",
            "mmcblk0boot0",
            "mmcblk0rpmb",
            "md0p1",
            "loop0",
            "ram0",
            "zram0",
            "sr0",
            "fd0",
            "nbd3",
            "",
        ] {
            assert!(!is_reported_disk(skip), "{skip} should be skipped");
        }
    }

    fn line(name: &str, reads: u64, sect_r: u64, writes: u64, sect_w: u64, ticks: u64) -> String {
        format!(
            "   8       0 {name} {reads} 0 {sect_r} 10 {writes} 0 {sect_w} 20 0 {ticks} 30 0 0 0 0\n"
        )
    }

    #[test]
    fn rates_from_two_snapshots() {
        let fx = Fixture::new();
        fx.write_btime(1_700_000_000);
        let snapshot = |reads, sr, writes, sw, ticks| {
            let mut s = String::new();
            s += &line("loop0", reads, sr, writes, sw, ticks);
            s += &line("sda", reads, sr, writes, sw, ticks);
            s += &line("sda1", reads, sr, writes, sw, ticks);
            s += &line("dm-0", reads / 2, sr / 2, writes / 2, sw / 2, ticks / 2);
            s
        };
        fx.write("diskstats", &snapshot(1_000, 8_000, 2_000, 16_000, 5_000));
        let mut c = DiskCollector::new(fx.root());
        assert!(
            collect(&mut c, 50_000).is_empty(),
            "no rates on first sight"
        );

        fx.write("diskstats", &snapshot(2_000, 28_480, 2_500, 36_480, 7_500));
        let s = collect(&mut c, 60_000);
        assert_eq!(s.len(), 2 * 5, "sda and dm-0 only: {s:?}");
        let sda = [("device", "sda")];
        assert_close(value(&s, DISK_READS_PER_SECOND, &sda), 100.0);
        assert_close(value(&s, DISK_WRITES_PER_SECOND, &sda), 50.0);
        assert_close(value(&s, DISK_READ_BYTES_PER_SECOND, &sda), 2_048.0 * 512.0);
        assert_close(
            value(&s, DISK_WRITTEN_BYTES_PER_SECOND, &sda),
            2_048.0 * 512.0,
        );
        assert_close(value(&s, DISK_BUSY_PERCENT, &sda), 25.0);
        let dm = [("device", "dm-0")];
        assert_close(value(&s, DISK_READS_PER_SECOND, &dm), 50.0);
        assert_close(value(&s, DISK_BUSY_PERCENT, &dm), 12.5);
    }

    #[test]
    fn busy_is_capped_at_100() {
        let fx = Fixture::new();
        fx.write_btime(1);
        fx.write("diskstats", &line("nvme0n1", 0, 0, 0, 0, 0));
        let mut c = DiskCollector::new(fx.root());
        collect(&mut c, 0);
        fx.write("diskstats", &line("nvme0n1", 0, 0, 0, 0, 10_200));
        let s = collect(&mut c, 10_000);
        assert_close(
            value(&s, DISK_BUSY_PERCENT, &[("device", "nvme0n1")]),
            100.0,
        );
    }

    #[test]
    fn malformed_diskstats_names_the_file() {
        let fx = Fixture::new();
        fx.write_btime(1);
        fx.write("diskstats", "   8       0 sda 1 2 three\n");
        let err = DiskCollector::new(fx.root())
            .collect(0, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, CollectError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("diskstats"), "{err}");
    }
}
