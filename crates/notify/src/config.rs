//! Channel settings as the server's TOML file spells them (`deny_unknown_fields`, documented, secrets redacted in Debug).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Default timeout of one delivery: connect plus exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One channel's settings, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelConfig {
    /// Email through an SMTP server.
    Email(SmtpConfig),
    /// SMS through an HTTP gateway.
    Sms(SmsConfig),
    /// An HTTP POST to a webhook receiver.
    Webhook(WebhookConfig),
}

/// How the SMTP session is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (usually port 465).
    Tls,
    /// No encryption at all: only for a relay on the same host or network.
    None,
}

/// Email through an SMTP server.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP server host name (also the name its TLS certificate must carry).
    pub host: String,
    /// SMTP server port; default 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// User for AUTH PLAIN/LOGIN; no authentication when absent.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for AUTH; required with `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// Sender, e.g. `Cloudkeep NOC <noc@example.org>`.
    pub from: String,
    /// Timeout of connecting and of each SMTP command, e.g. `"10s"` (default).
    #[serde(default = "default_timeout", deserialize_with = "deserialize_duration")]
    pub timeout: Duration,
    /// Accept any server certificate. Dangerous: only for a test relay.
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// A PEM file of extra CA certificates to trust besides the system's (a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl SmtpConfig {
    /// The configured port or the usual one for the security mode.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        })
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// An HTTP method a gateway may want.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET` (the message goes in the URL template).
    Get,
    /// `POST` (default).
    #[default]
    Post,
    /// `PUT`.
    Put,
}

impl HttpMethod {
    /// The method name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
        }
    }
}

/// Known SMS providers whose request shape is built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsPreset {
    /// Twilio's Messages API: form POST to `{url}/2010-04-01/Accounts/{account_sid}/Messages.json`.
    Twilio,
}

/// SMS through an HTTP gateway: a preset, or a request described by templates.
///
/// Templates may use `{{to}}`, `{{from}}` and `{{text}}`. In `body_template` they are escaped by
/// `content_type`: JSON-escaped for `…json`, form-encoded for `application/x-www-form-urlencoded`,
/// XML-escaped for `…xml`, verbatim otherwise. In `url` they are percent-encoded.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// A built-in provider; with `twilio`, set `account_sid`, `auth_token` and `from`, and no templates.
    #[serde(default)]
    pub preset: Option<SmsPreset>,
    /// Gateway URL (a template); for `twilio` the API base, e.g. `https://api.twilio.com`.
    pub url: String,
    /// `POST` (default), `PUT` or `GET`.
    #[serde(default)]
    pub method: HttpMethod,
    /// Extra request headers, e.g. an API key.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body template; no body when absent.
    #[serde(default)]
    pub body_template: Option<String>,
    /// Content type of the body; default `application/json`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// User for HTTP basic authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for HTTP basic authentication.
    #[serde(default)]
    pub password: Option<String>,
    /// Twilio account SID (preset `twilio`).
    #[serde(default)]
    pub account_sid: Option<String>,
    /// Twilio auth token (preset `twilio`).
    #[serde(default)]
    pub auth_token: Option<String>,
    /// Sender number or name, the `{{from}}` of templates.
    #[serde(default)]
    pub from: Option<String>,
    /// Timeout of one request, e.g. `"10s"` (default).
    #[serde(default = "default_timeout", deserialize_with = "deserialize_duration")]
    pub timeout: Duration,
}

impl fmt::Debug for SmsConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SmsConfig")
            .field("preset", &self.preset)
            .field("url", &"[redacted]")
            .field("method", &self.method)
            .field("headers", &redacted_header_names(&self.headers))
            .field("body_template", &self.body_template)
            .field("content_type", &self.content_type)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("account_sid", &self.account_sid)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "[redacted]"),
            )
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The body format of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Cloudkeep's own JSON, `cloudkeep.notification.v1` (default).
    #[default]
    Json,
    /// A Slack-compatible incoming webhook (`text` + `blocks`).
    Slack,
    /// Alertmanager's webhook payload, version 4.
    Alertmanager,
}

/// An HTTP POST of the notification to a receiver.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Receiver URL. It may hold a secret (Slack's do): it is never shown in errors or logs.
    pub url: String,
    /// `json` (default), `slack` or `alertmanager`.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Extra request headers, e.g. `Authorization`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Timeout of one request, e.g. `"10s"` (default).
    #[serde(default = "default_timeout", deserialize_with = "deserialize_duration")]
    pub timeout: Duration,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WebhookConfig")
            .field("url", &"[redacted]")
            .field("format", &self.format)
            .field("headers", &redacted_header_names(&self.headers))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Header values often are credentials: Debug shows only the names.
fn redacted_header_names(headers: &BTreeMap<String, String>) -> BTreeMap<&str, &'static str> {
    headers
        .keys()
        .map(|name| (name.as_str(), "[redacted]"))
        .collect()
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

/// A duration as the spec writes it: a whole number and a unit, `500ms`, `10s`, `2m`, `1h`, `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits_end = text
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let invalid = || {
        format!(
            "invalid duration {text:?}: expected a whole number and a unit (ms, s, m, h, d), e.g. \"10s\""
        )
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let milliseconds_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    number
        .checked_mul(milliseconds_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration {text:?} is too long"))
}

fn deserialize_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        channels: BTreeMap<String, ChannelConfig>,
    }

    #[test]
    fn channels_read_from_toml() {
        let text = r#"
[channels.noc-mail]
type = "email"
host = "smtp.example.org"
username = "noc"
password = "hunter2"
from = "Cloudkeep <noc@example.org>"
timeout = "30s"
ca_file = "/etc/cloudkeep/ca.pem"

[channels.pager]
type = "sms"
preset = "twilio"
url = "https://api.twilio.com"
account_sid = "AC123"
auth_token = "tok-8f2e"
from = "+15005550006"

[channels.chat]
type = "webhook"
url = "https://hooks.slack.com/services/T/B/secret"
format = "slack"
headers = { "X-Team" = "noc" }
"#;
        let file: File = toml::from_str(text).unwrap();
        let ChannelConfig::Email(email) = &file.channels["noc-mail"] else {
            panic!("not email: {:?}", file.channels["noc-mail"]);
        };
        assert_eq!(email.security, SmtpSecurity::Starttls);
        assert_eq!(email.effective_port(), 587);
        assert_eq!(email.timeout, Duration::from_secs(30));
        assert!(!email.accept_invalid_certs);
        let debug = format!("{file:?}");
        for secret in ["hunter2", "tok-8f2e", "secret"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        let ChannelConfig::Sms(sms) = &file.channels["pager"] else {
            panic!("not sms");
        };
        assert_eq!(sms.preset, Some(SmsPreset::Twilio));
        assert_eq!(sms.method, HttpMethod::Post);
        assert_eq!(sms.timeout, DEFAULT_TIMEOUT);
        let ChannelConfig::Webhook(webhook) = &file.channels["chat"] else {
            panic!("not webhook");
        };
        assert_eq!(webhook.format, WebhookFormat::Slack);
    }

    #[test]
    fn unknown_fields_and_bad_durations_are_errors() {
        let typo = "type = \"webhook\"\nurl = \"http://x\"\nformt = \"json\"\n";
        let err = toml::from_str::<ChannelConfig>(typo)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `formt`"), "{err}");
        let bad = "type = \"webhook\"\nurl = \"http://x\"\ntimeout = \"10\"\n";
        let err = toml::from_str::<ChannelConfig>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid duration \"10\""), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        for bad in ["", "s", "1.5s", "-1s", "1h30m", "10 s", "10S"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("9999999999999999d").is_err());
    }
}
