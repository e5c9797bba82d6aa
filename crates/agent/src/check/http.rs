//! The `http` check: one HTTP(S) request judged by status, body and the server certificate's expiry.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::Deserialize;

use super::net_util::{MAX_MESSAGE_BYTES, error_chain, format_latency, sample, truncate_message};
use super::options::{
    OptionDuration, config_error, decode_options, format_duration, require_positive_timeout,
};
use super::{Check, CheckConfigError, CheckFuture, CheckOutcome, CheckStatus, Sample};

/// Options of an `http` monitor.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpOptions {
    /// The URL to request (`http` or `https`).
    pub url: String,
    /// The request method.
    #[serde(default)]
    pub method: HttpMethod,
    /// Extra request headers, e.g. `{"Authorization": "Bearer ..."}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body (not allowed with `HEAD`).
    #[serde(default)]
    pub body: Option<String>,
    /// The acceptable status code(s): one code or a list; default any 2xx or 3xx.
    #[serde(default)]
    pub expect_status: Option<ExpectedStatus>,
    /// A regular expression the response body (its first MiB) must match (not allowed with `HEAD`).
    #[serde(default)]
    pub body_match: Option<String>,
    /// Time limit for the whole request, body included.
    #[serde(default = "default_http_timeout")]
    pub timeout: OptionDuration,
    /// Follow redirects (at most 10); when false a 3xx response is judged as it is.
    #[serde(default)]
    pub follow_redirects: bool,
    /// Accept any server certificate (self-signed, expired, wrong name); its expiry is still reported.
    #[serde(default)]
    pub tls_skip_verify: bool,
    /// A PEM file of CA certificates trusted in addition to the system's roots (read when the spec loads).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Warning when the server certificate expires within this many days.
    #[serde(default = "default_cert_warning_days")]
    pub cert_warning_days: u32,
    /// Critical when the server certificate expires within this many days.
    #[serde(default = "default_cert_critical_days")]
    pub cert_critical_days: u32,
}

/// The HTTP method of an `http` check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET` (the default).
    #[default]
    Get,
    /// `HEAD`: no body is read.
    Head,
    /// `POST`, usually with `body`.
    Post,
}

/// One acceptable status code or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ExpectedStatus {
    /// A single code, e.g. `200`.
    One(u16),
    /// Several codes, e.g. `[200, 204]`.
    Many(Vec<u16>),
}

fn default_http_timeout() -> OptionDuration {
    OptionDuration(Duration::from_secs(10))
}

fn default_cert_warning_days() -> u32 {
    21
}

fn default_cert_critical_days() -> u32 {
    7
}

/// The most body bytes matched against `body_match`.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Redirects followed when `follow_redirects` is on.
const MAX_REDIRECTS: usize = 10;
const MILLIS_PER_DAY: f64 = 86_400_000.0;

/// A configured `http` check.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    client: reqwest::Client,
    url: reqwest::Url,
    method: HttpMethod,
    headers: HeaderMap,
    body: Option<String>,
    expected_statuses: Option<Vec<u16>>,
    body_match: Option<regex::Regex>,
    timeout: Duration,
    cert_warning_days: u32,
    cert_critical_days: u32,
}

impl HttpCheck {
    /// Build from a monitor's `options`; errors name the field (`options.url: invalid URL "x": ...`).
    pub fn from_options(
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<HttpCheck, CheckConfigError> {
        let options: HttpOptions = decode_options(options)?;
        require_positive_timeout(".timeout", options.timeout)?;
        let url = parse_http_url(".url", &options.url)?;

        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|error| {
                config_error(
                    &format!(".headers.{name}"),
                    format!("invalid header name: {error}"),
                )
            })?;
            let header_value = HeaderValue::from_str(value).map_err(|error| {
                config_error(
                    &format!(".headers.{name}"),
                    format!("invalid header value: {error}"),
                )
            })?;
            headers.insert(header_name, header_value);
        }

        if options.method == HttpMethod::Head {
            if options.body.is_some() {
                return Err(config_error(".body", "not allowed with method HEAD"));
            }
            if options.body_match.is_some() {
                return Err(config_error(
                    ".body_match",
                    "not allowed with method HEAD (a HEAD response has no body)",
                ));
            }
        }

        let expected_statuses = match options.expect_status {
            None => None,
            Some(ExpectedStatus::One(code)) => Some(vec![code]),
            Some(ExpectedStatus::Many(codes)) if codes.is_empty() => {
                return Err(config_error(
                    ".expect_status",
                    "must not be an empty list (leave it out to accept any 2xx or 3xx)",
                ));
            }
            Some(ExpectedStatus::Many(codes)) => Some(codes),
        };
        if let Some(bad) = expected_statuses
            .iter()
            .flatten()
            .find(|code| !(100..=599).contains(*code))
        {
            return Err(config_error(
                ".expect_status",
                format!("{bad} is not an HTTP status code (100..599)"),
            ));
        }

        let body_match = options
            .body_match
            .as_deref()
            .map(|pattern| {
                regex::Regex::new(pattern).map_err(|error| {
                    config_error(
                        ".body_match",
                        format!("invalid regex \"{pattern}\": {error}"),
                    )
                })
            })
            .transpose()?;

        if options.cert_critical_days > options.cert_warning_days {
            return Err(config_error(
                ".cert_critical_days",
                format!(
                    "must not exceed cert_warning_days ({} > {})",
                    options.cert_critical_days, options.cert_warning_days
                ),
            ));
        }

        let mut builder = reqwest::Client::builder()
            // Probes go straight to the target: an agent's HTTP(S)_PROXY variables would
            // otherwise silently route health checks of local services through a proxy.
            .no_proxy()
            .timeout(options.timeout.get())
            .redirect(if options.follow_redirects {
                reqwest::redirect::Policy::limited(MAX_REDIRECTS)
            } else {
                reqwest::redirect::Policy::none()
            })
            .tls_info(true)
            .tls_danger_accept_invalid_certs(options.tls_skip_verify)
            .user_agent(concat!("cloudkeep-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = &options.ca_file {
            builder = builder.tls_certs_merge(read_ca_file(ca_file)?);
        }
        let client = builder.build().map_err(|error| {
            config_error(
                "",
                format!("cannot set up the HTTP client: {}", error_chain(&error)),
            )
        })?;

        Ok(HttpCheck {
            client,
            url,
            method: options.method,
            headers,
            body: options.body,
            expected_statuses,
            body_match,
            timeout: options.timeout.get(),
            cert_warning_days: options.cert_warning_days,
            cert_critical_days: options.cert_critical_days,
        })
    }

    async fn probe(&self, now_ms: i64) -> CheckOutcome {
        let method = match self.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Head => reqwest::Method::HEAD,
            HttpMethod::Post => reqwest::Method::POST,
        };
        let mut request = self
            .client
            .request(method.clone(), self.url.clone())
            .headers(self.headers.clone());
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let started = Instant::now();
        let exchanged = tokio::time::timeout(self.timeout, self.exchange(request)).await;
        let elapsed = started.elapsed();
        let mut samples = vec![sample("http_duration_seconds", &[], elapsed.as_secs_f64())];
        let target = format!("{method} {}", self.url);

        let exchange = match exchanged {
            Ok(Ok(exchange)) => exchange,
            Ok(Err(error)) if !error.is_timeout() => {
                samples.push(sample("http_up", &[], 0.0));
                return CheckOutcome {
                    status: CheckStatus::Critical,
                    message: truncate_message(
                        &format!("HTTP CRITICAL - {target} failed: {}", error_chain(&error)),
                        MAX_MESSAGE_BYTES,
                    ),
                    samples,
                };
            }
            Ok(Err(_)) | Err(_) => {
                samples.push(sample("http_up", &[], 0.0));
                return CheckOutcome {
                    status: CheckStatus::Critical,
                    message: truncate_message(
                        &format!(
                            "HTTP CRITICAL - {target} timed out after {}",
                            format_duration(self.timeout)
                        ),
                        MAX_MESSAGE_BYTES,
                    ),
                    samples,
                };
            }
        };

        let mut judgement = Judgement::default();
        let code = exchange.status.as_u16();
        samples.push(sample("http_status_code", &[], f64::from(code)));
        let status_expected = match &self.expected_statuses {
            Some(codes) => codes.contains(&code),
            None => (200..400).contains(&code),
        };
        if !status_expected {
            judgement.add(
                CheckStatus::Critical,
                format!("expected status {}", self.expected_statuses_text()),
            );
        }
        let mut body_matched = true;
        if let (Some(pattern), Some(body)) = (&self.body_match, &exchange.body) {
            body_matched = pattern.is_match(body);
            samples.push(sample(
                "http_body_match",
                &[],
                if body_matched { 1.0 } else { 0.0 },
            ));
            if !body_matched {
                judgement.add(
                    CheckStatus::Critical,
                    format!("body does not match /{}/", pattern.as_str()),
                );
            }
        }
        samples.push(sample(
            "http_up",
            &[],
            if status_expected && body_matched {
                1.0
            } else {
                0.0
            },
        ));
        if let Some(certificate) = &exchange.peer_certificate {
            self.judge_certificate(certificate, now_ms, &mut judgement, &mut samples);
        }

        let status = judgement.status;
        let mut message = format!(
            "HTTP {} - {} from {} in {}",
            status_word(status),
            exchange.status,
            exchange.final_url,
            format_latency(elapsed)
        );
        for problem in &judgement.problems {
            message.push_str("; ");
            message.push_str(problem);
        }
        CheckOutcome {
            status,
            message: truncate_message(&message, MAX_MESSAGE_BYTES),
            samples,
        }
    }

    /// Send the request; read the body (its first MiB) only when a pattern needs it.
    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Exchange, reqwest::Error> {
        let mut response = request.send().await?;
        let status = response.status();
        let final_url = response.url().clone();
        let peer_certificate = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .map(<[u8]>::to_vec);
        let body = if self.body_match.is_some() {
            let mut body = Vec::new();
            while body.len() < MAX_BODY_BYTES {
                match response.chunk().await? {
                    Some(chunk) => {
                        let room = MAX_BODY_BYTES - body.len();
                        body.extend_from_slice(
                            chunk.get(..chunk.len().min(room)).unwrap_or_default(),
                        );
                    }
                    None => break,
                }
            }
            Some(String::from_utf8_lossy(&body).into_owned())
        } else {
            None
        };
        Ok(Exchange {
            status,
            final_url,
            peer_certificate,
            body,
        })
    }

    fn judge_certificate(
        &self,
        certificate_der: &[u8],
        now_ms: i64,
        judgement: &mut Judgement,
        samples: &mut Vec<Sample>,
    ) {
        let not_after_seconds = match x509_parser::parse_x509_certificate(certificate_der) {
            Ok((_, certificate)) => certificate.validity().not_after.timestamp(),
            Err(error) => {
                judgement.add(
                    CheckStatus::Unknown,
                    format!("cannot read the server certificate: {error}"),
                );
                return;
            }
        };
        let days_left = (not_after_seconds
            .saturating_mul(1000)
            .saturating_sub(now_ms)) as f64
            / MILLIS_PER_DAY;
        samples.push(sample("http_tls_cert_expiry_days", &[], days_left));
        let description = if days_left < 0.0 {
            format!("certificate expired {:.1} days ago", -days_left)
        } else {
            format!("certificate expires in {days_left:.1} days")
        };
        if days_left <= f64::from(self.cert_critical_days) {
            judgement.add(CheckStatus::Critical, description);
        } else if days_left <= f64::from(self.cert_warning_days) {
            judgement.add(CheckStatus::Warning, description);
        }
    }

    fn expected_statuses_text(&self) -> String {
        match &self.expected_statuses {
            None => "2xx or 3xx".to_owned(),
            Some(codes) => codes
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }
}

impl Check for HttpCheck {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn run(&mut self, now_ms: i64) -> CheckFuture<'_> {
        Box::pin(self.probe(now_ms))
    }
}

/// What one request brought back.
struct Exchange {
    status: reqwest::StatusCode,
    final_url: reqwest::Url,
    peer_certificate: Option<Vec<u8>>,
    body: Option<String>,
}

/// The worst status seen so far and the problems that explain it.
struct Judgement {
    status: CheckStatus,
    problems: Vec<String>,
}

impl Default for Judgement {
    fn default() -> Self {
        Self {
            status: CheckStatus::Ok,
            problems: Vec::new(),
        }
    }
}

impl Judgement {
    fn add(&mut self, status: CheckStatus, problem: String) {
        if severity(status) > severity(self.status) {
            self.status = status;
        }
        self.problems.push(problem);
    }
}

/// Ok < Warning < Unknown < Critical: a known outage outranks not knowing.
fn severity(status: CheckStatus) -> u8 {
    match status {
        CheckStatus::Ok => 0,
        CheckStatus::Warning => 1,
        CheckStatus::Unknown => 2,
        CheckStatus::Critical => 3,
    }
}

fn status_word(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Ok => "OK",
        CheckStatus::Warning => "WARNING",
        CheckStatus::Critical => "CRITICAL",
        CheckStatus::Unknown => "UNKNOWN",
    }
}

/// Parse an `http`/`https` URL with a host; errors are reported at `path`.
pub(crate) fn parse_http_url(path: &str, text: &str) -> Result<reqwest::Url, CheckConfigError> {
    let url = reqwest::Url::parse(text)
        .map_err(|error| config_error(path, format!("invalid URL \"{text}\": {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error(
            path,
            format!("invalid URL \"{text}\": the scheme must be http or https"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(config_error(
            path,
            format!("invalid URL \"{text}\": no host"),
        ));
    }
    Ok(url)
}

/// The certificates of a PEM CA bundle, read when the spec loads.
fn read_ca_file(path: &str) -> Result<Vec<reqwest::Certificate>, CheckConfigError> {
    let pem = std::fs::read(path)
        .map_err(|error| config_error(".ca_file", format!("cannot read \"{path}\": {error}")))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
        config_error(
            ".ca_file",
            format!("invalid PEM in \"{path}\": {}", error_chain(&error)),
        )
    })?;
    if certificates.is_empty() {
        return Err(config_error(
            ".ca_file",
            format!("no certificate in \"{path}\""),
        ));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests;
