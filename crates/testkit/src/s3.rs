//! A real S3-compatible server (moto's server mode, from PyPI `moto[server]`) on a free loopback
//! port with one empty bucket; stopped on drop.
//!
//! moto keeps everything in memory, does not check request signatures (any access key works) and
//! implements what the backup repository needs: multipart uploads (parts of at least 5 MiB but the
//! last), `If-None-Match: *` on PUT and on CompleteMultipartUpload, ListObjectsV2 and range GETs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The program's name on `PATH` (pip installs it beside the interpreter, pyenv adds a shim).
const DEFAULT_PROGRAM: &str = "moto_server";

/// How to get the server when it is missing.
const INSTALL_HINT: &str = "python3 -m pip install 'moto[server]==5.2.1'";

/// The bucket every server starts with.
const DEFAULT_BUCKET: &str = "cloudkeep-test";

/// The access key pair to give clients: moto accepts any.
pub const TEST_ACCESS_KEY_ID: &str = "testing";

/// The secret access key to give clients: moto accepts any.
pub const TEST_SECRET_ACCESS_KEY: &str = "testing";

/// A running moto S3 server owned by a test.
#[derive(Debug)]
pub struct TestS3 {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

/// `$CLOUDKEEP_MOTO_SERVER`, else `moto_server` found on `PATH`.
fn program() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("CLOUDKEEP_MOTO_SERVER") {
        let explicit = PathBuf::from(explicit);
        return explicit.is_file().then_some(explicit);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(DEFAULT_PROGRAM))
        .find(|candidate| candidate.is_file())
}

/// Whether the program runs at all (a pyenv shim exists even when the active Python lacks moto).
fn program_works(program: &Path) -> bool {
    Command::new(program)
        .arg("--help")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// One HTTP/1.1 request without a body or a signature; returns the status code and the body.
fn unsigned_request(port: u16, method: &str, target: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

impl TestS3 {
    /// Starts a server with the bucket [`TestS3::bucket`], or returns `None` (outside CI only) when
    /// `moto_server` is not installed.
    pub fn start() -> Option<TestS3> {
        let Some(program) = program().filter(|program| program_works(program)) else {
            assert!(
                !crate::in_ci(),
                "moto_server not found or not working (CI=true): {INSTALL_HINT}"
            );
            eprintln!("skipping: moto_server not found or not working ({INSTALL_HINT})");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("cloudkeep-s3-")
            .tempdir()
            .expect("create temp dir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("create the log");
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // Large objects spill to temporary files: keep them in our dir, removed on drop.
            .env("TMPDIR", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        let mut server = TestS3 { child, dir, port };
        server.wait_ready_and_create(DEFAULT_BUCKET);
        Some(server)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Polls until the server answers, by creating the first bucket (an unsigned PUT: moto treats
    /// unsigned requests as S3 in us-east-1).
    fn wait_ready_and_create(&mut self, bucket: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("moto_server exited early ({status}):\n{}", self.log());
            }
            if let Ok((status, body)) = unsigned_request(self.port, "PUT", &format!("/{bucket}")) {
                assert_eq!(
                    status,
                    200,
                    "moto_server refused to create bucket {bucket}: {body}\n{}",
                    self.log()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "moto_server on port {} did not become ready in 30 s:\n{}",
            self.port,
            self.log()
        );
    }

    /// Creates another empty bucket.
    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = unsigned_request(self.port, "PUT", &format!("/{bucket}"))
            .expect("send the create-bucket request");
        assert_eq!(status, 200, "creating bucket {bucket} failed: {body}");
    }

    /// The keys in `bucket` (at most 1000), straight from the server, for tests that check what
    /// is visible without going through the code under test.
    pub fn list_keys(&self, bucket: &str) -> Vec<String> {
        let (status, body) = unsigned_request(self.port, "GET", &format!("/{bucket}?list-type=2"))
            .expect("send the list request");
        assert_eq!(status, 200, "listing bucket {bucket} failed: {body}");
        body.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
            .collect()
    }

    /// The multipart uploads started in `bucket` and neither completed nor aborted (their keys).
    pub fn pending_multipart_uploads(&self, bucket: &str) -> Vec<String> {
        let (status, body) = unsigned_request(self.port, "GET", &format!("/{bucket}?uploads"))
            .expect("send the list-uploads request");
        assert_eq!(status, 200, "listing uploads of {bucket} failed: {body}");
        body.split("<Upload>")
            .skip(1)
            .filter_map(|upload| {
                upload
                    .split_once("<Key>")
                    .and_then(|(_, rest)| rest.split_once("</Key>"))
                    .map(|(key, _)| key.to_owned())
            })
            .collect()
    }

    /// The request lines the server logged so far (werkzeug's access log, e.g.
    /// `"POST /bucket/key?uploads HTTP/1.1" 200 -`), to check which requests a client made.
    pub fn request_log(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.contains("\" ") && line.contains(" HTTP/1.1\""))
            .map(str::to_owned)
            .collect()
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The endpoint URL for S3 clients (plain HTTP, path-style requests).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        DEFAULT_BUCKET
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Puts an object with a plain unsigned request and finds it in the listing.
    #[test]
    fn server_starts_with_an_empty_bucket_that_accepts_objects() {
        let Some(server) = TestS3::start() else {
            return;
        };
        assert!(server.list_keys(server.bucket()).is_empty());
        let (status, body) = unsigned_request(
            server.port(),
            "PUT",
            &format!("/{}/some/key.txt", server.bucket()),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(server.list_keys(server.bucket()), vec!["some/key.txt"]);
        server.create_bucket("second");
        assert!(server.list_keys("second").is_empty());
        assert!(server.pending_multipart_uploads(server.bucket()).is_empty());
        assert!(server.url().starts_with("http://127.0.0.1:"));
        let log = server.request_log();
        assert!(
            log.iter()
                .any(|line| line.contains("\"PUT /cloudkeep-test/some/key.txt HTTP/1.1\" 200")),
            "{log:?}"
        );
    }
}
