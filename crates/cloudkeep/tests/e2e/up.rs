//! `cloudkeep up` in a temp dir lists this host with fresh metrics, via the API and via `cloudkeep hosts`.

use std::time::Duration;

use cloudkeep_client::Client;
use cloudkeep_protocol::api::{HostList, HostSummary};

use crate::harness::{Process, binary, read_admin, wait_for};

fn complete(host: &HostSummary) -> bool {
    host.cpu_busy_percent.is_some()
        && host.memory_used_percent.is_some()
        && !host.filesystems.is_empty()
        && host
            .interfaces
            .iter()
            .any(|i| i.receive_bytes_per_second.is_some())
}

fn now_ms() -> i64 {
    cloudkeep_stdx::Clock::now_ms(&cloudkeep_stdx::SystemClock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_lists_this_host_with_fresh_metrics_and_cli_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config_home = dir.path().join("config");
    let port = cloudkeep_testkit::free_port();
    let start = || {
        let mut command = binary();
        command
            .args([
                "up",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--interval",
                "1s",
                "--data-dir",
            ])
            .arg(&data_dir)
            .env("XDG_CONFIG_HOME", &config_home);
        Process::spawn(command)
    };
    let up = start();
    let url = format!("http://127.0.0.1:{port}");
    // The admin file appears once the server bootstrapped; wait for it before building the client.
    wait_for("initial admin file", Duration::from_secs(30), || {
        let exists = data_dir.join("initial-admin.json").exists();
        async move { exists.then_some(()) }
    })
    .await;
    let admin = read_admin(&data_dir);
    assert_eq!(admin.user, "admin");
    assert!(admin.password.len() >= 12);
    let client = Client::new(&url, Some(admin.token.clone())).unwrap();
    let started = now_ms();
    let host = wait_for(
        "this host with cpu, memory, df and interface values",
        Duration::from_secs(30),
        || {
            let client = client.clone();
            async move {
                let hosts = client.hosts().await.ok()?;
                hosts.hosts.into_iter().find(complete)
            }
        },
    )
    .await;
    assert_eq!(host.platform, "local");
    let cpu = host.cpu_busy_percent.unwrap();
    assert!((0.0..=100.0).contains(&cpu), "cpu {cpu}");
    let memory = host.memory_used_percent.unwrap();
    assert!(memory > 0.0 && memory < 100.0, "memory {memory}");
    assert!(
        host.filesystems
            .iter()
            .all(|fs| (0.0..=100.0).contains(&fs.used_percent))
    );
    let last_seen = host.last_seen_ms.expect("last seen set");
    assert!(
        last_seen >= started - 5_000 && last_seen <= now_ms() + 1000,
        "fresh: {last_seen} vs {started}"
    );

    // The operator context written by `up` lets the CLI work with no flags.
    let context = config_home.join("cloudkeep/context.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&context).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "context holds a token: owner-only");
    let output = binary()
        .args(["hosts", "--output", "json"])
        .env("XDG_CONFIG_HOME", &config_home)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: HostList = serde_json::from_slice(&output.stdout).unwrap();
    let cli_host = listed
        .hosts
        .iter()
        .find(|h| h.name == host.name)
        .expect("cli shows the same host");
    assert_eq!(cli_host.platform, "local");
    assert!(cli_host.cpu_busy_percent.is_some() && cli_host.memory_used_percent.is_some());
    assert!(!cli_host.filesystems.is_empty() && !cli_host.interfaces.is_empty());
    let table = binary()
        .arg("hosts")
        .env("XDG_CONFIG_HOME", &config_home)
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("HOST"), "{table}");
    assert!(table.contains(&host.name), "{table}");

    // Backups go to <data dir>/backups, one folder per isv.
    let access = client.backup_repository("local").await.unwrap();
    let backups_dir = std::path::absolute(data_dir.join("backups")).unwrap();
    assert!(backups_dir.is_dir());
    assert_eq!(
        access.repository,
        serde_json::json!({"kind": "local", "path": backups_dir, "prefix": "isv/local"})
    );

    // The server's own endpoints are up too.
    let metrics = reqwest_text(&format!("{url}/metrics")).await;
    assert!(
        metrics.contains("cloudkeep_ingest_samples_total"),
        "{metrics}"
    );
    let openapi = reqwest_text(&format!("{url}/api/v1/openapi.json")).await;
    assert!(openapi.contains("\"/api/v1/query_range\""));

    let status = up.terminate();
    assert!(status.success(), "up exits cleanly on SIGTERM");

    // Running it again reuses the data: same admin, same host, no second enrolment.
    let again = start();
    let host_again = wait_for("host after restart", Duration::from_secs(30), || {
        let client = client.clone();
        let name = host.name.clone();
        async move {
            client
                .hosts()
                .await
                .ok()?
                .hosts
                .into_iter()
                .find(|h| h.name == name)
        }
    })
    .await;
    assert_eq!(host_again.platform, "local");
    let agents = client.agents().await.unwrap();
    assert_eq!(
        agents.agents.len(),
        1,
        "the local agent kept its identity: {:?}",
        agents.agents
    );
    assert!(again.terminate().success());
}

/// A plain HTTP/1.0 GET over loopback, so these checks need no extra client.
async fn reqwest_text(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://");
    let (host_port, path) = address.split_once('/').unwrap_or((address, ""));
    let mut stream = tokio::net::TcpStream::connect(host_port).await.unwrap();
    stream
        .write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host_port}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    assert!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "{url}: {body}"
    );
    body
}
