//! Spawning the real binary in temp dirs on free ports, and waiting for conditions with a deadline.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudkeep_client::Client;

/// Whether every directory above `path` lets other users through (PostgreSQL, running as
/// `postgres`, must be able to run the agent's `cloudkeep wal-push`).
fn reachable_by_others(path: &std::path::Path) -> bool {
    cloudkeep_agent::backup::job::closed_to_others(path).is_none()
}

/// The binary under test, at a path every user can execute: a checkout in a private directory
/// (e.g. `mktemp -d`) gets a copy under the temp dir, shared by the test processes of one build.
fn executable() -> std::path::PathBuf {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let built = std::path::PathBuf::from(env!("CARGO_BIN_EXE_cloudkeep"));
        if reachable_by_others(&built) {
            return built;
        }
        let meta = std::fs::metadata(&built).expect("the built cloudkeep binary");
        let dir = std::env::temp_dir().join("cloudkeep-e2e-bin").join(format!(
            "{}-{}",
            meta.len(),
            meta.mtime_nsec() + meta.mtime() * 1_000_000_000
        ));
        let copy = dir.join("cloudkeep");
        if !copy.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            for level in [dir.as_path(), dir.parent().unwrap()] {
                std::fs::set_permissions(level, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            let staging = dir.join(format!("cloudkeep.{}", std::process::id()));
            std::fs::copy(&built, &staging).unwrap();
            std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&staging, &copy).unwrap();
        }
        assert!(
            reachable_by_others(&copy),
            "{} must be reachable by the postgres user",
            copy.display()
        );
        copy
    })
    .clone()
}

pub fn binary() -> Command {
    let mut command = Command::new(executable());
    command
        .env("CLOUDKEEP_LOG", "info")
        .env_remove("CLOUDKEEP_SERVER")
        .env_remove("CLOUDKEEP_API_TOKEN");
    command
}

/// A child process killed on drop, with its output lines collected.
pub struct Process {
    child: Child,
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Process {
    pub fn spawn(mut command: Command) -> Process {
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = command.spawn().expect("spawn cloudkeep");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line);
                }
            });
        }
        Process { child, output }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn output_text(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not stop within 30 s:\n{}",
                self.output_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(serde::Deserialize)]
pub struct InitialAdmin {
    pub user: String,
    pub password: String,
    pub token: String,
}

pub fn read_admin(data_dir: &Path) -> InitialAdmin {
    let bytes =
        std::fs::read(data_dir.join("initial-admin.json")).expect("initial-admin.json written");
    serde_json::from_slice(&bytes).unwrap()
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A `cloudkeep server` on a free port in its own data dir.
pub struct TestServer {
    pub process: Process,
    pub data_dir: PathBuf,
    pub port: u16,
}

impl TestServer {
    pub async fn start(data_dir: &Path, port: u16) -> TestServer {
        TestServer::start_with(data_dir, port, &[]).await
    }

    /// Starts a server with extra flags, e.g. `--database-url`.
    pub async fn start_with(data_dir: &Path, port: u16, extra: &[&str]) -> TestServer {
        let mut command = binary();
        command
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra);
        let process = Process::spawn(command);
        let server = TestServer {
            process,
            data_dir: data_dir.to_path_buf(),
            port,
        };
        let client = Client::new(&server.url(), None).unwrap();
        let admin_file = data_dir.join("initial-admin.json");
        wait_for("server ready", Duration::from_secs(30), || {
            let client = client.clone();
            let admin_written = admin_file.exists();
            async move { (admin_written && client.readyz().await.is_ok()).then_some(()) }
        })
        .await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn admin_client(&self) -> Client {
        Client::new(&self.url(), Some(read_admin(&self.data_dir).token)).unwrap()
    }
}

/// A `cloudkeep agent` reporting as `hostname` every second; `token` on its first start only.
pub fn agent(server: &str, state_dir: &Path, hostname: &str, token: Option<&str>) -> Process {
    let mut command = binary();
    command
        .args([
            "agent",
            "--server",
            server,
            "--interval",
            "1s",
            "--hostname",
            hostname,
            "--state-dir",
        ])
        .arg(state_dir);
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    Process::spawn(command)
}

/// An agent credential for `host` of `platform`, enrolled with a fresh join token the admin creates,
/// as a client (for tests that speak for an agent without running one).
pub async fn enrol_agent(server_url: &str, admin: &Client, platform: &str, host: &str) -> Client {
    let token = admin
        .create_token(&cloudkeep_protocol::api::TokenCreateRequest {
            platform: platform.into(),
            ttl_seconds: None,
        })
        .await
        .unwrap();
    let enrolled = Client::new(server_url, None)
        .unwrap()
        .enroll(&cloudkeep_protocol::api::EnrollRequest {
            join_token: token.token,
            hostname: host.into(),
            agent_version: "test".into(),
        })
        .await
        .unwrap();
    Client::new(server_url, Some(enrolled.credential)).unwrap()
}

/// A platform spec with the given hosts.
pub fn spec(platform: &str, hosts: &[&str]) -> String {
    serde_json::json!({
        "version": 1,
        "platform": platform,
        "isv": "acme",
        "tenant": "globex",
        "cloud": "gc-uk1",
        "hosts": hosts.iter().map(|h| serde_json::json!({"name": h, "components": []})).collect::<Vec<_>>(),
    })
    .to_string()
}
