//! The `tcp` check: connects to a port, optionally sends bytes and expects a substring in the reply.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::net_util::{MAX_MESSAGE_BYTES, format_latency, sample, truncate_message};
use super::options::{
    OptionDuration, config_error, decode_options, format_duration, require_positive_timeout,
};
use super::{Check, CheckConfigError, CheckFuture, CheckOutcome, CheckStatus};

/// Options of a `tcp` monitor.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpOptions {
    /// Host name or IP address to connect to.
    #[serde(default = "default_host")]
    pub host: String,
    /// TCP port to connect to (1..65535).
    pub port: u16,
    /// Time limit for the whole probe: name lookup, connect, send and the expected reply.
    #[serde(default = "default_tcp_timeout")]
    pub timeout: OptionDuration,
    /// Text to write after connecting, e.g. `"QUIT\r\n"` (JSON escapes give control characters).
    #[serde(default)]
    pub send: Option<String>,
    /// Text the reply must contain, e.g. `"220 "` for an SMTP banner; the probe reads until it
    /// appears, the peer closes, 64 KiB arrived or the timeout passes.
    #[serde(default)]
    pub expect: Option<String>,
}

fn default_host() -> String {
    "127.0.0.1".to_owned()
}

fn default_tcp_timeout() -> OptionDuration {
    OptionDuration(Duration::from_secs(10))
}

/// The most reply bytes read while looking for `expect`.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// A configured `tcp` check.
#[derive(Debug, Clone)]
pub struct TcpCheck {
    host: String,
    port: u16,
    timeout: Duration,
    send: Option<String>,
    expect: Option<String>,
}

impl TcpCheck {
    /// Build from a monitor's `options`; errors name the field (`options.port: must not be 0`).
    pub fn from_options(
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<TcpCheck, CheckConfigError> {
        let options: TcpOptions = decode_options(options)?;
        require_positive_timeout(".timeout", options.timeout)?;
        if options.host.trim().is_empty() {
            return Err(config_error(".host", "must not be empty"));
        }
        if options.port == 0 {
            return Err(config_error(".port", "must not be 0"));
        }
        if options.expect.as_deref() == Some("") {
            return Err(config_error(
                ".expect",
                "must not be empty (leave it out to only connect)",
            ));
        }
        Ok(TcpCheck {
            host: options.host,
            port: options.port,
            timeout: options.timeout.get(),
            send: options.send,
            expect: options.expect,
        })
    }

    /// `host:port`, or `[v6]:port`.
    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    async fn probe(&self) -> CheckOutcome {
        let address = self.address();
        let started = Instant::now();
        let connected = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await;
        let mut stream = match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                return down(format!(
                    "TCP CRITICAL - cannot connect to {address}: {error}"
                ));
            }
            Err(_elapsed) => {
                return down(format!(
                    "TCP CRITICAL - timed out after {} connecting to {address}",
                    format_duration(self.timeout)
                ));
            }
        };
        let connect_elapsed = started.elapsed();
        let connect_sample = sample("tcp_connect_seconds", &[], connect_elapsed.as_secs_f64());
        let remaining = self.timeout.saturating_sub(started.elapsed());

        let exchange = tokio::time::timeout(remaining, self.exchange(&mut stream)).await;
        let failure = match exchange {
            Ok(Ok(())) => None,
            Ok(Err(failure)) => Some(failure),
            Err(_elapsed) => Some(match &self.expect {
                Some(expect) => format!(
                    "no {} from {address} within {}",
                    quoted(expect),
                    format_duration(self.timeout)
                ),
                None => format!(
                    "timed out after {} sending to {address}",
                    format_duration(self.timeout)
                ),
            }),
        };
        let (status, up, message) = match failure {
            Some(failure) => (
                CheckStatus::Critical,
                0.0,
                format!("TCP CRITICAL - {failure}"),
            ),
            None => {
                let matched = self
                    .expect
                    .as_deref()
                    .map(|expect| format!(", reply contains {}", quoted(expect)))
                    .unwrap_or_default();
                (
                    CheckStatus::Ok,
                    1.0,
                    format!(
                        "TCP OK - connected to {address} in {}{matched}",
                        format_latency(connect_elapsed)
                    ),
                )
            }
        };
        CheckOutcome {
            status,
            message: truncate_message(&message, MAX_MESSAGE_BYTES),
            samples: vec![sample("tcp_up", &[], up), connect_sample],
        }
    }

    /// Send `send`, then read until `expect` shows up. `Err` is the message of a failed exchange.
    async fn exchange(&self, stream: &mut TcpStream) -> Result<(), String> {
        let address = self.address();
        if let Some(send) = &self.send {
            stream
                .write_all(send.as_bytes())
                .await
                .map_err(|error| format!("cannot send to {address}: {error}"))?;
        }
        let Some(expect) = &self.expect else {
            return Ok(());
        };
        let mut reply = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            if contains(&reply, expect.as_bytes()) {
                return Ok(());
            }
            if reply.len() >= MAX_REPLY_BYTES {
                return Err(format!(
                    "no {} in the first {} KiB from {address}",
                    quoted(expect),
                    MAX_REPLY_BYTES / 1024
                ));
            }
            let read = stream
                .read(&mut buffer)
                .await
                .map_err(|error| format!("cannot read from {address}: {error}"))?;
            if read == 0 {
                return Err(format!(
                    "expected {} from {address}, got {}",
                    quoted(expect),
                    quoted(&String::from_utf8_lossy(&reply))
                ));
            }
            reply.extend_from_slice(buffer.get(..read).unwrap_or_default());
        }
    }
}

impl Check for TcpCheck {
    fn kind(&self) -> &'static str {
        "tcp"
    }

    fn run(&mut self, _now_ms: i64) -> CheckFuture<'_> {
        Box::pin(self.probe())
    }
}

fn down(message: String) -> CheckOutcome {
    CheckOutcome {
        status: CheckStatus::Critical,
        message: truncate_message(&message, MAX_MESSAGE_BYTES),
        samples: vec![sample("tcp_up", &[], 0.0)],
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Debug-quoted and shortened, so control characters in a banner stay on one line.
fn quoted(text: &str) -> String {
    const MAX_CHARS: usize = 120;
    let short: String = text.chars().take(MAX_CHARS).collect();
    let mut quoted = format!("{short:?}");
    if text.chars().count() > MAX_CHARS {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio::net::TcpListener;

    use super::*;
    use crate::check::net_testutil::{closed_port, options, samples_named, single_value};

    async fn run_tcp(options_json: serde_json::Value) -> CheckOutcome {
        let mut check = TcpCheck::from_options(&options(options_json)).unwrap();
        assert_eq!(check.kind(), "tcp");
        check.run(1_700_000_000_000).await
    }

    /// A listener that writes `banner`, then echoes what it receives, once per connection.
    async fn banner_server(banner: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    stream.write_all(banner.as_bytes()).await.unwrap();
                    let mut buffer = [0u8; 1024];
                    while let Ok(read) = stream.read(&mut buffer).await {
                        if read == 0 || stream.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    #[test]
    fn option_errors_name_the_field() {
        let error = TcpCheck::from_options(&options(json!({}))).unwrap_err();
        assert_eq!(error.to_string(), "options: missing field `port`");
        let error = TcpCheck::from_options(&options(json!({"port": 0}))).unwrap_err();
        assert_eq!(error.to_string(), "options.port: must not be 0");
        let error = TcpCheck::from_options(&options(json!({"port": 70000}))).unwrap_err();
        assert_eq!(error.path, ".port");
        let error =
            TcpCheck::from_options(&options(json!({"port": 25, "expect": ""}))).unwrap_err();
        assert_eq!(error.path, ".expect");
        let error =
            TcpCheck::from_options(&options(json!({"port": 25, "timeout": "0ms"}))).unwrap_err();
        assert_eq!(error.path, ".timeout");
        let check = TcpCheck::from_options(&options(json!({"port": 25}))).unwrap();
        assert_eq!(check.host, "127.0.0.1");
        assert_eq!(check.timeout, Duration::from_secs(10));
    }

    #[tokio::test]
    async fn connects_to_a_listening_port() {
        let port = banner_server("220 test ESMTP ready\r\n").await;
        let outcome = run_tcp(json!({"port": port})).await;
        assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
        assert!(
            outcome
                .message
                .starts_with(&format!("TCP OK - connected to 127.0.0.1:{port} in ")),
            "{}",
            outcome.message
        );
        assert_eq!(single_value(&outcome.samples, "tcp_up"), 1.0);
        assert!(single_value(&outcome.samples, "tcp_connect_seconds") >= 0.0);
    }

    #[tokio::test]
    async fn expects_a_banner_and_an_echo() {
        let port = banner_server("220 test ESMTP ready\r\n").await;
        let outcome = run_tcp(json!({"port": port, "expect": "220 "})).await;
        assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
        assert!(
            outcome.message.ends_with(", reply contains \"220 \""),
            "{}",
            outcome.message
        );

        let outcome = run_tcp(json!({"port": port, "send": "PING\r\n", "expect": "PING"})).await;
        assert_eq!(outcome.status, CheckStatus::Ok, "{outcome:?}");
    }

    #[tokio::test]
    async fn a_missing_expected_reply_is_critical() {
        let port = banner_server("500 go away\r\n").await;
        let outcome = run_tcp(json!({"port": port, "expect": "220 ", "timeout": "300ms"})).await;
        assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
        assert_eq!(
            outcome.message,
            format!("TCP CRITICAL - no \"220 \" from 127.0.0.1:{port} within 300ms")
        );
        assert_eq!(single_value(&outcome.samples, "tcp_up"), 0.0);
        assert_eq!(
            samples_named(&outcome.samples, "tcp_connect_seconds").len(),
            1
        );

        // A peer that closes after a wrong banner is reported with what it said.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(b"SSH-2.0-test\r\n").await.unwrap();
        });
        let outcome = run_tcp(json!({"port": port, "expect": "220 "})).await;
        assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
        assert_eq!(
            outcome.message,
            format!(
                "TCP CRITICAL - expected \"220 \" from 127.0.0.1:{port}, got \"SSH-2.0-test\\r\\n\""
            )
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_critical() {
        let port = closed_port().await;
        let outcome = run_tcp(json!({"port": port})).await;
        assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
        assert!(
            outcome.message.starts_with(&format!(
                "TCP CRITICAL - cannot connect to 127.0.0.1:{port}: "
            )),
            "{}",
            outcome.message
        );
        assert!(outcome.message.contains("refused"), "{}", outcome.message);
        assert_eq!(single_value(&outcome.samples, "tcp_up"), 0.0);
        assert!(samples_named(&outcome.samples, "tcp_connect_seconds").is_empty());
    }

    #[tokio::test]
    async fn an_unanswered_connect_times_out() {
        // 192.0.2.0/24 (TEST-NET-1) is never routed, so the connect hangs or fails fast when
        // there is no route at all; both are Critical.
        let outcome = run_tcp(json!({"host": "192.0.2.1", "port": 9, "timeout": "200ms"})).await;
        assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
        assert!(
            outcome.message.contains("192.0.2.1:9"),
            "{}",
            outcome.message
        );
    }
}
