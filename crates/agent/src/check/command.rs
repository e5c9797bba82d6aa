//! The `command` check: runs a Nagios-compatible plugin and turns its exit code and output into an outcome.
//!
//! The plugin runs directly (no shell) in its own process group, so a timeout kills it and
//! everything it started. Exit codes 0..3 are the status; anything else is Unknown with a
//! message saying what happened. The first output line is the message; its perfdata becomes
//! `check_perfdata*` samples (raw values, the unit of measure as a label; no unit conversion).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::net_util::{MAX_MESSAGE_BYTES, sample, truncate_message};
use super::options::{
    OptionDuration, config_error, decode_options, format_duration, require_positive_timeout,
};
use super::perfdata::{PluginOutput, parse_plugin_output};
use super::{Check, CheckConfigError, CheckFuture, CheckOutcome, CheckStatus, Sample};

/// Options of a `command` monitor.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandOptions {
    /// The plugin and its arguments, run directly without a shell, e.g.
    /// `["/usr/lib/nagios/plugins/check_load", "-w", "5,4,3", "-c", "10,8,6"]`.
    pub command: Vec<String>,
    /// How long the plugin may run before it and its process group are killed (status Unknown).
    #[serde(default = "default_command_timeout")]
    pub timeout: OptionDuration,
    /// Extra environment variables for the plugin, added to the agent's own environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_command_timeout() -> OptionDuration {
    OptionDuration(Duration::from_secs(30))
}

/// The most plugin stdout kept (the guidelines allow 4 KiB; some plugins print much more).
const MAX_STDOUT_BYTES: usize = 64 * 1024;
/// The most plugin stderr kept (only its first line is ever shown).
const MAX_STDERR_BYTES: usize = 4 * 1024;

/// A configured `command` check.
#[derive(Debug, Clone)]
pub struct CommandCheck {
    program: String,
    arguments: Vec<String>,
    env: BTreeMap<String, String>,
    timeout: Duration,
}

impl CommandCheck {
    /// Build from a monitor's `options`; errors name the field (`options.command: must not be empty`).
    pub fn from_options(
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<CommandCheck, CheckConfigError> {
        let options: CommandOptions = decode_options(options)?;
        require_positive_timeout(".timeout", options.timeout)?;
        let Some((program, arguments)) = options.command.split_first() else {
            return Err(config_error(".command", "must not be empty"));
        };
        if program.is_empty() {
            return Err(config_error(".command[0]", "the program must not be empty"));
        }
        for (index, argument) in options.command.iter().enumerate() {
            if argument.contains('\0') {
                return Err(config_error(
                    &format!(".command[{index}]"),
                    "must not contain a NUL character",
                ));
            }
        }
        for (name, value) in &options.env {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(config_error(
                    &format!(".env.{name}"),
                    "invalid environment variable name (empty, or contains '=' or NUL)",
                ));
            }
            if value.contains('\0') {
                return Err(config_error(
                    &format!(".env.{name}"),
                    "must not contain a NUL character",
                ));
            }
        }
        Ok(CommandCheck {
            program: program.clone(),
            arguments: arguments.to_vec(),
            env: options.env,
            timeout: options.timeout.get(),
        })
    }

    async fn run_plugin(&self) -> CheckOutcome {
        let started = Instant::now();
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.arguments)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout can kill the plugin and its children.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                return CheckOutcome {
                    status: CheckStatus::Unknown,
                    message: truncate_message(
                        &format!("cannot run {}: {error}", self.program),
                        MAX_MESSAGE_BYTES,
                    ),
                    samples: vec![duration_sample(started.elapsed())],
                };
            }
        };
        // Armed until the plugin is done: if this future is dropped (the runner gave up), or the
        // plugin times out, the whole group is killed.
        let mut group_guard = ProcessGroupGuard::new(child.id());
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();

        let finished = tokio::time::timeout(self.timeout, async {
            tokio::join!(
                read_capped(stdout, MAX_STDOUT_BYTES),
                read_capped(stderr, MAX_STDERR_BYTES),
                child.wait(),
            )
        })
        .await;

        let (stdout_bytes, stderr_bytes, wait_result) = match finished {
            Ok(results) => results,
            Err(_elapsed) => {
                group_guard.kill_now();
                // SIGKILL cannot be ignored; reap the plugin so it does not stay a zombie.
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                return CheckOutcome {
                    status: CheckStatus::Unknown,
                    message: truncate_message(
                        &format!(
                            "timed out after {}; killed {} and its process group",
                            format_duration(self.timeout),
                            self.program
                        ),
                        MAX_MESSAGE_BYTES,
                    ),
                    samples: vec![duration_sample(started.elapsed())],
                };
            }
        };
        group_guard.disarm();
        let elapsed = started.elapsed();

        let exit_status = match wait_result {
            Ok(exit_status) => exit_status,
            Err(error) => {
                return CheckOutcome {
                    status: CheckStatus::Unknown,
                    message: truncate_message(
                        &format!("cannot wait for {}: {error}", self.program),
                        MAX_MESSAGE_BYTES,
                    ),
                    samples: vec![duration_sample(elapsed)],
                };
            }
        };
        let stdout_text = String::from_utf8_lossy(&stdout_bytes);
        let stderr_text = String::from_utf8_lossy(&stderr_bytes);
        let output = parse_plugin_output(&stdout_text);
        let (status, message) = interpret_exit(&self.program, exit_status, &output, &stderr_text);
        let mut samples = perfdata_samples(&output);
        samples.push(duration_sample(elapsed));
        CheckOutcome {
            status,
            message: truncate_message(&message, MAX_MESSAGE_BYTES),
            samples,
        }
    }
}

impl Check for CommandCheck {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn run(&mut self, _now_ms: i64) -> CheckFuture<'_> {
        Box::pin(self.run_plugin())
    }
}

/// Kills a plugin's process group when armed and dropped (or on demand).
struct ProcessGroupGuard {
    group_id: Option<rustix::process::Pid>,
}

impl ProcessGroupGuard {
    fn new(child_id: Option<u32>) -> Self {
        // The child is its group's leader (`process_group(0)`), so its pid is the group id.
        // Never 0 or 1: `kill(-1)` would signal every process we may signal.
        let group_id = child_id
            .and_then(|id| i32::try_from(id).ok())
            .filter(|id| *id > 1)
            .and_then(rustix::process::Pid::from_raw);
        Self { group_id }
    }

    fn kill_now(&mut self) {
        if let Some(group_id) = self.group_id.take() {
            // ESRCH (the group is already gone) is fine.
            let _ = rustix::process::kill_process_group(group_id, rustix::process::Signal::KILL);
        }
    }

    fn disarm(&mut self) {
        self.group_id = None;
    }
}

impl Drop for ProcessGroupGuard {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// Read a pipe to its end, keeping the first `max_bytes` (the rest is drained so the plugin never blocks on a full pipe).
async fn read_capped<R: AsyncRead + Unpin>(pipe: Option<R>, max_bytes: usize) -> Vec<u8> {
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return kept,
            Ok(read) => {
                let room = max_bytes.saturating_sub(kept.len());
                kept.extend_from_slice(buffer.get(..read.min(room)).unwrap_or_default());
            }
        }
    }
}

/// The status and message for a finished plugin.
fn interpret_exit(
    program: &str,
    exit_status: ExitStatus,
    output: &PluginOutput,
    stderr_text: &str,
) -> (CheckStatus, String) {
    let mut text = if output.message.is_empty() {
        match stderr_text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
        {
            Some(stderr_line) => format!("(no output; stderr: {stderr_line})"),
            None => "(no output)".to_owned(),
        }
    } else {
        output.message.clone()
    };
    if !output.errors.is_empty() {
        let count = output.errors.len();
        let items = if count == 1 { "item" } else { "items" };
        text.push_str(&format!(
            " (perfdata: {count} {items} ignored: {})",
            output.errors.join("; ")
        ));
    }
    match (exit_status.code(), exit_status.signal()) {
        (Some(0), _) => (CheckStatus::Ok, text),
        (Some(1), _) => (CheckStatus::Warning, text),
        (Some(2), _) => (CheckStatus::Critical, text),
        (Some(3), _) => (CheckStatus::Unknown, text),
        (Some(code), _) => (
            CheckStatus::Unknown,
            format!("{program} exited with code {code} (not a plugin status 0..3): {text}"),
        ),
        (None, Some(signal)) => (
            CheckStatus::Unknown,
            format!(
                "{program} was killed by signal {signal}{}: {text}",
                signal_name(signal)
                    .map(|name| format!(" ({name})"))
                    .unwrap_or_default()
            ),
        ),
        (None, None) => (
            CheckStatus::Unknown,
            format!("{program} ended without an exit code: {text}"),
        ),
    }
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

/// `check_perfdata{label, unit}` and its `_warning`, `_critical`, `_min`, `_max` companions.
///
/// Values are kept raw with the plugin's unit as the `unit` label (omitted when the plugin gave
/// none). `U` values give no samples. Thresholds are only kept when the range has a single
/// written bound (`10`, `10:`, `~:10`, `@10`); `10:20` has no single number and is skipped.
fn perfdata_samples(output: &PluginOutput) -> Vec<Sample> {
    let mut samples = Vec::new();
    for datum in &output.perfdata {
        let Some(value) = datum.value else {
            continue;
        };
        let mut labels: Vec<(&str, &str)> = vec![("label", datum.label.as_str())];
        if !datum.unit.is_empty() {
            labels.push(("unit", datum.unit.as_str()));
        }
        samples.push(sample("check_perfdata", &labels, value));
        let companions = [
            (
                "check_perfdata_warning",
                datum
                    .warning
                    .as_ref()
                    .and_then(|range| range.single_bound()),
            ),
            (
                "check_perfdata_critical",
                datum
                    .critical
                    .as_ref()
                    .and_then(|range| range.single_bound()),
            ),
            ("check_perfdata_min", datum.min),
            ("check_perfdata_max", datum.max),
        ];
        for (name, companion_value) in companions {
            if let Some(companion_value) = companion_value {
                samples.push(sample(name, &labels, companion_value));
            }
        }
    }
    samples
}

fn duration_sample(elapsed: Duration) -> Sample {
    sample("check_duration_seconds", &[], elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests;
