//! The `prometheus` check: scrapes an exporter's text exposition over HTTP, relabels and returns its samples.
//!
//! Status: Ok when scraped and parsed; Critical when the target is unreachable, times out or
//! answers non-200; Unknown when the body is not a valid exposition (like Prometheus, one bad
//! line fails the whole scrape) or larger than 32 MiB. A failed scrape yields only `scrape_up` 0.

pub mod exposition;
pub mod relabel;

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;

use self::exposition::parse_exposition_bytes;
use self::relabel::{RelabelConfig, RelabelRule, relabel_sample};
use super::http::parse_http_url;
use super::net_util::{MAX_MESSAGE_BYTES, error_chain, format_latency, sample, truncate_message};
use super::options::{
    OptionDuration, config_error, decode_options, format_duration, require_positive_timeout,
};
use super::{Check, CheckConfigError, CheckFuture, CheckOutcome, CheckStatus, Sample};

/// Options of a `prometheus` monitor.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusOptions {
    /// The exporter's metrics URL, e.g. `http://127.0.0.1:9100/metrics`.
    pub url: String,
    /// Time limit for the whole scrape, body included.
    #[serde(default = "default_scrape_timeout")]
    pub timeout: OptionDuration,
    /// Rules applied in order to every scraped sample (Prometheus `metric_relabel_configs` semantics).
    #[serde(default)]
    pub relabel: Vec<RelabelConfig>,
}

fn default_scrape_timeout() -> OptionDuration {
    OptionDuration(Duration::from_secs(10))
}

/// The largest exposition body accepted (a node exporter sends a few hundred KiB).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// What we ask for: the 0.0.4 text format (never protobuf or OpenMetrics).
const ACCEPT_TEXT_FORMAT: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";
/// Labels the runner adds itself; a scraped one is renamed `exported_<name>` (Prometheus' honor_labels=false).
const RUNNER_LABELS: [&str; 3] = ["host", "platform", "monitor"];

/// A configured `prometheus` check.
#[derive(Debug, Clone)]
pub struct PrometheusCheck {
    client: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    rules: Vec<RelabelRule>,
}

/// Why a scrape failed, and the status it gives.
struct ScrapeFailure {
    status: CheckStatus,
    message: String,
}

impl PrometheusCheck {
    /// Build from a monitor's `options`; errors name the field (`options.relabel[1].regex: invalid regex ...`).
    pub fn from_options(
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<PrometheusCheck, CheckConfigError> {
        let options: PrometheusOptions = decode_options(options)?;
        require_positive_timeout(".timeout", options.timeout)?;
        let url = parse_http_url(".url", &options.url)?;
        let rules = options
            .relabel
            .iter()
            .enumerate()
            .map(|(index, config)| RelabelRule::compile(config, &format!(".relabel[{index}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let client = reqwest::Client::builder()
            // Probes go straight to the target: an agent's HTTP(S)_PROXY variables would
            // otherwise silently route health checks of local services through a proxy.
            .no_proxy()
            .timeout(options.timeout.get())
            .user_agent(concat!("cloudkeep-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                config_error(
                    "",
                    format!("cannot set up the HTTP client: {}", error_chain(&error)),
                )
            })?;
        Ok(PrometheusCheck {
            client,
            url,
            timeout: options.timeout.get(),
            rules,
        })
    }

    async fn scrape(&self) -> CheckOutcome {
        let started = Instant::now();
        let fetched = tokio::time::timeout(self.timeout, self.fetch()).await;
        let body = match fetched {
            Ok(Ok(body)) => body,
            Ok(Err(failure)) => return failed(failure),
            Err(_elapsed) => {
                return failed(ScrapeFailure {
                    status: CheckStatus::Critical,
                    message: self.timed_out_message(),
                });
            }
        };
        let scraped = match parse_exposition_bytes(&body) {
            Ok(scraped) => scraped,
            Err(error) => {
                return failed(ScrapeFailure {
                    status: CheckStatus::Unknown,
                    message: format!("invalid exposition from {}: {error}", self.url),
                });
            }
        };
        let elapsed = started.elapsed();
        let scraped_count = scraped.len();
        let mut samples: Vec<Sample> = Vec::with_capacity(scraped_count + 4);
        for scraped_sample in scraped {
            let Some((name, labels)) =
                relabel_sample(&scraped_sample.name, &scraped_sample.labels, &self.rules)
            else {
                continue;
            };
            samples.push(Sample {
                name,
                labels: rename_runner_labels(labels),
                value: scraped_sample.value,
            });
        }
        let kept_count = samples.len();
        samples.push(sample("scrape_up", &[], 1.0));
        samples.push(sample(
            "scrape_duration_seconds",
            &[],
            elapsed.as_secs_f64(),
        ));
        samples.push(sample("scrape_samples_scraped", &[], scraped_count as f64));
        samples.push(sample(
            "scrape_samples_post_relabel",
            &[],
            kept_count as f64,
        ));
        let relabelled = if self.rules.is_empty() {
            String::new()
        } else {
            format!(" ({kept_count} after relabel)")
        };
        CheckOutcome {
            status: CheckStatus::Ok,
            message: truncate_message(
                &format!(
                    "scraped {scraped_count} samples{relabelled} from {} in {}",
                    self.url,
                    format_latency(elapsed)
                ),
                MAX_MESSAGE_BYTES,
            ),
            samples,
        }
    }

    /// GET the exposition body (at most [`MAX_BODY_BYTES`]).
    async fn fetch(&self) -> Result<Vec<u8>, ScrapeFailure> {
        let unreachable = |error: reqwest::Error| ScrapeFailure {
            status: CheckStatus::Critical,
            message: if error.is_timeout() {
                self.timed_out_message()
            } else {
                format!("cannot scrape {}: {}", self.url, error_chain(&error))
            },
        };
        let mut response = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, ACCEPT_TEXT_FORMAT)
            .send()
            .await
            .map_err(unreachable)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(ScrapeFailure {
                status: CheckStatus::Critical,
                message: format!("HTTP {} from {}", response.status(), self.url),
            });
        }
        let too_large = || ScrapeFailure {
            status: CheckStatus::Unknown,
            message: format!(
                "the exposition from {} is larger than {} MiB",
                self.url,
                MAX_BODY_BYTES / (1024 * 1024)
            ),
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn timed_out_message(&self) -> String {
        format!(
            "scrape of {} timed out after {}",
            self.url,
            format_duration(self.timeout)
        )
    }
}

impl Check for PrometheusCheck {
    fn kind(&self) -> &'static str {
        "prometheus"
    }

    fn run(&mut self, _now_ms: i64) -> CheckFuture<'_> {
        Box::pin(self.scrape())
    }
}

fn failed(failure: ScrapeFailure) -> CheckOutcome {
    CheckOutcome {
        status: failure.status,
        message: truncate_message(&failure.message, MAX_MESSAGE_BYTES),
        samples: vec![sample("scrape_up", &[], 0.0)],
    }
}

/// `host` → `exported_host` (and `platform`, `monitor`): those labels belong to the runner.
fn rename_runner_labels(labels: Vec<(String, String)>) -> Vec<(String, String)> {
    labels
        .into_iter()
        .map(|(name, value)| {
            if RUNNER_LABELS.contains(&name.as_str()) {
                (format!("exported_{name}"), value)
            } else {
                (name, value)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
