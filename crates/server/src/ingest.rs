//! Ingest: decoded remote_write batches become time-series samples, acknowledged only once durable.

use cloudkeep_protocol::remote_write::{self, WriteRequest};
use cloudkeep_tsdb::{InputSeries, Sample};

use crate::auth::Permission;
use crate::{ErrorKind, Principal, Server, ServiceError};

/// What one accepted batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOutcome {
    pub samples: u64,
    pub out_of_order: u64,
}

impl Server {
    /// Decodes a snappy-compressed remote_write body and appends it; returns once the samples are durable.
    ///
    /// An agent's samples are stamped with its own `host` and `platform` labels, whatever it sent, so one
    /// host cannot write another's series.
    pub async fn ingest_remote_write(
        &self,
        caller: &Principal,
        body: &[u8],
    ) -> Result<IngestOutcome, ServiceError> {
        caller.require(Permission::WriteMetrics)?;
        let request = remote_write::decode(body).map_err(|err| {
            metrics::counter!("cloudkeep_ingest_rejected_total").increment(1);
            ServiceError::bad_request(format!("invalid remote_write body: {err}"))
        })?;
        let series = to_input_series(request, caller);
        let latest_timestamp = series
            .iter()
            .flat_map(|s| s.samples.last())
            .map(|s| s.timestamp_ms)
            .max();
        let tsdb = self.tsdb().clone();
        let stats = tokio::task::spawn_blocking(move || tsdb.append(series))
            .await
            .map_err(|err| ServiceError::internal("append task failed", &err))?
            .map_err(|err| {
                tracing::error!(error = %err, "appending samples failed");
                ServiceError::new(
                    ErrorKind::Unavailable,
                    "the time-series store cannot take writes; retry later",
                )
            })?;
        metrics::counter!("cloudkeep_ingest_samples_total").increment(stats.samples);
        metrics::counter!("cloudkeep_ingest_out_of_order_total").increment(stats.out_of_order);
        if let (Principal::Agent { host, .. }, Some(_)) = (caller, latest_timestamp) {
            // Last-seen is when the server heard from the agent, not the sample time: backfill is not liveness.
            self.store().touch_host(host, self.now_ms()).await?;
        }
        Ok(IngestOutcome {
            samples: stats.samples,
            out_of_order: stats.out_of_order,
        })
    }
}

fn to_input_series(request: WriteRequest, caller: &Principal) -> Vec<InputSeries> {
    request
        .timeseries
        .into_iter()
        .map(|series| {
            let mut labels: Vec<(String, String)> = series
                .labels
                .into_iter()
                .map(|label| (label.name, label.value))
                .collect();
            if let Principal::Agent { host, platform, .. } = caller {
                labels.retain(|(name, _)| name != "host" && name != "platform");
                labels.push(("host".into(), host.clone()));
                labels.push(("platform".into(), platform.clone()));
            }
            let samples = series
                .samples
                .into_iter()
                .map(|sample| Sample {
                    timestamp_ms: sample.timestamp,
                    value: sample.value,
                })
                .collect();
            InputSeries { labels, samples }
        })
        .collect()
}
