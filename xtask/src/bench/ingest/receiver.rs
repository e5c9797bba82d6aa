//! The remote_write receivers compared by `bench ingest`, each a small description.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

/// Where one receiver's run lives.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Scratch directory for config files and logs (not measured).
    pub root: PathBuf,
    /// The receiver's data directory (measured after shutdown).
    pub data: PathBuf,
    pub addr: SocketAddr,
}

/// How to read back a series' stored sample count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryApi {
    /// Prometheus HTTP API: `/api/v1/query?query=count_over_time(SEL[1d])`.
    Prometheus,
    /// Cloudkeep: `/api/v1/query_range?query=SEL&start=MS&end=MS` → `{"series":[{"points":[…]}]}`.
    Cloudkeep,
}

/// How requests authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    /// Bearer token from `DATA/initial-admin.json`, written on first start.
    CloudkeepAdmin,
}

#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: &'static str,
    pub program: PathBuf,
    /// Builds the start command (writing any config file under `layout.root`).
    pub command: fn(&Path, &Layout) -> Result<Command>,
    /// GET path answering 2xx once the receiver accepts writes.
    pub ready_path: &'static str,
    pub write_path: &'static str,
    /// GET path that makes buffered data durable and queryable before shutdown.
    pub flush_path: Option<&'static str>,
    pub query: QueryApi,
    pub auth: Auth,
    /// Printed under the table to explain what its bytes on disk mean.
    pub disk_note: Option<&'static str>,
}

impl Receiver {
    pub fn prometheus(program: PathBuf) -> Self {
        Self {
            name: "prometheus",
            program,
            command: |program, l| {
                let config = l.root.join("prometheus.yml");
                std::fs::write(
                    &config,
                    "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
                )?;
                let mut cmd = Command::new(program);
                cmd.arg(format!("--config.file={}", config.display()))
                    .arg(format!("--storage.tsdb.path={}", l.data.display()))
                    .arg(format!("--web.listen-address={}", l.addr))
                    .arg("--web.enable-remote-write-receiver")
                    .arg("--log.level=warn");
                Ok(cmd)
            },
            ready_path: "/-/ready",
            write_path: "/api/v1/write",
            flush_path: None,
            query: QueryApi::Prometheus,
            auth: Auth::None,
            disk_note: Some(
                "prometheus: data is still in the WAL + head chunks (a head block is not compacted \
                 before it spans 2 h); that is what it has on disk",
            ),
        }
    }

    pub fn victoria_metrics(program: PathBuf) -> Self {
        Self {
            name: "victoriametrics",
            program,
            command: |program, l| {
                let mut cmd = Command::new(program);
                cmd.arg(format!("-storageDataPath={}", l.data.display()))
                    .arg(format!("-httpListenAddr={}", l.addr))
                    .arg("-loggerLevel=WARN");
                Ok(cmd)
            },
            ready_path: "/health",
            write_path: "/api/v1/write",
            flush_path: Some("/internal/force_flush"),
            query: QueryApi::Prometheus,
            auth: Auth::None,
            disk_note: None,
        }
    }

    pub fn cloudkeep(program: PathBuf) -> Self {
        Self {
            name: "cloudkeep",
            program,
            command: |program, l| {
                Ok(crate::cloudkeep::server_command(
                    program,
                    &l.data,
                    &l.addr.to_string(),
                ))
            },
            ready_path: "/readyz",
            write_path: "/api/v1/write",
            flush_path: None,
            query: QueryApi::Cloudkeep,
            auth: Auth::CloudkeepAdmin,
            disk_note: Some(
                "cloudkeep: bytes on disk are its whole --data-dir (time-series store and \
                 anything else it keeps there)",
            ),
        }
    }
}
