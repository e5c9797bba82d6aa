//! Errors of building a channel and of delivering one message, with their retry classification.

use std::fmt;
use std::time::Duration;

/// Which kind of channel a message went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// SMTP email.
    Email,
    /// SMS through an HTTP gateway.
    Sms,
    /// HTTP webhook.
    Webhook,
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
            ChannelKind::Webhook => "webhook",
        })
    }
}

/// A channel's settings cannot work; found when the channel is built, before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The offending setting, e.g. `ca_file` or `headers.Authorization`.
    pub field: String,
    /// What is wrong with it (never its secret value).
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why one message was not delivered. Messages never carry passwords, tokens, header values or URL paths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The destination does not suit the channel or is malformed; retrying cannot help.
    #[error("{channel}: invalid destination: {message}")]
    InvalidDestination {
        /// The channel that was asked.
        channel: ChannelKind,
        /// What is wrong with the destination.
        message: String,
    },
    /// The message could not be built from the notification and the settings.
    #[error("{target}: cannot build the message: {message}")]
    Build {
        /// Where it would have gone, e.g. `smtp mail.example.org:587`.
        target: String,
        /// What failed.
        message: String,
    },
    /// No usable connection: refused, reset, name not resolved, or timed out. Retryable.
    #[error("{target}: {message}")]
    Unreachable {
        /// Where it was going.
        target: String,
        /// What failed.
        message: String,
    },
    /// TLS failed: an untrusted or mismatched certificate, or no common protocol. A settings problem.
    #[error("{target}: tls failed: {message}")]
    Tls {
        /// Where it was going.
        target: String,
        /// What the TLS library said.
        message: String,
    },
    /// The SMTP server refused with a reply code: 4xx is temporary, 5xx permanent.
    #[error("{target}: server replied {code}: {message}")]
    SmtpReply {
        /// Where it was going.
        target: String,
        /// The SMTP reply code, e.g. 451 or 535.
        code: u16,
        /// The server's text (with a hint for authentication failures).
        message: String,
    },
    /// The SMTP server or client broke the protocol (unparsable reply, internal error).
    #[error("{target}: {message}")]
    Protocol {
        /// Where it was going.
        target: String,
        /// What failed.
        message: String,
    },
    /// The HTTP receiver answered with a status other than 2xx.
    #[error("{target}: HTTP {status}: {body}")]
    HttpStatus {
        /// Where it was going, e.g. `webhook POST https://hooks.slack.com/…`.
        target: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
        /// The receiver's `Retry-After`, when it sent one in seconds.
        retry_after: Option<Duration>,
    },
}

impl DeliveryError {
    /// Whether the same message may succeed later: connection problems and timeouts, SMTP 4xx,
    /// HTTP 5xx, 408 and 429. Invalid destinations, TLS failures, SMTP 5xx and other HTTP 4xx are final.
    pub fn retryable(&self) -> bool {
        match self {
            DeliveryError::Unreachable { .. } => true,
            DeliveryError::SmtpReply { code, .. } => (400..500).contains(code),
            DeliveryError::HttpStatus { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            DeliveryError::InvalidDestination { .. }
            | DeliveryError::Build { .. }
            | DeliveryError::Tls { .. }
            | DeliveryError::Protocol { .. } => false,
        }
    }

    /// How long the receiver asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::HttpStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The secret strings of one channel, scrubbed from every text that could reach an error or a log.
#[derive(Clone, Default)]
pub(crate) struct Secrets(Vec<String>);

impl fmt::Debug for Secrets {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Secrets({} redacted)", self.0.len())
    }
}

impl Secrets {
    pub(crate) fn add(&mut self, secret: impl Into<String>) {
        let secret = secret.into();
        if !secret.is_empty() && !self.0.contains(&secret) {
            self.0.push(secret);
            // Longest first, so a secret that contains another is replaced whole.
            self.0.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        }
    }

    /// A header value, and its credential alone when it has a scheme (`Bearer xyz` → `xyz` too).
    pub(crate) fn add_header_value(&mut self, value: &str) {
        self.add(value);
        if let Some((_, credential)) = value.trim().rsplit_once(' ') {
            self.add(credential);
        }
    }

    /// HTTP basic credentials: the password and the `user:password` token as it goes on the wire.
    pub(crate) fn add_basic_auth(&mut self, username: &str, password: &str) {
        self.add(password);
        self.add(base64(format!("{username}:{password}").as_bytes()));
    }

    /// The parts of a URL that may carry a credential: the path and its long segments (Slack-style
    /// tokens), the query and its longer values (API keys).
    pub(crate) fn add_url(&mut self, url: &reqwest::Url) {
        if url.path() != "/" {
            self.add(url.path());
            for segment in url.path().split('/').filter(|segment| segment.len() >= 12) {
                self.add(segment);
            }
        }
        if let Some(query) = url.query() {
            self.add(query);
            for (_, value) in url.query_pairs() {
                if value.len() >= 6 {
                    self.add(value.into_owned());
                }
            }
        }
    }

    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut scrubbed = text.to_owned();
        for secret in &self.0 {
            if scrubbed.contains(secret.as_str()) {
                scrubbed = scrubbed.replace(secret.as_str(), "[redacted]");
            }
        }
        scrubbed
    }

    /// The same error with every free-text field scrubbed.
    pub(crate) fn scrub_error(&self, error: DeliveryError) -> DeliveryError {
        match error {
            DeliveryError::InvalidDestination { channel, message } => {
                DeliveryError::InvalidDestination {
                    channel,
                    message: self.scrub(&message),
                }
            }
            DeliveryError::Build { target, message } => DeliveryError::Build {
                target: self.scrub(&target),
                message: self.scrub(&message),
            },
            DeliveryError::Unreachable { target, message } => DeliveryError::Unreachable {
                target: self.scrub(&target),
                message: self.scrub(&message),
            },
            DeliveryError::Tls { target, message } => DeliveryError::Tls {
                target: self.scrub(&target),
                message: self.scrub(&message),
            },
            DeliveryError::SmtpReply {
                target,
                code,
                message,
            } => DeliveryError::SmtpReply {
                target: self.scrub(&target),
                code,
                message: self.scrub(&message),
            },
            DeliveryError::Protocol { target, message } => DeliveryError::Protocol {
                target: self.scrub(&target),
                message: self.scrub(&message),
            },
            DeliveryError::HttpStatus {
                target,
                status,
                body,
                retry_after,
            } => DeliveryError::HttpStatus {
                target: self.scrub(&target),
                status,
                body: self.scrub(&body),
                retry_after,
            },
        }
    }
}

/// Standard base64 with padding (RFC 4648), only to recognise basic-auth tokens.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let symbol = |index: u32| char::from(ALPHABET[(index & 63) as usize]);
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let [first, second, third] = [0, 1, 2].map(|index| chunk.get(index).copied().unwrap_or(0));
        let triple = u32::from(first) << 16 | u32::from(second) << 8 | u32::from(third);
        encoded.push(symbol(triple >> 18));
        encoded.push(symbol(triple >> 12));
        encoded.push(if chunk.len() > 1 {
            symbol(triple >> 6)
        } else {
            '='
        });
        encoded.push(if chunk.len() > 2 { symbol(triple) } else { '=' });
    }
    encoded
}

/// `outer: inner: innermost`, the whole source chain of an error on one line.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some libraries repeat their source in their own message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The rustls error somewhere in the chain, as text. io::Errors nest (an `Other` wrapping an
/// `InvalidData` wrapping the rustls error) and their `source()` skips the wrapped error, so each
/// io::Error is opened with `get_ref()`.
pub(crate) fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        current = match cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16) -> DeliveryError {
        DeliveryError::HttpStatus {
            target: "webhook POST http://x/…".into(),
            status,
            body: String::new(),
            retry_after: None,
        }
    }

    fn smtp(code: u16) -> DeliveryError {
        DeliveryError::SmtpReply {
            target: "smtp x:25".into(),
            code,
            message: String::new(),
        }
    }

    #[test]
    fn retry_classification() {
        for status in [500, 502, 503, 504, 408, 429] {
            assert!(http(status).retryable(), "{status}");
        }
        for status in [400, 401, 403, 404, 410, 422, 301] {
            assert!(!http(status).retryable(), "{status}");
        }
        assert!(smtp(421).retryable());
        assert!(smtp(451).retryable());
        assert!(!smtp(535).retryable());
        assert!(!smtp(550).retryable());
        assert!(
            DeliveryError::Unreachable {
                target: "t".into(),
                message: "m".into()
            }
            .retryable()
        );
        assert!(
            !DeliveryError::Tls {
                target: "t".into(),
                message: "m".into()
            }
            .retryable()
        );
    }

    #[test]
    fn basic_auth_tokens_are_secrets() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"AC0123:secret-token-42"),
            "QUMwMTIzOnNlY3JldC10b2tlbi00Mg=="
        );
        let mut secrets = Secrets::default();
        secrets.add_basic_auth("u", "p4ss");
        assert_eq!(
            secrets.scrub("Basic dTpwNHNz p4ss"),
            "Basic [redacted] [redacted]"
        );
    }

    #[test]
    fn secrets_are_scrubbed_longest_first() {
        let mut secrets = Secrets::default();
        secrets.add("abc");
        secrets.add("abcdef");
        secrets.add("");
        assert_eq!(secrets.scrub("x abcdef y abc"), "x [redacted] y [redacted]");
        let error = secrets.scrub_error(DeliveryError::HttpStatus {
            target: "t".into(),
            status: 401,
            body: "bad token abcdef".into(),
            retry_after: None,
        });
        assert_eq!(error.to_string(), "t: HTTP 401: bad token [redacted]");
        assert_eq!(format!("{secrets:?}"), "Secrets(2 redacted)");
    }
}
