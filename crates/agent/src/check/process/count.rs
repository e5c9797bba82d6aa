//! Count mode of the process check: how many processes match a name, command line and user, against a min/max.

use std::path::Path;

use regex::Regex;

use crate::check::process::proc_entry::{self, ProcStat};
use crate::check::process::users::UserMatcher;
use crate::check::{CheckOutcome, CheckStatus, Sample};

/// Linux truncates a process's command name (`comm`) to this many bytes.
const COMM_MAX_BYTES: usize = 15;

/// Matches the command name exactly, or with a regex over the whole name.
#[derive(Debug, Clone)]
pub struct NameMatcher {
    text: String,
    whole_name_regex: Regex,
}

impl NameMatcher {
    /// Builds the matcher; the error says why `text` is not a valid regex.
    pub fn new(text: &str) -> Result<NameMatcher, String> {
        if text.is_empty() {
            return Err("must not be empty".to_owned());
        }
        let whole_name_regex = Regex::new(&format!("^(?:{text})$"))
            .map_err(|error| format!("invalid regex {text:?}: {error}"))?;
        Ok(NameMatcher {
            text: text.to_owned(),
            whole_name_regex,
        })
    }

    /// True when `comm` is the name, or the kernel's 15-byte truncation of it, or the regex
    /// matches the whole of `comm`.
    pub fn matches(&self, comm: &str) -> bool {
        comm == self.text
            || (comm.len() == COMM_MAX_BYTES
                && self.text.len() > COMM_MAX_BYTES
                && self.text.starts_with(comm))
            || self.whole_name_regex.is_match(comm)
    }
}

/// What count mode counts and the allowed range.
#[derive(Debug, Clone)]
pub struct CountCriteria {
    /// Command name matcher (`name` option).
    pub name: Option<NameMatcher>,
    /// Regex searched in the space-joined command line (`cmdline` option).
    pub cmdline: Option<Regex>,
    /// Effective user (`user` option).
    pub user: Option<UserMatcher>,
    /// Fewest matching processes that is still OK.
    pub min: u64,
    /// Most matching processes that is still OK, if bounded.
    pub max: Option<u64>,
}

impl CountCriteria {
    /// `name=java cmdline="-jar app" user=app`, for messages.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(name) = &self.name {
            parts.push(format!("name={}", quote_if_needed(&name.text)));
        }
        if let Some(cmdline) = &self.cmdline {
            parts.push(format!("cmdline={}", quote_if_needed(cmdline.as_str())));
        }
        if let Some(user) = &self.user {
            parts.push(format!("user={}", quote_if_needed(&user.to_string())));
        }
        parts.join(" ")
    }

    /// Counts the matching processes below `proc_root` and judges the count.
    pub fn evaluate(&self, proc_root: &Path, passwd_path: &Path) -> CheckOutcome {
        let uid = match self.user.as_ref().map(|user| user.resolve(passwd_path)) {
            None => None,
            Some(Ok(uid)) => Some(uid),
            Some(Err(reason)) => {
                return CheckOutcome {
                    status: CheckStatus::Unknown,
                    message: format!("cannot count processes: {reason}"),
                    samples: Vec::new(),
                };
            }
        };
        let pids = match proc_entry::list_pids(proc_root) {
            Ok(pids) => pids,
            Err(error) => {
                return CheckOutcome {
                    status: CheckStatus::Unknown,
                    message: error.to_string(),
                    samples: Vec::new(),
                };
            }
        };
        let count = pids
            .into_iter()
            .filter(|pid| self.process_matches(proc_root, *pid, uid))
            .count() as u64;
        let noun = if count == 1 {
            "process matches"
        } else {
            "processes match"
        };
        let description = self.describe();
        let (status, message) = if count < self.min {
            (
                CheckStatus::Critical,
                format!(
                    "{count} {noun} {description} (expected at least {})",
                    self.min
                ),
            )
        } else if let Some(max) = self.max.filter(|max| count > *max) {
            (
                CheckStatus::Critical,
                format!("{count} {noun} {description} (expected at most {max})"),
            )
        } else {
            (CheckStatus::Ok, format!("{count} {noun} {description}"))
        };
        CheckOutcome {
            status,
            message,
            samples: vec![Sample {
                name: "process_count".to_owned(),
                labels: Vec::new(),
                value: count as f64,
            }],
        }
    }

    /// Whether process `pid` matches every given matcher; a process that vanished mid-read does not.
    fn process_matches(&self, proc_root: &Path, pid: i32, uid: Option<u32>) -> bool {
        let Some(stat) = proc_entry::read_stat(proc_root, pid) else {
            return false;
        };
        if stat.is_defunct() || !self.name_matches(&stat) {
            return false;
        }
        if let Some(wanted_uid) = uid
            && proc_entry::read_effective_uid(proc_root, pid) != Some(wanted_uid)
        {
            return false;
        }
        if let Some(cmdline_regex) = &self.cmdline {
            let Some(cmdline) = proc_entry::read_cmdline(proc_root, pid) else {
                return false;
            };
            if !cmdline_regex.is_match(&cmdline) {
                return false;
            }
        }
        true
    }

    fn name_matches(&self, stat: &ProcStat) -> bool {
        self.name
            .as_ref()
            .is_none_or(|name| name.matches(&stat.comm))
    }
}

/// The value as is when it is one plain word, else quoted with Rust string escapes.
pub(crate) fn quote_if_needed(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"');
    if plain {
        value.to_owned()
    } else {
        format!("{value:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_exactly_truncated_or_by_regex() {
        let java = NameMatcher::new("java").unwrap();
        assert!(java.matches("java"));
        assert!(!java.matches("javac"));
        assert!(!java.matches("myjava"));
        let long = NameMatcher::new("elasticsearch-server").unwrap();
        assert!(long.matches("elasticsearch-s"));
        assert!(!long.matches("elasticsearch"));
        let pattern = NameMatcher::new("nginx|httpd").unwrap();
        assert!(pattern.matches("nginx"));
        assert!(pattern.matches("httpd"));
        assert!(!pattern.matches("nginx-debug"));
        // A name with regex syntax still matches itself exactly.
        let kernel = NameMatcher::new("kworker/0:1+events").unwrap();
        assert!(kernel.matches("kworker/0:1+events"));
        assert!(
            NameMatcher::new("foo[")
                .unwrap_err()
                .starts_with("invalid regex \"foo[\"")
        );
        assert!(NameMatcher::new("").is_err());
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote_if_needed("java"), "java");
        assert_eq!(quote_if_needed("-jar app.jar"), "\"-jar app.jar\"");
        assert_eq!(quote_if_needed(""), "\"\"");
    }
}
