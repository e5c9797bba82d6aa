//! Loopback HTTP client helpers (ureq without TLS).

use std::time::Duration;

use anyhow::{Context, Result, bail};

/// An agent that reports HTTP error statuses as responses, with a per-call time limit.
pub fn agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_idle_connections_per_host(8)
        .build();
    ureq::Agent::new_with_config(config)
}

/// GETs `url` with query parameters and parses a 2xx JSON answer.
pub fn get_json(
    agent: &ureq::Agent,
    url: &str,
    query: &[(&str, String)],
    bearer: Option<&str>,
) -> Result<serde_json::Value> {
    let mut req = agent.get(url);
    for (k, v) in query {
        req = req.query(*k, v);
    }
    if let Some(token) = bearer {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let mut resp = req.call().with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .with_context(|| format!("reading the answer of GET {url}"))?;
    if !status.is_success() {
        bail!("GET {url}: HTTP {status}: {}", truncate(&body, 400));
    }
    serde_json::from_str(&body).with_context(|| format!("GET {url}: answer is not JSON"))
}

pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
