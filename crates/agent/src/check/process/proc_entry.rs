//! Reading one process's `stat`, `status` and `cmdline` below a proc root, tolerating processes that vanish mid-read.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The fields of `/proc/<pid>/stat` the process checks use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id (field 1).
    pub pid: i32,
    /// The command name (field 2) without its parentheses; at most 15 bytes on Linux, and it
    /// may itself contain spaces and parentheses.
    pub comm: String,
    /// One-letter state (field 3): `R`, `S`, `D`, `Z`, ...
    pub state: char,
    /// User-mode CPU time in clock ticks (field 14).
    pub user_ticks: u64,
    /// Kernel-mode CPU time in clock ticks (field 15).
    pub system_ticks: u64,
    /// Start time after boot in clock ticks (field 22); with the pid it identifies a process
    /// across pid reuse.
    pub start_ticks: u64,
    /// Resident set size in pages (field 24); negative values (never seen in practice) read as 0.
    pub rss_pages: u64,
}

impl ProcStat {
    /// Total CPU time (user + system) in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.user_ticks.saturating_add(self.system_ticks)
    }

    /// Whether the process has exited and only its table entry remains (zombie or dead).
    pub fn is_defunct(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses one `/proc/<pid>/stat` line. The command name may contain spaces and `)`, so it
/// spans from the first `(` to the LAST `)`; the numeric fields follow that last `)`.
/// Returns a description of what is wrong for anything else.
pub fn parse_stat_line(line: &str) -> Result<ProcStat, String> {
    let open = line.find('(').ok_or("no '(' before the command name")?;
    let close = line.rfind(')').ok_or("no ')' after the command name")?;
    if close < open {
        return Err("')' before '('".to_owned());
    }
    let pid_text = line.get(..open).unwrap_or_default().trim();
    let pid = pid_text
        .parse::<i32>()
        .map_err(|error| format!("pid {pid_text:?}: {error}"))?;
    let comm = line.get(open + 1..close).unwrap_or_default().to_owned();
    let rest = line.get(close + 1..).unwrap_or_default();
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // `fields[0]` is field 3 (state), so field N is `fields[N - 3]`.
    let field = |number: usize| -> Result<&str, String> {
        fields
            .get(number - 3)
            .copied()
            .ok_or_else(|| format!("missing field {number}"))
    };
    let number = |number: usize| -> Result<u64, String> {
        let text = field(number)?;
        text.parse::<u64>()
            .map_err(|error| format!("field {number} {text:?}: {error}"))
    };
    let state_text = field(3)?;
    let mut state_chars = state_text.chars();
    let state = match (state_chars.next(), state_chars.next()) {
        (Some(state), None) => state,
        _ => return Err(format!("field 3 (state) {state_text:?} is not one letter")),
    };
    let rss_text = field(24)?;
    let rss_pages = rss_text
        .parse::<i64>()
        .map_err(|error| format!("field 24 {rss_text:?}: {error}"))?
        .max(0)
        .unsigned_abs();
    Ok(ProcStat {
        pid,
        comm,
        state,
        user_ticks: number(14)?,
        system_ticks: number(15)?,
        start_ticks: number(22)?,
        rss_pages,
    })
}

/// The effective uid from the `Uid:` line of `/proc/<pid>/status` (real, effective, saved, fs).
pub fn parse_status_effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_ascii_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
}

/// Turns the raw NUL-separated `/proc/<pid>/cmdline` into one line, arguments joined by single
/// spaces (the form `pgrep -f` matches). Kernel threads have an empty command line.
pub fn join_cmdline(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let trimmed = text.trim_end_matches('\0');
    trimmed.replace('\0', " ")
}

/// What went wrong listing a proc root's process directories.
#[derive(Debug, thiserror::Error)]
#[error("cannot list processes in {}: {source}", path.display())]
pub struct ListProcessesError {
    /// The proc root that could not be read.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// The pids (numeric directory names) below `proc_root`, ascending.
pub fn list_pids(proc_root: &Path) -> Result<Vec<i32>, ListProcessesError> {
    let entries = std::fs::read_dir(proc_root).map_err(|source| ListProcessesError {
        path: proc_root.to_owned(),
        source,
    })?;
    let mut pids: Vec<i32> = entries
        // An entry that fails to read is a process that went away while listing: skip it.
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let name = name.to_str()?;
            if name.bytes().all(|byte| byte.is_ascii_digit()) {
                name.parse::<i32>().ok()
            } else {
                None
            }
        })
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Reads one file of a process. `None` means the process is gone (or the file unreadable,
/// e.g. hidepid): the caller skips that process, which is the normal case for short-lived ones.
fn read_process_file(proc_root: &Path, pid: i32, file: &str) -> Option<Vec<u8>> {
    let path = proc_root.join(pid.to_string()).join(file);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            // ENOENT/ESRCH are the process exiting; anything else is logged for diagnosis.
            if !matches!(error.kind(), ErrorKind::NotFound) && error.raw_os_error() != Some(3) {
                tracing::debug!(path = %path.display(), error = %error, "cannot read process file");
            }
            None
        }
    }
}

/// The parsed `stat` of a process, or `None` when it vanished or the file is malformed.
pub fn read_stat(proc_root: &Path, pid: i32) -> Option<ProcStat> {
    let bytes = read_process_file(proc_root, pid, "stat")?;
    let line = String::from_utf8_lossy(&bytes);
    match parse_stat_line(line.trim_end()) {
        Ok(stat) => Some(stat),
        Err(reason) => {
            tracing::debug!(pid, reason = %reason, "malformed process stat");
            None
        }
    }
}

/// The effective uid of a process, or `None` when it vanished.
pub fn read_effective_uid(proc_root: &Path, pid: i32) -> Option<u32> {
    let bytes = read_process_file(proc_root, pid, "status")?;
    parse_status_effective_uid(&String::from_utf8_lossy(&bytes))
}

/// The space-joined command line of a process, or `None` when it vanished.
pub fn read_cmdline(proc_root: &Path, pid: i32) -> Option<String> {
    read_process_file(proc_root, pid, "cmdline").map(|raw| join_cmdline(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLEEP_STAT: &str = "4242 (sleep) S 1 4242 4242 0 -1 4194304 90 0 0 0 3 4 0 0 20 0 1 0 123456 8273920 215 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn parses_a_plain_stat_line() {
        let stat = parse_stat_line(SLEEP_STAT).unwrap();
        assert_eq!(
            stat,
            ProcStat {
                pid: 4242,
                comm: "sleep".to_owned(),
                state: 'S',
                user_ticks: 3,
                system_ticks: 4,
                start_ticks: 123_456,
                rss_pages: 215,
            }
        );
        assert_eq!(stat.cpu_ticks(), 7);
        assert!(!stat.is_defunct());
    }

    #[test]
    fn command_names_with_spaces_and_parentheses_end_at_the_last_parenthesis() {
        let line = SLEEP_STAT.replace("(sleep)", "(a) b) S (x)");
        let stat = parse_stat_line(&line).unwrap();
        assert_eq!(stat.comm, "a) b) S (x");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.start_ticks, 123_456);
    }

    #[test]
    fn rejects_truncated_and_garbled_lines() {
        assert!(parse_stat_line("").is_err());
        assert!(
            parse_stat_line("12 (x) S 1 2")
                .unwrap_err()
                .contains("missing field")
        );
        assert!(
            parse_stat_line("x (sleep) S")
                .unwrap_err()
                .starts_with("pid")
        );
        assert!(parse_stat_line("12 )x( S").is_err());
        let negative_ticks = SLEEP_STAT.replace(" 3 4 0 0 ", " -3 4 0 0 ");
        assert!(
            parse_stat_line(&negative_ticks)
                .unwrap_err()
                .contains("field 14")
        );
    }

    #[test]
    fn reads_effective_uid_and_cmdline() {
        let status = "Name:\tsleep\nUid:\t1000\t1001\t1001\t1001\nGid:\t0\t0\t0\t0\n";
        assert_eq!(parse_status_effective_uid(status), Some(1001));
        assert_eq!(parse_status_effective_uid("Name:\tx\n"), None);
        assert_eq!(join_cmdline(b"sleep\x0030\x00"), "sleep 30");
        assert_eq!(
            join_cmdline(b"postgres: checkpointer   "),
            "postgres: checkpointer   "
        );
        assert_eq!(join_cmdline(b""), "");
    }

    #[test]
    fn lists_only_numeric_directories_and_skips_vanished_processes() {
        let root = tempfile::tempdir().unwrap();
        for name in ["12", "3", "self", "net", "4x"] {
            std::fs::create_dir(root.path().join(name)).unwrap();
        }
        assert_eq!(list_pids(root.path()).unwrap(), vec![3, 12]);
        // Directory 12 has no stat file: like a process that exited between list and read.
        assert_eq!(read_stat(root.path(), 12), None);
        assert_eq!(read_cmdline(root.path(), 12), None);
        let missing = root.path().join("missing");
        let error = list_pids(&missing).unwrap_err().to_string();
        assert!(error.starts_with("cannot list processes in "), "{error}");
    }

    proptest::proptest! {
        #[test]
        fn the_stat_parser_never_panics(line in "\\PC{0,200}") {
            let _ = parse_stat_line(&line);
        }

        #[test]
        fn the_stat_parser_never_panics_on_near_valid_lines(
            prefix in "[0-9 ()a-z]{0,12}",
            cut in 0usize..200,
        ) {
            let line = format!("{prefix}{SLEEP_STAT}");
            let end = cut.min(line.len());
            let _ = parse_stat_line(line.get(..end).unwrap_or_default());
        }

        #[test]
        fn any_command_name_round_trips(comm in "[ -~]{0,15}", user in 0u64..1_000_000, system in 0u64..1_000_000) {
            let line = format!("77 ({comm}) R 1 1 1 0 -1 0 0 0 0 0 {user} {system} 0 0 20 0 1 0 99 0 5 0");
            let stat = parse_stat_line(&line).unwrap();
            proptest::prop_assert_eq!(&stat.comm, &comm);
            proptest::prop_assert_eq!(stat.pid, 77);
            proptest::prop_assert_eq!(stat.cpu_ticks(), user + system);
            proptest::prop_assert_eq!(stat.start_ticks, 99);
            proptest::prop_assert_eq!(stat.rss_pages, 5);
        }
    }
}
