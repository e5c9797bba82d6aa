//! HTTP plumbing shared by the SMS and webhook channels: the client, headers, sending, error mapping.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use crate::error::{ConfigError, DeliveryError, Secrets, error_chain, tls_failure};

/// How much of a response body is kept for a receipt or an error.
const BODY_EXCERPT_CHARS: usize = 300;
/// How much of a response body is read at all.
const BODY_READ_LIMIT: usize = 64 * 1024;

/// What a receiver answered with a 2xx status.
#[derive(Debug)]
pub(crate) struct HttpAnswer {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// A client with one timeout for connect plus exchange and no redirects: a notification is POSTed
/// to exactly the configured URL, and credentials never follow a redirect elsewhere.
pub(crate) fn build_client(timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cloudkeep-notify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| {
            ConfigError::new(
                "timeout",
                format!("cannot build the HTTP client: {}", error_chain(&err)),
            )
        })
}

/// Parses a URL setting; the message quotes no part of it (it may hold a secret).
pub(crate) fn parse_url(field: &str, text: &str) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(text)
        .map_err(|err| ConfigError::new(field, format!("invalid URL: {err}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ConfigError::new(
            field,
            format!("scheme {:?} is not http or https", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(field, "URL has no host"));
    }
    Ok(url)
}

/// `https://hooks.slack.com/…`: scheme, host and port only, so errors say where without a secret path or query.
pub(crate) fn redacted_url(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    if url.path() != "/" || url.query().is_some() {
        shown.push_str("/…");
    }
    shown
}

/// Validated extra headers; their values join the channel's secrets.
pub(crate) fn header_map(
    headers: &BTreeMap<String, String>,
    secrets: &mut Secrets,
) -> Result<HeaderMap, ConfigError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let field = format!("headers.{name}");
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError::new(&field, "invalid header name"))?;
        let mut header_value = HeaderValue::from_str(value).map_err(|_| {
            ConfigError::new(
                &field,
                "invalid header value (control characters or non-ASCII)",
            )
        })?;
        header_value.set_sensitive(true);
        secrets.add_header_value(value);
        map.insert(header_name, header_value);
    }
    Ok(map)
}

/// Sends, reads at most 64 KiB of the answer, and turns anything but 2xx into a classified error.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    target: &str,
    timeout: Duration,
    secrets: &Secrets,
) -> Result<HttpAnswer, DeliveryError> {
    let result = send_unscrubbed(request, target, timeout).await;
    result.map_err(|error| secrets.scrub_error(error))
}

async fn send_unscrubbed(
    request: reqwest::RequestBuilder,
    target: &str,
    timeout: Duration,
) -> Result<HttpAnswer, DeliveryError> {
    let mut response = request
        .send()
        .await
        .map_err(|err| transport_error(err, target, timeout))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut body = Vec::new();
    while body.len() < BODY_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            // The status is what matters; a broken body after a 2xx still counts as delivered.
            Err(_) if (200..300).contains(&status) => break,
            Err(err) => return Err(transport_error(err, target, timeout)),
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    if (200..300).contains(&status) {
        return Ok(HttpAnswer { status, body });
    }
    let mut excerpt: String = body.trim().chars().take(BODY_EXCERPT_CHARS).collect();
    if excerpt.is_empty() {
        excerpt = "(empty body)".to_owned();
    }
    if (300..400).contains(&status) {
        excerpt = format!("redirects are not followed; configure the final URL ({excerpt})");
    }
    Err(DeliveryError::HttpStatus {
        target: target.to_owned(),
        status,
        body: excerpt,
        retry_after,
    })
}

/// reqwest's own Display names the URL: drop it, keep the causes.
fn transport_error(err: reqwest::Error, target: &str, timeout: Duration) -> DeliveryError {
    let err = err.without_url();
    if err.is_timeout() {
        return DeliveryError::Unreachable {
            target: target.to_owned(),
            message: format!("timed out after {}", describe_duration(timeout)),
        };
    }
    if let Some(message) = tls_failure(&err) {
        return DeliveryError::Tls {
            target: target.to_owned(),
            message,
        };
    }
    DeliveryError::Unreachable {
        target: target.to_owned(),
        message: error_chain(&err),
    }
}

/// `10s`, `1500ms`: how the settings spell durations.
pub(crate) fn describe_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

/// The first excerpt of a body for a receipt.
pub(crate) fn excerpt(body: &str) -> String {
    body.trim().chars().take(BODY_EXCERPT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_path_or_query() {
        let url = reqwest::Url::parse("https://hooks.slack.com/services/T0/B0/secret").unwrap();
        assert_eq!(redacted_url(&url), "https://hooks.slack.com/…");
        let url = reqwest::Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(redacted_url(&url), "http://127.0.0.1:8080");
        let url = reqwest::Url::parse("http://gw.example.org/?key=k").unwrap();
        assert_eq!(redacted_url(&url), "http://gw.example.org/…");
    }

    #[test]
    fn bad_settings_are_named_without_their_values() {
        let err = parse_url("url", "ftp://x/secret").unwrap_err();
        assert_eq!(err.to_string(), "url: scheme \"ftp\" is not http or https");
        let err = parse_url("url", "not a url secret").unwrap_err();
        assert_eq!(
            err.to_string(),
            "url: invalid URL: relative URL without a base"
        );
        let mut secrets = Secrets::default();
        let headers = BTreeMap::from([("X-Key".to_owned(), "line\nbreak-secret".to_owned())]);
        let err = header_map(&headers, &mut secrets).unwrap_err();
        assert_eq!(
            err.to_string(),
            "headers.X-Key: invalid header value (control characters or non-ASCII)"
        );
        let headers = BTreeMap::from([("Bad Name".to_owned(), "v".to_owned())]);
        assert_eq!(
            header_map(&headers, &mut secrets).unwrap_err().to_string(),
            "headers.Bad Name: invalid header name"
        );
    }

    #[test]
    fn durations_are_described_like_settings() {
        assert_eq!(describe_duration(Duration::from_secs(10)), "10s");
        assert_eq!(describe_duration(Duration::from_millis(1500)), "1500ms");
    }
}
