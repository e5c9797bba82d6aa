//! A real PostgreSQL server from the Debian binaries: initdb into a temp dir, a free port, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// A running PostgreSQL server owned by a test.
#[derive(Debug)]
pub struct TestPostgres {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

fn bin_dir() -> PathBuf {
    std::env::var_os("CLOUDKEEP_PG_BIN")
        .map_or_else(|| PathBuf::from(DEFAULT_BIN_DIR), PathBuf::from)
}

/// Whether the tests run as root (PostgreSQL then runs as `postgres`).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// PostgreSQL refuses to run as root: run its binaries as the `postgres` user then.
fn command(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A temp dir the server's user owns.
fn server_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("cloudkeep-pg-")
        .tempdir()
        .expect("create temp dir");
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("run chown");
        assert!(status.success(), "chown of the PostgreSQL temp dir failed");
    }
    dir
}

/// Whether the binaries are there; panics under CI when they are not.
fn binaries_present() -> bool {
    let bins = bin_dir();
    if bins.join("postgres").exists() {
        return true;
    }
    assert!(
        !crate::in_ci(),
        "PostgreSQL binaries not found in {} (CI=true)",
        bins.display()
    );
    eprintln!(
        "skipping: PostgreSQL binaries not found in {}",
        bins.display()
    );
    false
}

impl TestPostgres {
    /// Starts a server, or returns `None` (outside CI only) when the binaries are not installed.
    pub fn start() -> Option<TestPostgres> {
        TestPostgres::start_with(&[])
    }

    /// Starts a server with extra `-c` settings (e.g. `("archive_mode", "on")`), or returns `None`
    /// (outside CI only) when the binaries are not installed.
    pub fn start_with(settings: &[(&str, &str)]) -> Option<TestPostgres> {
        if !binaries_present() {
            return None;
        }
        let dir = server_dir();
        let output = command(&bin_dir().join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(dir.path().join("data"))
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(TestPostgres::run(dir, settings))
    }

    /// Starts a streaming standby of `primary` (a `pg_basebackup -R` copy).
    pub fn start_standby(primary: &TestPostgres) -> TestPostgres {
        let dir = server_dir();
        let output = command(&bin_dir().join("pg_basebackup"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-D",
            ])
            .arg(dir.path().join("data"))
            .output()
            .expect("run pg_basebackup");
        assert!(
            output.status.success(),
            "pg_basebackup failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        TestPostgres::run(dir, &[])
    }

    fn run(dir: tempfile::TempDir, settings: &[(&str, &str)]) -> TestPostgres {
        let port = free_port();
        let mut postgres = command(&bin_dir().join("postgres"));
        postgres
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=50",
            ]);
        for (name, value) in settings {
            postgres.arg("-c").arg(format!("{name}={value}"));
        }
        let child = postgres
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let server = TestPostgres { child, dir, port };
        server.wait_ready();
        server
    }

    /// A PostgreSQL client program aimed at this server as the `postgres` superuser.
    fn client(&self, program: &str) -> Command {
        let mut command = Command::new(bin_dir().join(program));
        command.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ]);
        command
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = self
                .client("pg_isready")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "PostgreSQL on port {} did not become ready in 30 s",
            self.port
        );
    }

    /// Creates a fresh database and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        let status = self
            .client("createdb")
            .arg(name)
            .status()
            .expect("run createdb");
        assert!(status.success(), "createdb {name} failed");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory holding its Unix socket.
    pub fn socket_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A connection URL for the `postgres` superuser.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown. Signal the postmaster itself: under runuser the child is runuser.
        let postmaster = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().map(str::to_owned))
            .unwrap_or_else(|| self.child.id().to_string());
        let _ = Command::new("kill").args(["-INT", &postmaster]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
