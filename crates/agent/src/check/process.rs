//! The `process` check kind: count matching processes (count mode) or find rogue ones (rogue mode), reading a proc root.

pub mod count;
pub mod proc_entry;
pub mod rogue;
pub mod users;

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::check::options_host::{deserialize_options, parse_duration_ms};
use crate::check::{Check, CheckConfigError, CheckFuture, CheckOutcome, CheckStatus};
use count::{CountCriteria, NameMatcher};
use rogue::{RogueCriteria, RogueTracker};
use users::UserMatcher;

/// The passwd file user names are resolved in, unless a test gives another.
const DEFAULT_PASSWD_PATH: &str = "/etc/passwd";

/// How long a process's CPU must stay above `max_cpu_percent` when `for` is not given.
const DEFAULT_CPU_FOR_MS: i64 = 5 * 60 * 1000;

/// Options of the `process` monitor kind. Count mode (`name`, `cmdline`, `user`, `min`, `max`)
/// counts matching processes; rogue mode (`max_cpu_percent` and/or `max_rss_mb`, with `for`,
/// `exclude`, `status`) reports processes that use too much CPU for too long or too much
/// memory. The two modes cannot be mixed in one monitor. Zombie processes are never counted.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessOptions {
    /// Count mode: the process's command name (`comm`, as in `ps -o comm`; Linux truncates it to 15 bytes, and a longer name here matches its truncation), either exactly or as a regex that must match the whole name, e.g. `java` or `nginx|httpd`.
    #[serde(default)]
    pub name: Option<String>,
    /// Count mode: a regex searched anywhere in the command line, arguments joined by single spaces (like `pgrep -f`), e.g. `-jar /opt/app/app\.jar`.
    #[serde(default)]
    pub cmdline: Option<String>,
    /// Count mode: the process's effective user, as a user name (resolved in `/etc/passwd` at each run) or a numeric uid.
    #[serde(default)]
    pub user: Option<UserOption>,
    /// Count mode: the fewest matching processes that is still OK; default 1. Fewer is critical.
    #[serde(default)]
    pub min: Option<u64>,
    /// Count mode: the most matching processes that is still OK; unbounded when absent. More is critical. Must be at least `min`.
    #[serde(default)]
    pub max: Option<u64>,
    /// Rogue mode: CPU use, in percent of one core (a process using two cores fully is at 200), above which a process is rogue once it stays there for `for`.
    #[serde(default)]
    pub max_cpu_percent: Option<f64>,
    /// Rogue mode: how long a process's CPU must stay above `max_cpu_percent`, measured across consecutive runs, e.g. `5m` (the default). Only with `max_cpu_percent`.
    #[serde(rename = "for", default)]
    #[schemars(pattern(r"^[0-9]+(ms|s|m|h|d)$"))]
    pub cpu_for: Option<String>,
    /// Rogue mode: resident memory in MiB above which a process is rogue at once.
    #[serde(default)]
    pub max_rss_mb: Option<u64>,
    /// Rogue mode: a regex on the whole command name of processes never reported, e.g. `java|postgres`.
    #[serde(default)]
    pub exclude: Option<String>,
    /// Rogue mode: the status when at least one process is rogue, `warning` (the default) or `critical`.
    #[serde(default)]
    pub status: Option<RogueStatus>,
}

/// A user given by name or by numeric uid.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum UserOption {
    /// A numeric uid, e.g. `1001`.
    Uid(u32),
    /// A user name (or a uid written as a string), e.g. `app` or `"1001"`.
    Name(String),
}

/// The status a rogue process raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RogueStatus {
    /// Warning (exit code 1).
    #[default]
    Warning,
    /// Critical (exit code 2).
    Critical,
}

/// Kernel constants the CPU and memory figures depend on, read once from the running kernel
/// (tests give fixed ones so fixture directories mean the same everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostParameters {
    /// `CLK_TCK`: the unit of the CPU times in `/proc/<pid>/stat` (100 on every common Linux).
    pub clock_ticks_per_second: u64,
    /// The page size: the unit of the resident set size in `/proc/<pid>/stat`.
    pub page_size_bytes: u64,
}

impl HostParameters {
    /// The running kernel's values (from the ELF auxiliary vector; no system call).
    pub fn detect() -> HostParameters {
        HostParameters {
            clock_ticks_per_second: rustix::param::clock_ticks_per_second(),
            page_size_bytes: rustix::param::page_size() as u64,
        }
    }
}

/// The mode chosen by the options, with the state it keeps between runs.
#[derive(Debug, Clone)]
enum ProcessMode {
    Count(CountCriteria),
    Rogue(RogueCriteria, RogueTracker),
}

/// Everything one run needs, owned, so a run can move it to a blocking thread and back.
#[derive(Debug, Clone)]
struct ProcessEvaluator {
    proc_root: PathBuf,
    passwd_path: PathBuf,
    host: HostParameters,
    mode: ProcessMode,
}

impl ProcessEvaluator {
    fn evaluate(&mut self, now_ms: i64) -> CheckOutcome {
        match &mut self.mode {
            ProcessMode::Count(criteria) => criteria.evaluate(&self.proc_root, &self.passwd_path),
            ProcessMode::Rogue(criteria, tracker) => {
                tracker.evaluate(criteria, &self.proc_root, self.host, now_ms)
            }
        }
    }
}

/// A configured `process` check.
#[derive(Debug)]
pub struct ProcessCheck {
    /// `None` only while a run has it on a blocking thread.
    evaluator: Option<ProcessEvaluator>,
    /// A copy without run state, to start over if a run's thread is lost.
    pristine: ProcessEvaluator,
}

fn config_error(path: &str, message: impl Into<String>) -> CheckConfigError {
    CheckConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

impl ProcessCheck {
    /// Builds the check from a monitor's `options`, reading processes below `proc_root`
    /// (normally `/proc`). The error names the offending option.
    pub fn from_options(
        options: &serde_json::Map<String, serde_json::Value>,
        proc_root: PathBuf,
    ) -> Result<ProcessCheck, CheckConfigError> {
        let parsed: ProcessOptions = deserialize_options(options)?;
        let mode = mode_from_options(&parsed)?;
        let evaluator = ProcessEvaluator {
            proc_root,
            passwd_path: PathBuf::from(DEFAULT_PASSWD_PATH),
            host: HostParameters::detect(),
            mode,
        };
        Ok(ProcessCheck {
            pristine: evaluator.clone(),
            evaluator: Some(evaluator),
        })
    }

    /// Resolves user names in `passwd_path` instead of `/etc/passwd` (for tests and containers).
    pub fn with_passwd_path(mut self, passwd_path: PathBuf) -> ProcessCheck {
        self.pristine.passwd_path = passwd_path.clone();
        if let Some(evaluator) = &mut self.evaluator {
            evaluator.passwd_path = passwd_path;
        }
        self
    }

    /// Uses these kernel constants instead of the running kernel's (for fixture tests).
    pub fn with_host_parameters(mut self, host: HostParameters) -> ProcessCheck {
        self.pristine.host = host;
        if let Some(evaluator) = &mut self.evaluator {
            evaluator.host = host;
        }
        self
    }

    /// True in rogue mode, false in count mode.
    pub fn is_rogue_mode(&self) -> bool {
        matches!(self.pristine.mode, ProcessMode::Rogue(..))
    }

    /// One run on the calling thread (what [`Check::run`] does on a blocking thread).
    pub fn run_blocking(&mut self, now_ms: i64) -> CheckOutcome {
        let evaluator = self.evaluator.get_or_insert_with(|| self.pristine.clone());
        evaluator.evaluate(now_ms)
    }
}

impl Check for ProcessCheck {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn run(&mut self, now_ms: i64) -> CheckFuture<'_> {
        Box::pin(async move {
            let mut evaluator = self
                .evaluator
                .take()
                .unwrap_or_else(|| self.pristine.clone());
            // Scanning every /proc/<pid> takes milliseconds on a busy host: off the async threads.
            let joined = tokio::task::spawn_blocking(move || {
                let outcome = evaluator.evaluate(now_ms);
                (evaluator, outcome)
            })
            .await;
            match joined {
                Ok((evaluator, outcome)) => {
                    self.evaluator = Some(evaluator);
                    outcome
                }
                Err(error) => CheckOutcome {
                    status: CheckStatus::Unknown,
                    message: format!("process scan failed: {error}"),
                    samples: Vec::new(),
                },
            }
        })
    }
}

/// Picks the mode and checks the options' meaning (ranges, regexes, combinations).
fn mode_from_options(options: &ProcessOptions) -> Result<ProcessMode, CheckConfigError> {
    let rogue_mode = options.max_cpu_percent.is_some() || options.max_rss_mb.is_some();
    let count_fields = [
        ("name", options.name.is_some()),
        ("cmdline", options.cmdline.is_some()),
        ("user", options.user.is_some()),
        ("min", options.min.is_some()),
        ("max", options.max.is_some()),
    ];
    if rogue_mode {
        if let Some((field, _)) = count_fields.iter().find(|(_, given)| *given) {
            return Err(config_error(
                &format!(".{field}"),
                "count-mode option cannot be combined with max_cpu_percent or max_rss_mb (rogue mode); use two monitors",
            ));
        }
        rogue_criteria(options)
            .map(|criteria| ProcessMode::Rogue(criteria, RogueTracker::default()))
    } else {
        let rogue_fields = [
            ("for", options.cpu_for.is_some()),
            ("exclude", options.exclude.is_some()),
            ("status", options.status.is_some()),
        ];
        if let Some((field, _)) = rogue_fields.iter().find(|(_, given)| *given) {
            return Err(config_error(
                &format!(".{field}"),
                "applies only in rogue mode, with max_cpu_percent or max_rss_mb",
            ));
        }
        count_criteria(options).map(ProcessMode::Count)
    }
}

fn count_criteria(options: &ProcessOptions) -> Result<CountCriteria, CheckConfigError> {
    if options.name.is_none() && options.cmdline.is_none() && options.user.is_none() {
        return Err(config_error(
            "",
            "give at least one of name, cmdline or user (count mode), or max_cpu_percent or max_rss_mb (rogue mode)",
        ));
    }
    let name = options
        .name
        .as_deref()
        .map(NameMatcher::new)
        .transpose()
        .map_err(|message| config_error(".name", message))?;
    let cmdline = options
        .cmdline
        .as_deref()
        .map(|pattern| {
            regex::Regex::new(pattern).map_err(|error| {
                config_error(".cmdline", format!("invalid regex {pattern:?}: {error}"))
            })
        })
        .transpose()?;
    let user = match &options.user {
        None => None,
        Some(UserOption::Uid(uid)) => Some(UserMatcher::Uid(*uid)),
        Some(UserOption::Name(text)) => {
            Some(UserMatcher::from_option(text).map_err(|message| config_error(".user", message))?)
        }
    };
    let min = options.min.unwrap_or(1);
    if let Some(max) = options.max
        && max < min
    {
        return Err(config_error(".max", format!("{max} is below min {min}")));
    }
    Ok(CountCriteria {
        name,
        cmdline,
        user,
        min,
        max: options.max,
    })
}

fn rogue_criteria(options: &ProcessOptions) -> Result<RogueCriteria, CheckConfigError> {
    if let Some(percent) = options.max_cpu_percent
        && !(percent.is_finite() && percent > 0.0)
    {
        return Err(config_error(
            ".max_cpu_percent",
            format!("{percent} must be a number above 0"),
        ));
    }
    if options.max_rss_mb == Some(0) {
        return Err(config_error(".max_rss_mb", "must be above 0"));
    }
    let cpu_for_ms = match &options.cpu_for {
        None => DEFAULT_CPU_FOR_MS,
        Some(_) if options.max_cpu_percent.is_none() => {
            return Err(config_error(".for", "applies only with max_cpu_percent"));
        }
        Some(text) => parse_duration_ms(text).map_err(|message| config_error(".for", message))?,
    };
    let exclude = options
        .exclude
        .as_deref()
        .map(|pattern| {
            regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|error| {
                config_error(".exclude", format!("invalid regex {pattern:?}: {error}"))
            })
        })
        .transpose()?;
    let max_rss_bytes = options
        .max_rss_mb
        .map(|mib| {
            mib.checked_mul(1024 * 1024)
                .ok_or_else(|| config_error(".max_rss_mb", format!("{mib} is too large")))
        })
        .transpose()?;
    Ok(RogueCriteria {
        max_cpu_percent: options.max_cpu_percent,
        cpu_for_ms,
        max_rss_bytes,
        exclude,
        status: match options.status.unwrap_or_default() {
            RogueStatus::Warning => CheckStatus::Warning,
            RogueStatus::Critical => CheckStatus::Critical,
        },
    })
}

#[cfg(test)]
mod tests;
