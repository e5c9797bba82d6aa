//! Robustness: collectors fed random, half-plausible /proc files never panic, and whatever

#![forbid(unsafe_code)]
//! they emit is finite and in range.

use std::path::Path;

use cloudkeep_agent::collect::filesystem::{FilesystemCollector, FsStats, StatFs};
use cloudkeep_agent::collect::{Collector, ProcRoot, Sample, cpu, disk, kernel, load, memory};
use cloudkeep_agent::collect::{network, swap, uptime};
use proptest::prelude::*;

struct FixedStatFs;

impl StatFs for FixedStatFs {
    fn statvfs(&self, _mountpoint: &Path) -> std::io::Result<FsStats> {
        Ok(FsStats {
            fragment_size: 4096,
            blocks: 10,
            blocks_free: 20,
            blocks_available: 30,
            files: 5,
            files_free: 9,
        })
    }
}

const FILES: &[&str] = &[
    "stat",
    "loadavg",
    "meminfo",
    "vmstat",
    "self/mountinfo",
    "diskstats",
    "net/dev",
    "uptime",
    "1/stat",
];

const LINE_STARTS: &[&str] = &[
    "",
    "cpu ",
    "cpu0 ",
    "btime ",
    "ctxt ",
    "processes ",
    "procs_running ",
    "MemTotal:",
    "MemAvailable:",
    "SwapTotal:",
    "SwapFree:",
    "pswpin ",
    "   8 0 sda ",
    "   8 1 sda1 ",
    "  eth0: ",
    "27 1 8:1 / / rw - ext4 /dev/sda1 rw",
    "28 1 8:1 / /m\\040x rw shared:1 - xfs /dev/sdb ",
    "1 (a) b) ",
];

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[0-9]{1,3}",
        "[0-9]{20,30}",
        "[0-9]\\.[0-9]{1,3}",
        "[a-zA-Z_]{1,6}:?",
        Just("kB".to_owned()),
        Just("-".to_owned()),
        Just("nan".to_owned()),
        Just("1e400".to_owned()),
        Just("\\777".to_owned()),
        Just("é".to_owned()),
        Just("3/512".to_owned()),
    ]
}

fn file_content() -> impl Strategy<Value = String> {
    let line = (
        proptest::sample::select(LINE_STARTS),
        proptest::collection::vec(token(), 0..20),
    )
        .prop_map(|(start, tokens)| format!("{start}{}", tokens.join(" ")));
    proptest::collection::vec(line, 0..8).prop_map(|lines| lines.join("\n"))
}

fn collectors(root: &ProcRoot) -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(cpu::CpuCollector::new(root.clone())),
        Box::new(load::LoadCollector::new(root.clone())),
        Box::new(memory::MemoryCollector::new(root.clone())),
        Box::new(swap::SwapCollector::new(root.clone())),
        Box::new(FilesystemCollector::new(
            root.clone(),
            Box::new(FixedStatFs),
        )),
        Box::new(disk::DiskCollector::new(root.clone())),
        Box::new(network::NetworkCollector::new(root.clone())),
        Box::new(kernel::KernelCollector::new(root.clone())),
        Box::new(uptime::UptimeCollector::new(root.clone())),
    ]
}

fn check(samples: &[Sample]) -> Result<(), TestCaseError> {
    for s in samples {
        prop_assert!(s.value.is_finite(), "{:?}", s);
        if s.name.ends_with("_percent") {
            prop_assert!((0.0..=100.0).contains(&s.value), "{:?}", s);
        }
        if s.name.ends_with("_per_second") {
            prop_assert!(s.value >= 0.0, "{:?}", s);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn garbage_never_panics(
        first in proptest::collection::vec(file_content(), FILES.len()),
        second in proptest::collection::vec(file_content(), FILES.len()),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = ProcRoot::new(dir.path());
        let mut all = collectors(&root);
        for (round, contents) in [first, second].into_iter().enumerate() {
            for (name, content) in FILES.iter().zip(contents) {
                let path = dir.path().join(name);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, content).expect("write");
            }
            for c in all.iter_mut() {
                let mut out = Vec::new();
                if let Err(e) = c.collect(round as i64 * 10_000, &mut out) {
                    let path = e.path().to_string_lossy().into_owned();
                    prop_assert!(e.to_string().contains(&path), "{} does not name {}", e, path);
                }
                check(&out)?;
            }
        }
    }
}
