//! Delivering one notification over one channel: email (SMTP), SMS (HTTP gateway) or webhook.
//!
//! I/O and rendering only: which notification goes to whom, when and how often is decided by the
//! server's notifier. Rendering is pure (`render`, `payload`); `deliver` sends once and classifies the
//! failure; `deliver_with_retries` adds capped exponential backoff.
#![forbid(unsafe_code)]

mod config;
mod email;
mod error;
mod http;
mod notification;
mod payload;
mod render;
mod retry;
mod sms;
mod time;
mod webhook;

pub use config::{
    ChannelConfig, DEFAULT_TIMEOUT, HttpMethod, SmsConfig, SmsPreset, SmtpConfig, SmtpSecurity,
    WebhookConfig, WebhookFormat, parse_duration,
};
pub use error::{ChannelKind, ConfigError, DeliveryError};
pub use notification::{Notification, NotificationAlert, NotificationStatus};
pub use payload::{JSON_PAYLOAD_VERSION, alertmanager_payload, json_payload, slack_payload};
pub use render::{SMS_MAX_CHARS, render_sms, render_subject, render_text};
pub use retry::{AttemptRecord, RetryPolicy, backoff, deliver_with_retries};
pub use time::rfc3339_utc;

/// Where a message goes on its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An email address (email channel).
    Email(String),
    /// A phone number, preferably E.164 such as `+442079460958` (SMS channel).
    Phone(String),
    /// The channel's configured URL (webhook channel).
    Webhook,
}

/// Proof of a delivery: what the server or receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The channel kind used.
    pub channel: ChannelKind,
    /// The SMTP reply (`250 2.0.0 OK queued as …`) or the start of the HTTP response body.
    pub response: String,
    /// The provider's id for the message, when it gave one (e.g. Twilio's `sid`).
    pub message_id: Option<String>,
    /// The HTTP status for SMS and webhooks.
    pub http_status: Option<u16>,
}

/// A ready channel built from validated settings; share it (e.g. in an `Arc`): it reuses connections.
#[derive(Debug)]
pub struct Channel {
    inner: ChannelInner,
}

#[derive(Debug)]
enum ChannelInner {
    Email(email::EmailChannel),
    Sms(sms::SmsChannel),
    Webhook(webhook::WebhookChannel),
}

impl Channel {
    /// Validates the settings (URLs, headers, templates, TLS files) and builds the channel.
    pub fn new(config: ChannelConfig) -> Result<Channel, ConfigError> {
        match config {
            ChannelConfig::Email(config) => Channel::email(config),
            ChannelConfig::Sms(config) => Channel::sms(config),
            ChannelConfig::Webhook(config) => Channel::webhook(config),
        }
    }

    /// An email channel.
    pub fn email(config: SmtpConfig) -> Result<Channel, ConfigError> {
        Ok(Channel {
            inner: ChannelInner::Email(email::EmailChannel::new(config)?),
        })
    }

    /// An SMS channel.
    pub fn sms(config: SmsConfig) -> Result<Channel, ConfigError> {
        Ok(Channel {
            inner: ChannelInner::Sms(sms::SmsChannel::new(config)?),
        })
    }

    /// A webhook channel.
    pub fn webhook(config: WebhookConfig) -> Result<Channel, ConfigError> {
        Ok(Channel {
            inner: ChannelInner::Webhook(webhook::WebhookChannel::new(config)?),
        })
    }

    /// Which kind of channel this is.
    pub fn kind(&self) -> ChannelKind {
        match self.inner {
            ChannelInner::Email(_) => ChannelKind::Email,
            ChannelInner::Sms(_) => ChannelKind::Sms,
            ChannelInner::Webhook(_) => ChannelKind::Webhook,
        }
    }
}

/// Sends `notification` once to `to` over `channel`. Must run inside a tokio runtime.
pub async fn deliver(
    channel: &Channel,
    to: &Destination,
    notification: &Notification,
) -> Result<Receipt, DeliveryError> {
    match (&channel.inner, to) {
        (ChannelInner::Email(email), Destination::Email(address)) => {
            email.deliver(address, notification).await
        }
        (ChannelInner::Sms(sms), Destination::Phone(number)) => {
            sms.deliver(number, notification).await
        }
        (ChannelInner::Webhook(webhook), Destination::Webhook) => {
            webhook.deliver(notification).await
        }
        (_, destination) => Err(DeliveryError::InvalidDestination {
            channel: channel.kind(),
            message: format!(
                "a {} channel cannot deliver to {}",
                channel.kind(),
                match destination {
                    Destination::Email(_) => "an email address",
                    Destination::Phone(_) => "a phone number",
                    Destination::Webhook => "a webhook",
                }
            ),
        }),
    }
}
