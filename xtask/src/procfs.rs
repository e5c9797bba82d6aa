//! Readers for the few `/proc` and filesystem facts the benchmarks measure.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Clock ticks per second (`getconf CLK_TCK`), 100 when that is unavailable.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// `utime + stime` of a process (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))
}

fn parse_cpu_ticks(stat: &str) -> Result<u64> {
    // The command name (field 2) is in parentheses and may contain spaces.
    let Some(close) = stat.rfind(')') else {
        bail!("no ')' in stat line")
    };
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
        bail!("stat line too short")
    };
    Ok(utime.parse::<u64>()? + stime.parse::<u64>()?)
}

/// Memory facts from `/proc/PID/status`, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Current resident set size (`VmRSS`).
    pub rss: u64,
    /// Peak resident set size (`VmHWM`).
    pub hwm: u64,
}

pub fn memory(pid: u32) -> Result<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    Ok(parse_memory(&status))
}

fn parse_memory(status: &str) -> Memory {
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
            * 1024
    };
    Memory {
        rss: kib("VmRSS:"),
        hwm: kib("VmHWM:"),
    }
}

/// Sizes of a directory tree: apparent (sum of file lengths) and allocated (blocks).
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskUsage {
    pub apparent: u64,
    pub allocated: u64,
    pub files: u64,
}

pub fn disk_usage(dir: &Path) -> Result<DiskUsage> {
    use std::os::unix::fs::MetadataExt;
    let mut usage = DiskUsage::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let entry = entry?;
            let meta = entry.path().symlink_metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                usage.apparent += meta.len();
                usage.allocated += meta.blocks() * 512;
                usage.files += 1;
            }
        }
    }
    Ok(usage)
}

/// `(parent pid, command name)` from the text of `/proc/PID/stat`.
fn parse_parent(stat: &str) -> Option<(u32, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let ppid = stat
        .get(close + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ppid, comm))
}

/// `root` and all its descendants now, leaving out processes whose command is in `skip` (e.g.
/// `runuser`, which only waits for its child).
pub fn tree_pids(root: u32, skip: &[&str]) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut procs: Vec<(u32, u32, String)> = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((ppid, comm)) = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .as_deref()
            .and_then(parse_parent)
        {
            procs.push((pid, ppid, comm));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            procs
                .iter()
                .filter(|(_, ppid, _)| *ppid == parent)
                .map(|(pid, _, _)| *pid),
        );
        i += 1;
    }
    tree.retain(|pid| {
        procs
            .iter()
            .find(|(p, _, _)| p == pid)
            .is_none_or(|(_, _, comm)| !skip.contains(&comm.as_str()))
    });
    tree
}

pub const MIB: f64 = 1024.0 * 1024.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_comm() {
        let line = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 100 1000 10";
        assert_eq!(parse_cpu_ticks(line).unwrap(), 325);
    }

    #[test]
    fn parses_status_memory() {
        let status = "Name:\tx\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        let m = parse_memory(status);
        assert_eq!(m.rss, 1024 * 1024);
        assert_eq!(m.hwm, 2048 * 1024);
    }

    #[test]
    fn parses_parent_and_command() {
        let line = "1234 (my (odd) prog) S 77 1234 1234 0 -1 4194560";
        assert_eq!(parse_parent(line), Some((77, "my (odd) prog".to_owned())));
        assert_eq!(parse_parent("garbage"), None);
    }

    #[test]
    fn the_tree_holds_children_and_skips_by_name() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let me = std::process::id();
        let with_child = tree_pids(me, &[]);
        let skipped = tree_pids(me, &["sleep"]);
        child.kill().ok();
        child.wait().ok();
        assert_eq!(with_child.first(), Some(&me));
        assert!(with_child.contains(&child.id()), "{with_child:?}");
        assert!(!skipped.contains(&child.id()), "{skipped:?}");
        assert!(skipped.contains(&me), "{skipped:?}");
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        cpu_ticks(pid).unwrap();
        assert!(memory(pid).unwrap().rss > 0);
    }
}
