//! The `[notify]` section of the server's configuration: channels (SMTP, SMS gateway, webhooks), contacts,
//! groups and routes, validated together so that every contact can be reached on every channel it names.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cloudkeep_alerting::policy_config::{
    NotifyPolicy, RawContact, RawGroup, RawNotifyConfig, RawRoute,
};
use cloudkeep_notify::{RetryPolicy, SmsConfig, SmtpConfig, WebhookConfig, WebhookFormat};
use serde::Deserialize;

/// `[notify]` as the file spells it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifySection {
    /// `[notify.email]`: the SMTP server that sends every email notification.
    pub email: Option<SmtpConfig>,
    /// `[notify.sms]`: the HTTP SMS gateway that sends every SMS notification.
    pub sms: Option<SmsConfig>,
    /// `[[notify.webhooks]]`: named webhook receivers that contacts refer to.
    #[serde(default)]
    pub webhooks: Vec<RawNamedWebhook>,
    /// `[[notify.contacts]]`: people, mailboxes and pagers.
    #[serde(default)]
    pub contacts: Vec<RawContact>,
    /// `[[notify.groups]]`: named sets of contacts with optional escalation.
    #[serde(default)]
    pub groups: Vec<RawGroup>,
    /// `[[notify.routes]]`: who gets which alert; the first match wins unless it says `continue`.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Base URL of the dashboard, put in every notification as a link, e.g. `https://noc.example.net`.
    pub dashboard_url: Option<String>,
    /// Attempts per delivery, the first included (default 5, waits 1 s, 2 s, 4 s, 8 s; at most 10).
    pub retry_attempts: Option<u32>,
}

/// One `[[notify.webhooks]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNamedWebhook {
    /// Unique name that contacts' `webhooks` refer to, e.g. `slack-noc`.
    pub name: String,
    /// Receiver URL; it may hold a secret and is never logged.
    pub url: String,
    /// `json` (default, Cloudkeep's own), `slack` or `alertmanager`.
    #[serde(default)]
    pub format: Option<String>,
    /// Extra request headers, e.g. `Authorization`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Timeout of one request, e.g. `"10s"` (default).
    pub timeout: Option<String>,
}

/// The validated `[notify]` section.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub policy: Arc<NotifyPolicy>,
    pub email: Option<SmtpConfig>,
    pub sms: Option<SmsConfig>,
    pub webhooks: BTreeMap<String, WebhookConfig>,
    pub retry: RetryPolicy,
    pub dashboard_url: Option<String>,
}

/// Most attempts per delivery: beyond this a failing channel only delays the notifications behind it.
const MAX_RETRY_ATTEMPTS: u32 = 10;

impl RawNotifySection {
    /// Validates the section, reporting every problem at once, each prefixed with its path.
    pub fn validate(self) -> Result<NotifyConfig, Vec<String>> {
        let mut problems = Vec::new();
        let mut webhooks = BTreeMap::new();
        for (index, raw) in self.webhooks.into_iter().enumerate() {
            let path = format!("notify.webhooks[{index}]");
            if raw.name.is_empty() {
                problems.push(format!("{path}.name: must not be empty"));
                continue;
            }
            let format = match raw.format.as_deref() {
                None | Some("json") => WebhookFormat::Json,
                Some("slack") => WebhookFormat::Slack,
                Some("alertmanager") => WebhookFormat::Alertmanager,
                Some(other) => {
                    problems.push(format!(
                        "{path}.format: {other:?} is not one of json, slack, alertmanager"
                    ));
                    continue;
                }
            };
            let timeout = match raw.timeout.as_deref().map(cloudkeep_notify::parse_duration) {
                None => cloudkeep_notify::DEFAULT_TIMEOUT,
                Some(Ok(timeout)) if !timeout.is_zero() => timeout,
                Some(Ok(_)) => {
                    problems.push(format!("{path}.timeout: must be more than 0"));
                    continue;
                }
                Some(Err(err)) => {
                    problems.push(format!("{path}.timeout: {err}"));
                    continue;
                }
            };
            if webhooks.contains_key(&raw.name) {
                problems.push(format!("{path}.name: {:?} is used twice", raw.name));
                continue;
            }
            webhooks.insert(
                raw.name,
                WebhookConfig {
                    url: raw.url,
                    format,
                    headers: raw.headers,
                    timeout,
                },
            );
        }
        for (index, contact) in self.contacts.iter().enumerate() {
            if contact.email.is_some() && self.email.is_none() {
                problems.push(format!(
                    "notify.contacts[{index}].email: contact {:?} has an email address but no [notify.email] SMTP server is configured",
                    contact.name
                ));
            }
            if contact.phone.is_some() && self.sms.is_none() {
                problems.push(format!(
                    "notify.contacts[{index}].phone: contact {:?} has a phone number but no [notify.sms] gateway is configured",
                    contact.name
                ));
            }
        }
        let raw_policy: RawNotifyConfig = RawNotifyConfig {
            contacts: self.contacts,
            groups: self.groups,
            routes: self.routes,
            webhooks: Vec::new(),
        };
        let names: Vec<&str> = webhooks.keys().map(String::as_str).collect();
        let policy = match raw_policy.validate(&names) {
            Ok(policy) => Some(policy),
            Err(errors) => {
                problems.extend(errors.0.iter().map(ToString::to_string));
                None
            }
        };
        let attempts = self
            .retry_attempts
            .unwrap_or(RetryPolicy::default().attempts);
        if attempts == 0 || attempts > MAX_RETRY_ATTEMPTS {
            problems.push(format!(
                "notify.retry_attempts: {attempts} is not between 1 and {MAX_RETRY_ATTEMPTS}"
            ));
        }
        if let Some(url) = &self.dashboard_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            problems.push(format!(
                "notify.dashboard_url: {url:?} is not an http:// or https:// URL"
            ));
        }
        match policy {
            Some(policy) if problems.is_empty() => Ok(NotifyConfig {
                policy: Arc::new(policy),
                email: self.email,
                sms: self.sms,
                webhooks,
                retry: RetryPolicy {
                    attempts,
                    ..RetryPolicy::default()
                },
                dashboard_url: self
                    .dashboard_url
                    .map(|url| url.trim_end_matches('/').to_owned()),
            }),
            _ => Err(problems),
        }
    }
}

impl NotifyConfig {
    /// The same config with retries waiting `backoff` at most (tests and benchmarks).
    pub fn with_max_backoff(mut self, backoff: Duration) -> NotifyConfig {
        self.retry.initial_backoff = self.retry.initial_backoff.min(backoff);
        self.retry.max_backoff = backoff;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NotifyConfig, Vec<String>> {
        #[derive(Deserialize)]
        struct File {
            notify: RawNotifySection,
        }
        let file: File = toml::from_str(text).map_err(|err| vec![err.to_string()])?;
        file.notify.validate()
    }

    #[test]
    fn full_section_is_read() {
        let config = parse(
            r#"
[notify]
dashboard_url = "https://noc.example.net/"
retry_attempts = 3
[notify.email]
host = "smtp.example.net"
from = "Cloudkeep <noc@example.net>"
[notify.sms]
url = "https://sms.example.net/send"
body_template = '{"to":"{{to}}","text":"{{text}}"}'
[[notify.webhooks]]
name = "slack-noc"
url = "https://hooks.example.net/T000"
format = "slack"
[[notify.contacts]]
name = "alice"
email = "alice@example.net"
phone = "+441234567890"
webhooks = ["slack-noc"]
[[notify.groups]]
name = "noc"
members = ["alice"]
[[notify.routes]]
to = ["noc"]
"#,
        )
        .unwrap();
        assert_eq!(config.retry.attempts, 3);
        assert_eq!(
            config.dashboard_url.as_deref(),
            Some("https://noc.example.net")
        );
        assert_eq!(config.webhooks["slack-noc"].format, WebhookFormat::Slack);
        assert!(config.policy.contact("alice").is_some());
        assert!(config.email.is_some() && config.sms.is_some());
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let problems = parse(
            r#"
[notify]
retry_attempts = 0
[[notify.webhooks]]
name = "hook"
url = "https://hooks.example.net/x"
format = "teams"
[[notify.contacts]]
name = "bob"
email = "bob@example.net"
phone = "+441234567890"
webhooks = ["missing"]
[[notify.routes]]
to = ["carol"]
"#,
        )
        .unwrap_err();
        let text = problems.join("\n");
        for expected in [
            "notify.webhooks[0].format: \"teams\"",
            "notify.contacts[0].email: contact \"bob\" has an email address but no [notify.email]",
            "notify.contacts[0].phone",
            "notify.retry_attempts: 0",
            "\"carol\"",
            "\"missing\"",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn an_empty_section_notifies_nobody() {
        let config = RawNotifySection::default().validate().unwrap();
        assert_eq!(config.policy.contacts().count(), 0);
        assert!(config.webhooks.is_empty());
    }
}
