//! Building and driving the `cloudkeep` binary as the benchmarks' contestant.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::child::{self, Proc};

/// Finds the cloudkeep binary: `--cloudkeep-bin`, else `cargo build --release -p cloudkeep`
/// in `project` (the executable path is read from cargo's JSON messages, so a custom
/// `CARGO_TARGET_DIR` is honoured).
pub fn binary(explicit: Option<&Path>, project: &Path) -> Result<PathBuf> {
    if let Some(bin) = explicit {
        if !bin.is_file() {
            bail!("--cloudkeep-bin {} does not exist", bin.display());
        }
        return Ok(bin.to_path_buf());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "building cloudkeep: cargo build --release -p cloudkeep (in {})",
        project.display()
    );
    let mut child = Command::new(cargo)
        .current_dir(project)
        .args([
            "build",
            "--release",
            "-p",
            "cloudkeep",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running cargo build")?;
    let mut exe = None;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if msg["reason"] == "compiler-artifact"
                && msg["target"]["name"] == "cloudkeep"
                && let Some(path) = msg["executable"].as_str()
            {
                exe = Some(PathBuf::from(path));
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo build --release -p cloudkeep failed ({status})");
    }
    let exe = exe.unwrap_or_else(|| project.join("target/release/cloudkeep"));
    if !exe.is_file() {
        bail!("cloudkeep was built but {} does not exist", exe.display());
    }
    Ok(exe)
}

/// The command line that starts a server on `listen` with its data in `data`.
pub fn server_command(bin: &Path, data: &Path, listen: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("server")
        .arg("--data-dir")
        .arg(data)
        .arg("--listen")
        .arg(listen)
        .env("RUST_LOG", "warn")
        .env("CLOUDKEEP_LOG", "warn");
    cmd
}

/// Waits (bounded) for `DATA/initial-admin.json` and returns its token.
pub fn admin_token(data: &Path, timeout: Duration) -> Result<String> {
    let path = data.join("initial-admin.json");
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(token) = v["token"].as_str()
        {
            return Ok(token.to_owned());
        }
        if start.elapsed() > timeout {
            bail!("{} has no token after {timeout:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A started server and the admin token read from its data dir.
#[derive(Debug)]
pub struct Server {
    pub proc: Proc,
    pub url: String,
    pub token: String,
}

pub fn start_server(bin: &Path, root: &Path) -> Result<Server> {
    start_server_with(bin, root, &[])
}

/// A server started with `extra` arguments (e.g. `--config FILE`).
pub fn start_server_with(bin: &Path, root: &Path, extra: &[&str]) -> Result<Server> {
    let data = root.join("server-data");
    std::fs::create_dir_all(&data)?;
    let addr = child::free_tcp_addr()?;
    let mut proc = Proc::spawn(
        "cloudkeep server",
        server_command(bin, &data, &addr.to_string()).args(extra),
        &root.join("server.log"),
    )?;
    let url = format!("http://{addr}");
    proc.wait_ready(&format!("{url}/readyz"), Duration::from_secs(60))?;
    let token = admin_token(&data, Duration::from_secs(10))?;
    Ok(Server { proc, url, token })
}

/// Applies a one-host platform spec and creates an agent token for it.
pub fn agent_token(bin: &Path, server: &Server, scratch: &Path) -> Result<String> {
    let spec = serde_json::json!({
        "version": 1,
        "platform": "bench",
        "isv": "bench",
        "tenant": "bench",
        "cloud": "local",
        "hosts": [{"name": hostname(), "components": []}],
    });
    spec_token(bin, server, scratch, &spec)
}

/// The CLI as the server's admin.
pub fn cli(bin: &Path, server: &Server, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("CLOUDKEEP_SERVER", &server.url)
        .env("CLOUDKEEP_API_TOKEN", &server.token);
    cmd
}

/// Applies `spec` (platform `bench`) and creates an agent token for it.
pub fn spec_token(
    bin: &Path,
    server: &Server,
    scratch: &Path,
    spec: &serde_json::Value,
) -> Result<String> {
    let spec_path = scratch.join("bench-spec.json");
    std::fs::write(&spec_path, serde_json::to_vec_pretty(spec)?)?;
    let cli = |args: &[&str]| cli(bin, server, args);
    let limit = Duration::from_secs(60);
    child::run_bounded(
        &mut cli(&["spec", "apply", &spec_path.to_string_lossy()]),
        limit,
        scratch,
    )?;
    let out = child::run_bounded(
        &mut cli(&["token", "create", "--platform", "bench", "--output", "json"]),
        limit,
        scratch,
    )?;
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("`cloudkeep token create` printed non-JSON: {}", out.stdout))?;
    v["token"]
        .as_str()
        .map(str::to_owned)
        .context("`cloudkeep token create` printed no \"token\"")
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
