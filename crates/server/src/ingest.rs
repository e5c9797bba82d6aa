//! Ingest: decoded remote_write batches become time-series samples, acknowledged only once durable.

use cloudkeep_protocol::remote_write::{self, BorrowedWrite, DecodeError};
use cloudkeep_tsdb::{AppendStats, Sample, SeriesRef};

use crate::alerting::SeriesSamples;
use crate::alerting::rules::RuleSet;
use crate::auth::Permission;
use crate::{ErrorKind, Principal, Server, ServiceError};

/// What one accepted batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOutcome {
    pub samples: u64,
    pub out_of_order: u64,
}

enum IngestFailure {
    Decode(DecodeError),
    Store(cloudkeep_tsdb::Error),
}

impl Server {
    /// Decodes a snappy-compressed remote_write body and appends it; returns once the samples are durable.
    ///
    /// An agent's samples are stamped with its own `host` and `platform` labels, whatever it sent, so one
    /// host cannot write another's series. Decoding borrows strings from the decompressed body and the
    /// store looks known series up without allocating: this is the ingest hot path.
    pub async fn ingest_remote_write<B>(
        &self,
        caller: &Principal,
        body: B,
    ) -> Result<IngestOutcome, ServiceError>
    where
        B: AsRef<[u8]> + Send + 'static,
    {
        caller.require(Permission::WriteMetrics)?;
        let stamp = match caller {
            Principal::Agent { host, platform, .. } => Some((host.clone(), platform.clone())),
            Principal::User { .. } => None,
        };
        let tsdb = self.tsdb().clone();
        let rules = self.alerting().engine.rules();
        let outcome = tokio::task::spawn_blocking(
            move || -> Result<(AppendStats, Vec<SeriesSamples>), IngestFailure> {
                let raw = remote_write::decompress(body.as_ref()).map_err(IngestFailure::Decode)?;
                let decoded = remote_write::decode_borrowed(&raw).map_err(IngestFailure::Decode)?;
                let samples: Vec<Sample> = decoded
                    .samples
                    .iter()
                    .map(|&(timestamp_ms, value)| Sample {
                        timestamp_ms,
                        value,
                    })
                    .collect();
                let stamped = stamp
                    .as_ref()
                    .map(|(host, platform)| stamp_labels(&decoded, host, platform));
                let refs: Vec<SeriesRef<'_>> = match &stamped {
                    None => decoded
                        .series
                        .iter()
                        .map(|span| SeriesRef {
                            labels: &decoded.labels[span.labels.clone()],
                            samples: &samples[span.samples.clone()],
                        })
                        .collect(),
                    Some((labels, ranges)) => ranges
                        .iter()
                        .zip(&decoded.series)
                        .map(|(range, span)| SeriesRef {
                            labels: &labels[range.clone()],
                            samples: &samples[span.samples.clone()],
                        })
                        .collect(),
                };
                let stats = tsdb.append_refs(&refs).map_err(IngestFailure::Store)?;
                // Only after the samples are durable are they evaluated: an alert never fires on
                // data the store does not have.
                Ok((stats, watched_series(&rules, &refs)))
            },
        )
        .await
        .map_err(|err| ServiceError::internal("append task failed", &err))?;
        let (stats, watched) = match outcome {
            Ok(done) => done,
            Err(IngestFailure::Decode(err)) => {
                metrics::counter!("cloudkeep_ingest_rejected_total").increment(1);
                return Err(ServiceError::bad_request(format!(
                    "invalid remote_write body: {err}"
                )));
            }
            Err(IngestFailure::Store(err)) => {
                tracing::error!(error = %err, "appending samples failed");
                return Err(ServiceError::new(
                    ErrorKind::Unavailable,
                    "the time-series store cannot take writes; retry later",
                ));
            }
        };
        metrics::counter!("cloudkeep_ingest_samples_total").increment(stats.samples);
        metrics::counter!("cloudkeep_ingest_out_of_order_total").increment(stats.out_of_order);
        self.alerting().engine.submit(watched);
        if let Principal::Agent { host, .. } = caller {
            // Last-seen is when the server heard from the agent, not the sample time: backfill is not liveness.
            let now_ms = self.now_ms();
            self.alerting().engine.host_seen(host, now_ms);
            self.store().touch_host(host, now_ms).await?;
        }
        Ok(IngestOutcome {
            samples: stats.samples,
            out_of_order: stats.out_of_order,
        })
    }
}

/// Every series' labels without any `host`/`platform` it sent, plus the agent's own; with the ranges per series.
fn stamp_labels<'a>(
    decoded: &BorrowedWrite<'a>,
    host: &'a str,
    platform: &'a str,
) -> (Vec<(&'a str, &'a str)>, Vec<std::ops::Range<usize>>) {
    let mut labels = Vec::with_capacity(decoded.labels.len() + 2 * decoded.series.len());
    let mut ranges = Vec::with_capacity(decoded.series.len());
    for span in &decoded.series {
        let start = labels.len();
        labels.extend(
            decoded.labels[span.labels.clone()]
                .iter()
                .filter(|(name, _)| *name != "host" && *name != "platform")
                .copied(),
        );
        labels.push(("host", host));
        labels.push(("platform", platform));
        ranges.push(start..labels.len());
    }
    (labels, ranges)
}

/// The series some rule watches, copied out for the evaluator (the rest are only stored).
fn watched_series(rules: &RuleSet, refs: &[SeriesRef<'_>]) -> Vec<SeriesSamples> {
    if rules.is_empty() {
        return Vec::new();
    }
    let mut watched = Vec::new();
    for series in refs {
        let Some(metric) = series
            .labels
            .iter()
            .find(|(name, _)| *name == "__name__")
            .map(|(_, value)| *value)
        else {
            continue;
        };
        if !rules.watches(metric) {
            continue;
        }
        let Some(host) = series
            .labels
            .iter()
            .find(|(name, _)| *name == "host")
            .map(|(_, value)| *value)
        else {
            continue;
        };
        watched.push(SeriesSamples {
            metric: metric.to_owned(),
            host: host.to_owned(),
            labels: series
                .labels
                .iter()
                .filter(|(name, _)| !matches!(*name, "__name__" | "host" | "platform"))
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            samples: series
                .samples
                .iter()
                .map(|sample| (sample.timestamp_ms, sample.value))
                .collect(),
        });
    }
    watched
}
