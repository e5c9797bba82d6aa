//! The server's services: authentication, inventory (platforms and hosts), enrolment, ingest, queries, audit and workers.
//!
//! Knows nothing of HTTP: the `http` crate decodes requests, calls one function here and encodes the answer.
#![forbid(unsafe_code)]

pub mod alerting;
pub mod auth;
mod backup;
pub mod backup_config;
pub mod collectd;
pub mod config;
pub mod enrol;
pub mod error;
pub mod ingest;
pub mod inventory;
pub mod notify_config;
pub mod query;
pub mod workers;

use std::path::PathBuf;
use std::sync::Arc;

use cloudkeep_stdx::Clock;
use cloudkeep_store::Store;
use cloudkeep_tsdb::Tsdb;

pub use auth::{InitialAdmin, Principal, Role};
pub use config::ServerConfig;
pub use error::{ErrorKind, ServiceError};
pub use workers::Workers;

/// Everything a request needs; cheap to clone.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    tsdb: Arc<Tsdb>,
    clock: Arc<dyn Clock>,
    config: ServerConfig,
    workers: Workers,
    alerting: alerting::Alerting,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("data_dir", &self.inner.config.data_dir)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the state store: {0}")]
    Store(#[from] cloudkeep_store::StoreError),
    #[error("cannot open the time-series store in {path}: {source}")]
    Tsdb {
        path: PathBuf,
        source: cloudkeep_tsdb::Error,
    },
    #[error("cannot bind the collectd listener on {addr}: {source}")]
    Collectd {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("a notification channel cannot be built: {0}")]
    Notify(String),
    #[error("cannot create the first admin: {0}")]
    Bootstrap(ServiceError),
}

impl Server {
    /// Opens the stores, creates the first admin on a new installation and starts the background workers.
    pub async fn start(
        config: ServerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<(Server, Option<InitialAdmin>), StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let channels =
            alerting::notifier::Channels::build(&config.notify).map_err(StartError::Notify)?;
        let store = Store::open(&config.database_url).await?;
        let tsdb_dir = config.data_dir.join("tsdb");
        let tsdb_options = config.tsdb_options();
        let tsdb = tokio::task::spawn_blocking({
            let tsdb_dir = tsdb_dir.clone();
            move || Tsdb::open(&tsdb_dir, tsdb_options)
        })
        .await
        .map_err(|err| StartError::Tsdb {
            path: tsdb_dir.clone(),
            source: cloudkeep_tsdb::Error::Io {
                path: tsdb_dir.clone(),
                source: std::io::Error::other(err.to_string()),
            },
        })?
        .map_err(|source| StartError::Tsdb {
            path: tsdb_dir.clone(),
            source,
        })?;
        let server = Server {
            inner: Arc::new(Inner {
                store,
                tsdb: Arc::new(tsdb),
                workers: Workers::new(clock.clone()),
                alerting: alerting::Alerting::new(channels),
                clock,
                config,
            }),
        };
        let initial_admin = server
            .bootstrap_admin()
            .await
            .map_err(StartError::Bootstrap)?;
        server.start_workers();
        server.start_alerting().await;
        if let Some(addr) = server.config().collectd.listen {
            let socket = collectd::bind(addr)
                .await
                .map_err(|source| StartError::Collectd { addr, source })?;
            tracing::info!(addr = %addr, "collectd listener bound");
            server.alerting().spawn_task(|stop| {
                collectd::run_udp_listener(
                    server.clone(),
                    socket,
                    server.config().collectd.security.clone(),
                    cloudkeep_protocol::collectd::TypesDb::builtin().clone(),
                    stop,
                )
            });
        }
        Ok((server, initial_admin))
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn tsdb(&self) -> &Arc<Tsdb> {
        &self.inner.tsdb
    }

    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub fn workers(&self) -> &Workers {
        &self.inner.workers
    }

    /// The named background workers and their status.
    pub async fn worker_list(
        &self,
        caller: &Principal,
    ) -> Result<cloudkeep_protocol::api::WorkerList, ServiceError> {
        caller.require(auth::Permission::Read)?;
        let result = Ok(cloudkeep_protocol::api::WorkerList {
            workers: self.inner.workers.list(),
        });
        self.audit(caller, "workers.list", "workers", &result).await;
        result
    }

    /// Ready when the state store answers; the time-series store is open by construction.
    pub async fn ready(&self) -> bool {
        self.inner.store.ping().await
    }

    fn start_workers(&self) {
        let retention = self.clone();
        self.inner.workers.spawn(
            "tsdb-retention",
            std::time::Duration::from_secs(3600),
            move || {
                let server = retention.clone();
                async move {
                    let now_ms = server.now_ms();
                    let tsdb = server.tsdb().clone();
                    tokio::task::spawn_blocking(move || tsdb.apply_retention(now_ms))
                        .await
                        .map_err(|err| err.to_string())?
                        .map(|_| ())
                        .map_err(|err| err.to_string())
                }
            },
        );
        let downsampling = self.clone();
        self.inner.workers.spawn(
            "tsdb-downsample",
            std::time::Duration::from_secs(600),
            move || {
                let server = downsampling.clone();
                async move {
                    let now_ms = server.now_ms();
                    let min_age_ms = cloudkeep_tsdb::Options::default().downsample_after_ms;
                    let tsdb = server.tsdb().clone();
                    tokio::task::spawn_blocking(move || tsdb.downsample(now_ms, min_age_ms))
                        .await
                        .map_err(|err| err.to_string())?
                        .map(|_| ())
                        .map_err(|err| err.to_string())
                }
            },
        );
        let sealing = self.clone();
        self.inner
            .workers
            .spawn("tsdb-seal", self.inner.config.seal_interval, move || {
                let server = sealing.clone();
                async move {
                    let tsdb = server.tsdb().clone();
                    tokio::task::spawn_blocking(move || tsdb.flush())
                        .await
                        .map_err(|err| err.to_string())?
                        .map_err(|err| err.to_string())
                }
            });
    }

    /// Stops the workers, seals the time-series head into blocks and closes the state store.
    pub async fn shutdown(&self) {
        self.inner.alerting.shutdown().await;
        self.inner.workers.shutdown().await;
        let tsdb = self.inner.tsdb.clone();
        match tokio::task::spawn_blocking(move || tsdb.flush()).await {
            Ok(Ok(())) => tracing::info!("time-series store flushed"),
            Ok(Err(err)) => {
                tracing::error!(error = %err, "flushing the time-series store failed; the write-ahead log keeps the data")
            }
            Err(err) => tracing::error!(error = %err, "flush task failed"),
        }
        self.inner.store.close().await;
    }
}
