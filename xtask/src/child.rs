//! Starting, watching and stopping the processes under test, all on loopback.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A free TCP port on 127.0.0.1 (bound then released; a small race is accepted).
pub fn free_tcp_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(listener.local_addr()?)
}

/// A UDP port on 127.0.0.1 that nobody listens on once this returns.
pub fn free_udp_addr() -> Result<SocketAddr> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding an ephemeral UDP port")?;
    Ok(socket.local_addr()?)
}

/// A running child process whose stdout and stderr go to a log file.
/// Dropping it kills the process if it is still running.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
    child: Option<Child>,
}

/// How a process ended when asked to stop.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub graceful: bool,
    pub status: Option<ExitStatus>,
    pub took: Duration,
    /// Last `utime + stime` read while it shut down (≤ 50 ms before it exited).
    pub last_cpu_ticks: Option<u64>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            pid: child.id(),
            log: log.to_path_buf(),
            child: Some(child),
        })
    }

    /// Errors (with the log's tail) if the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("{} was already stopped", self.name)
        };
        if let Some(status) = child.try_wait()? {
            bail!(
                "{} exited early ({status}); log tail:\n{}",
                self.name,
                self.log_tail()
            );
        }
        Ok(())
    }

    /// The last lines of the process's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Polls `url` until it answers 2xx, the process exits, or `timeout` passes.
    pub fn wait_ready(&mut self, url: &str, timeout: Duration) -> Result<Duration> {
        let agent = crate::http::agent(Duration::from_secs(2));
        let start = Instant::now();
        let mut last = String::from("no attempt");
        while start.elapsed() < timeout {
            self.ensure_running()?;
            match agent.get(url).call() {
                Ok(mut resp) if resp.status().is_success() => {
                    // Drain the body so the server does not see a reset connection.
                    resp.body_mut()
                        .with_config()
                        .limit(64 << 20)
                        .read_to_vec()
                        .ok();
                    return Ok(start.elapsed());
                }
                Ok(resp) => last = format!("HTTP {}", resp.status()),
                Err(e) => last = e.to_string(),
            }
            thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{} not ready at {url} after {timeout:?} (last: {last}); log tail:\n{}",
            self.name,
            self.log_tail()
        )
    }

    /// SIGTERM, then wait up to `timeout`; SIGKILL if it has not exited by then.
    pub fn terminate(&mut self, timeout: Duration) -> Result<Stopped> {
        let start = Instant::now();
        let Some(mut child) = self.child.take() else {
            bail!("{} was already stopped", self.name)
        };
        if let Some(status) = child.try_wait()? {
            return Ok(Stopped {
                graceful: false,
                status: Some(status),
                took: Duration::ZERO,
                last_cpu_ticks: None,
            });
        }
        let mut last_cpu_ticks = crate::procfs::cpu_ticks(self.pid).ok();
        signal(self.pid, "TERM")?;
        while start.elapsed() < timeout {
            if let Some(status) = child.try_wait()? {
                return Ok(Stopped {
                    graceful: true,
                    status: Some(status),
                    took: start.elapsed(),
                    last_cpu_ticks,
                });
            }
            // Read while it shuts down; at most the last ~50 ms before exit are missed.
            if let Ok(t) = crate::procfs::cpu_ticks(self.pid) {
                last_cpu_ticks = Some(t);
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "warning: {} ignored SIGTERM for {timeout:?}; killing it",
            self.name
        );
        child.kill().ok();
        let status = child.wait().ok();
        Ok(Stopped {
            graceful: false,
            status,
            took: start.elapsed(),
            last_cpu_ticks,
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// Sends a signal with `kill(1)` (the harness keeps `unsafe_code = "forbid"`).
fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .context("running kill(1)")?;
    if !status.success() {
        bail!("kill -{sig} {pid} failed: {status}");
    }
    Ok(())
}

/// Output of a short command run with [`run_bounded`].
#[derive(Debug)]
pub struct Finished {
    pub stdout: String,
}

/// Runs a short command to completion within `timeout`, failing on a non-zero exit.
pub fn run_bounded(cmd: &mut Command, timeout: Duration, scratch: &Path) -> Result<Finished> {
    let program = cmd.get_program().to_owned();
    let args: Vec<&OsStr> = cmd.get_args().collect();
    let what = format!("{} {}", program.to_string_lossy(), join(&args));
    let out_path = scratch.join("cmd.stdout");
    let err_path = scratch.join("cmd.stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?)
        .spawn()
        .with_context(|| format!("starting `{what}`"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            child.kill().ok();
            child.wait().ok();
            bail!("`{what}` did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    if !status.success() {
        bail!("`{what}` failed ({status}):\n{stderr}{stdout}");
    }
    Ok(Finished { stdout })
}

fn join(args: &[&OsStr]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
