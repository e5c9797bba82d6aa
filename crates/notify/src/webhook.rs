//! The webhook channel: one JSON POST per delivery, in Cloudkeep's, Slack's or Alertmanager's format.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::Receipt;
use crate::config::{WebhookConfig, WebhookFormat};
use crate::error::{ChannelKind, ConfigError, DeliveryError, Secrets};
use crate::http::{build_client, excerpt, header_map, parse_url, redacted_url, send};
use crate::notification::Notification;
use crate::payload::{alertmanager_payload, json_payload, slack_payload};

/// A validated webhook channel.
pub(crate) struct WebhookChannel {
    client: reqwest::Client,
    url: reqwest::Url,
    format: WebhookFormat,
    headers: HeaderMap,
    target: String,
    timeout: Duration,
    secrets: Secrets,
}

/// Only where it sends: the URL may hold a secret.
impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WebhookChannel")
            .field("target", &self.target)
            .field("format", &self.format)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookChannel {
    pub(crate) fn new(config: WebhookConfig) -> Result<WebhookChannel, ConfigError> {
        let mut secrets = Secrets::default();
        let url = parse_url("url", &config.url)?;
        // Slack-style URLs carry their secret in the path; API keys often ride in the query.
        secrets.add_url(&url);
        secrets.add(config.url.clone());
        let headers = header_map(&config.headers, &mut secrets)?;
        if config.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be more than 0"));
        }
        Ok(WebhookChannel {
            client: build_client(config.timeout)?,
            target: format!("webhook POST {}", redacted_url(&url)),
            url,
            format: config.format,
            headers,
            timeout: config.timeout,
            secrets,
        })
    }

    pub(crate) async fn deliver(
        &self,
        notification: &Notification,
    ) -> Result<Receipt, DeliveryError> {
        let body = match self.format {
            WebhookFormat::Json => json_payload(notification),
            WebhookFormat::Slack => slack_payload(notification),
            WebhookFormat::Alertmanager => alertmanager_payload(notification),
        };
        let request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .json(&body);
        let answer = send(request, &self.target, self.timeout, &self.secrets).await?;
        Ok(Receipt {
            channel: ChannelKind::Webhook,
            response: self.secrets.scrub(&excerpt(&answer.body)),
            message_id: None,
            http_status: Some(answer.status),
        })
    }
}
