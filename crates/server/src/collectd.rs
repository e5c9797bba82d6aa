//! collectd in: datagrams of collectd's binary network protocol (UDP, plain, signed or
//! encrypted) and bodies of its `write_http` JSON format become samples under the sending host.
//!
//! Names follow collectd_exporter (`collectd_cpu_total{cpu="0",type="idle"}`); the host is the
//! one collectd reports, the platform the one that declares that host (or the configured default).

use std::net::SocketAddr;

use cloudkeep_protocol::collectd::{self, MappedSample, Security, TypesDb};
use cloudkeep_tsdb::{InputSeries, Sample};
use tokio::sync::watch;

use crate::alerting::SeriesSamples;
use crate::auth::Permission;
use crate::{ErrorKind, Principal, Server, ServiceError};

/// Largest datagram collectd sends (its default network buffer is 1452 bytes; allow jumbo).
const MAX_DATAGRAM: usize = 65_535;

impl Server {
    /// Stores mapped collectd samples; returns how many were stored.
    pub async fn ingest_collectd(&self, samples: Vec<MappedSample>) -> Result<u64, ServiceError> {
        if samples.is_empty() {
            return Ok(0);
        }
        let mut platforms: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        for sample in &samples {
            if !platforms.contains_key(&sample.host) {
                let platform = match self.store().get_host(&sample.host).await? {
                    Some(host) => host.platform,
                    None => self.config().collectd.default_platform.clone(),
                };
                platforms.insert(sample.host.clone(), platform);
            }
        }
        let series: Vec<InputSeries> = samples
            .iter()
            .filter(|sample| sample.value.is_finite())
            .map(|sample| {
                let mut labels = Vec::with_capacity(sample.labels.len() + 3);
                labels.push(("__name__".to_owned(), sample.name.clone()));
                labels.extend(sample.labels.iter().cloned());
                labels.push(("host".to_owned(), sample.host.clone()));
                labels.push((
                    "platform".to_owned(),
                    platforms.get(&sample.host).cloned().unwrap_or_default(),
                ));
                InputSeries {
                    labels,
                    samples: vec![Sample {
                        timestamp_ms: sample.timestamp_ms,
                        value: sample.value,
                    }],
                }
            })
            .collect();
        let watched: Vec<SeriesSamples> = {
            let rules = self.alerting().engine.rules();
            samples
                .iter()
                .filter(|sample| sample.value.is_finite() && rules.watches(&sample.name))
                .map(|sample| SeriesSamples {
                    metric: sample.name.clone(),
                    host: sample.host.clone(),
                    labels: sample.labels.clone(),
                    samples: vec![(sample.timestamp_ms, sample.value)],
                })
                .collect()
        };
        let tsdb = self.tsdb().clone();
        let stats = tokio::task::spawn_blocking(move || tsdb.append(series))
            .await
            .map_err(|err| ServiceError::internal("append task failed", &err))?
            .map_err(|err| {
                tracing::error!(error = %err, "appending collectd samples failed");
                ServiceError::new(
                    ErrorKind::Unavailable,
                    "the time-series store cannot take writes; retry later",
                )
            })?;
        self.alerting().engine.submit(watched);
        let now_ms = self.now_ms();
        for host in platforms.keys() {
            self.alerting().engine.host_seen(host, now_ms);
        }
        metrics::counter!("cloudkeep_collectd_samples_total").increment(stats.samples);
        Ok(stats.samples)
    }

    /// `POST /api/v1/collectd`: a `write_http` plugin body in its JSON format.
    pub async fn ingest_collectd_json(
        &self,
        caller: &Principal,
        body: &[u8],
    ) -> Result<u64, ServiceError> {
        caller.require(Permission::WriteMetrics)?;
        let lists = collectd::parse_write_http(body).map_err(|err| {
            metrics::counter!("cloudkeep_collectd_rejected_total").increment(1);
            ServiceError::bad_request(format!("invalid collectd write_http body: {err}"))
        })?;
        let mut samples = Vec::new();
        for list in &lists {
            let mapped = collectd::map_write_http_value_list(list).map_err(|err| {
                ServiceError::bad_request(format!("invalid collectd write_http body: {err}"))
            })?;
            samples.extend(mapped);
        }
        self.ingest_collectd(samples).await
    }
}

/// Receives collectd datagrams on `addr` until `stop`; a bad datagram is counted and logged
/// (rate-limited by the counter, at debug for each) and never disturbs the others.
pub async fn run_udp_listener(
    server: Server,
    socket: tokio::net::UdpSocket,
    security: Security,
    types: TypesDb,
    mut stop: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let (length, from) = tokio::select! {
            _ = stop.changed() => break,
            received = socket.recv_from(&mut buffer) => match received {
                Ok(received) => received,
                Err(err) => {
                    tracing::warn!(error = %err, "collectd socket receive failed");
                    continue;
                }
            },
        };
        let Some(datagram) = buffer.get(..length) else {
            continue;
        };
        match map_datagram(datagram, &security, &types) {
            Ok(samples) => {
                if let Err(err) = server.ingest_collectd(samples).await {
                    tracing::warn!(from = %from, error = %err, "collectd samples not stored");
                }
            }
            Err(err) => {
                metrics::counter!("cloudkeep_collectd_rejected_total").increment(1);
                tracing::warn!(from = %from, error = %err, "collectd datagram rejected");
            }
        }
    }
}

/// Parses and maps one datagram; an error rejects the whole datagram.
pub fn map_datagram(
    datagram: &[u8],
    security: &Security,
    types: &TypesDb,
) -> Result<Vec<MappedSample>, collectd::CollectdError> {
    let packet = collectd::parse_packet(datagram, security)?;
    let mut samples = Vec::new();
    for list in &packet.value_lists {
        samples.extend(collectd::map_value_list(list, types)?);
    }
    Ok(samples)
}

/// Binds the collectd UDP socket (so a taken port fails the start, not later).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    tokio::net::UdpSocket::bind(addr).await
}
