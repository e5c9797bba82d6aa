//! The email channel: one plain-text message per delivery through an SMTP server (lettre, rustls on aws-lc-rs).

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, Tls, TlsParameters, TlsParametersBuilder,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::Receipt;
use crate::config::{SmtpConfig, SmtpSecurity};
use crate::error::{ChannelKind, ConfigError, DeliveryError, Secrets, error_chain, tls_failure};
use crate::http::describe_duration;
use crate::notification::Notification;
use crate::render::{render_subject, render_text};

/// SMTP reply codes that mean the credentials were refused (RFC 4954).
const AUTHENTICATION_CODES: [u16; 4] = [530, 534, 535, 538];

/// A validated SMTP channel. The pooled transport is built on first use, inside the caller's runtime
/// (lettre's pool spawns its cleanup task there).
pub(crate) struct EmailChannel {
    config: SmtpConfig,
    target: String,
    from: Mailbox,
    tls: Option<TlsParameters>,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    secrets: Secrets,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EmailChannel")
            .field("config", &self.config)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    pub(crate) fn new(config: SmtpConfig) -> Result<EmailChannel, ConfigError> {
        if config.host.trim().is_empty() {
            return Err(ConfigError::new("host", "must not be empty"));
        }
        let from: Mailbox = config.from.parse().map_err(|err| {
            ConfigError::new("from", format!("{:?} is not a mailbox: {err}", config.from))
        })?;
        match (&config.username, &config.password) {
            (Some(_), None) => return Err(ConfigError::new("password", "required with username")),
            (None, Some(_)) => return Err(ConfigError::new("username", "required with password")),
            _ => {}
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be more than 0"));
        }
        let tls = match config.security {
            SmtpSecurity::None => None,
            SmtpSecurity::Starttls | SmtpSecurity::Tls => Some(tls_parameters(&config)?),
        };
        let mut secrets = Secrets::default();
        if let Some(password) = &config.password {
            secrets.add(password.clone());
        }
        Ok(EmailChannel {
            target: format!("smtp {}:{}", config.host, config.effective_port()),
            config,
            from,
            tls,
            transport: OnceLock::new(),
            secrets,
        })
    }

    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.transport.get_or_init(|| {
            let tls = match (&self.tls, self.config.security) {
                (Some(parameters), SmtpSecurity::Starttls) => Tls::Required(parameters.clone()),
                (Some(parameters), SmtpSecurity::Tls) => Tls::Wrapper(parameters.clone()),
                _ => Tls::None,
            };
            let mut builder =
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.config.host.as_str())
                    .port(self.config.effective_port())
                    .tls(tls)
                    .timeout(Some(self.config.timeout))
                    .pool_config(PoolConfig::new().max_size(4));
            if let (Some(username), Some(password)) = (&self.config.username, &self.config.password)
            {
                builder = builder
                    .credentials(Credentials::new(username.clone(), password.clone()))
                    .authentication(vec![Mechanism::Plain, Mechanism::Login]);
            }
            builder.build()
        })
    }

    pub(crate) async fn deliver(
        &self,
        address: &str,
        notification: &Notification,
    ) -> Result<Receipt, DeliveryError> {
        let message = self.build_message(address, notification)?;
        let response = match self.config.security {
            SmtpSecurity::Tls => self
                .transport()
                .send(message)
                .await
                .map_err(|err| self.secrets.scrub_error(self.smtp_error(&err)))?,
            SmtpSecurity::None | SmtpSecurity::Starttls => {
                self.send_without_delay(&message).await?
            }
        };
        let text: Vec<&str> = response.message().collect();
        Ok(Receipt {
            channel: ChannelKind::Email,
            response: format!("{} {}", response.code(), text.join(" ")),
            message_id: None,
            http_status: None,
        })
    }

    /// One connection per message with `TCP_NODELAY`: lettre writes the end of DATA (`\r\n.\r\n`) apart
    /// from the body, and with Nagle on those 5 bytes wait for the server's delayed ACK of the body
    /// (40 ms on Linux) before the server can answer. Alerts must not wait for that. Implicit TLS keeps
    /// the pooled transport (lettre cannot wrap an existing socket in TLS before the greeting).
    async fn send_without_delay(&self, message: &Message) -> Result<Response, DeliveryError> {
        let timeout = self.config.timeout;
        let unreachable = |message: String| DeliveryError::Unreachable {
            target: self.target.clone(),
            message,
        };
        let address = (self.config.host.as_str(), self.config.effective_port());
        let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address))
            .await
            .map_err(|_| unreachable(format!("timed out after {}", describe_duration(timeout))))?
            .map_err(|err| unreachable(format!("connection failed: {err}")))?;
        // Best effort: without it the message still goes, only later.
        let _ = stream.set_nodelay(true);
        let hello = ClientId::default();
        let mut connection = self
            .step(AsyncSmtpConnection::connect_with_transport(
                Box::new(stream),
                &hello,
            ))
            .await?;
        if let (SmtpSecurity::Starttls, Some(parameters)) = (self.config.security, &self.tls) {
            self.step(connection.starttls(parameters.clone(), &hello))
                .await?;
        }
        if let (Some(username), Some(password)) = (&self.config.username, &self.config.password) {
            let credentials = Credentials::new(username.clone(), password.clone());
            self.step(connection.auth(&[Mechanism::Plain, Mechanism::Login], &credentials))
                .await?;
        }
        let response = self
            .step(connection.send(message.envelope(), &message.formatted()))
            .await?;
        // The message is accepted; a failed goodbye changes nothing.
        let _ = tokio::time::timeout(timeout, connection.quit()).await;
        Ok(response)
    }

    /// One SMTP exchange, bounded by the configured timeout, its error classified and scrubbed.
    async fn step<T>(
        &self,
        exchange: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, DeliveryError> {
        match tokio::time::timeout(self.config.timeout, exchange).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.secrets.scrub_error(self.smtp_error(&err))),
            Err(_) => Err(DeliveryError::Unreachable {
                target: self.target.clone(),
                message: format!("timed out after {}", describe_duration(self.config.timeout)),
            }),
        }
    }

    fn build_message(
        &self,
        address: &str,
        notification: &Notification,
    ) -> Result<Message, DeliveryError> {
        let to: Mailbox =
            address
                .trim()
                .parse()
                .map_err(|err| DeliveryError::InvalidDestination {
                    channel: ChannelKind::Email,
                    message: format!("{address:?} is not an email address: {err}"),
                })?;
        let domain = self.from.email.domain();
        let thread = format!("<cloudkeep.{}@{domain}>", id_part(&notification.id));
        let message_id = format!(
            "<cloudkeep.{}.{}.{}@{domain}>",
            id_part(&notification.id),
            notification.escalation_level,
            notification.sent_at_ms
        );
        let sent_at =
            UNIX_EPOCH + Duration::from_millis(u64::try_from(notification.sent_at_ms).unwrap_or(0));
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(render_subject(notification))
            .date(sent_at)
            .message_id(Some(message_id))
            // Every notice about the same group threads together in the reader's mailbox.
            .in_reply_to(thread.clone())
            .references(thread)
            .user_agent(concat!("cloudkeep-notify/", env!("CARGO_PKG_VERSION")).to_owned())
            .header(ContentType::TEXT_PLAIN)
            .body(render_text(notification))
            .map_err(|err| DeliveryError::Build {
                target: self.target.clone(),
                message: err.to_string(),
            })
    }

    fn smtp_error(&self, err: &lettre::transport::smtp::Error) -> DeliveryError {
        let target = self.target.clone();
        let detail = || {
            std::error::Error::source(err)
                .map(error_chain)
                .unwrap_or_default()
        };
        if let Some(code) = err.status() {
            let code: u16 = code.to_string().parse().unwrap_or(0);
            let mut message = detail().trim().to_owned();
            if AUTHENTICATION_CODES.contains(&code) {
                message = format!("authentication failed (check username and password): {message}");
            }
            return DeliveryError::SmtpReply {
                target,
                code,
                message,
            };
        }
        if err.is_timeout() {
            return DeliveryError::Unreachable {
                target,
                message: format!("timed out after {}", describe_duration(self.config.timeout)),
            };
        }
        if let Some(message) = tls_failure(err) {
            return DeliveryError::Tls { target, message };
        }
        if err.is_tls() {
            return DeliveryError::Tls {
                target,
                message: detail(),
            };
        }
        if err.is_response() || err.is_client() {
            return DeliveryError::Protocol {
                target,
                message: error_chain(err),
            };
        }
        DeliveryError::Unreachable {
            target,
            message: format!("connection failed: {}", detail()),
        }
    }
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, ConfigError> {
    let mut builder = TlsParametersBuilder::new(config.host.clone())
        .dangerous_accept_invalid_certs(config.accept_invalid_certs);
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(|err| {
            ConfigError::new("ca_file", format!("cannot read {}: {err}", path.display()))
        })?;
        // lettre accepts a PEM file without certificates as an empty list: say so instead.
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(ConfigError::new(
                "ca_file",
                format!("{} holds no PEM certificate", path.display()),
            ));
        }
        let certificate = Certificate::from_pem(&pem).map_err(|err| {
            ConfigError::new(
                "ca_file",
                format!("{} holds no usable PEM certificate: {err}", path.display()),
            )
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|err| ConfigError::new("security", format!("cannot set up TLS: {err}")))
}

/// The id as a Message-ID local part: letters, digits, `-`, `_` and `.` only.
fn id_part(id: &str) -> String {
    let part: String = id
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.') {
                character
            } else {
                '_'
            }
        })
        .collect();
    if part.is_empty() {
        "notification".to_owned()
    } else {
        part
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SmtpConfig {
        SmtpConfig {
            host: "mail.example.org".into(),
            port: None,
            security: SmtpSecurity::Starttls,
            username: Some("noc".into()),
            password: Some("s3cret-pass".into()),
            from: "Cloudkeep NOC <noc@example.org>".into(),
            timeout: Duration::from_secs(10),
            accept_invalid_certs: false,
            ca_file: None,
        }
    }

    #[test]
    fn settings_are_checked_when_the_channel_is_built() {
        let mut bad = config();
        bad.from = "not a mailbox".into();
        let err = EmailChannel::new(bad).unwrap_err().to_string();
        assert!(
            err.starts_with("from: \"not a mailbox\" is not a mailbox"),
            "{err}"
        );
        let mut bad = config();
        bad.password = None;
        assert_eq!(
            EmailChannel::new(bad).unwrap_err().to_string(),
            "password: required with username"
        );
        let mut bad = config();
        bad.ca_file = Some("/nonexistent/ca.pem".into());
        let err = EmailChannel::new(bad).unwrap_err().to_string();
        assert!(
            err.starts_with("ca_file: cannot read /nonexistent/ca.pem: "),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let mut bad = config();
        bad.ca_file = Some(garbage);
        let err = EmailChannel::new(bad).unwrap_err().to_string();
        assert!(
            err.ends_with("garbage.pem holds no PEM certificate"),
            "{err}"
        );
        let channel = EmailChannel::new(config()).unwrap();
        assert!(!format!("{channel:?}").contains("s3cret-pass"));
    }

    #[test]
    fn message_ids_are_safe() {
        assert_eq!(id_part("ntf-1.a_b"), "ntf-1.a_b");
        assert_eq!(id_part("a b<c>@d"), "a_b_c__d");
        assert_eq!(id_part(""), "notification");
    }

    #[test]
    fn bad_addresses_are_invalid_destinations() {
        let channel = EmailChannel::new(config()).unwrap();
        let err = channel
            .build_message("not an address", &crate::render::tests::firing_one())
            .unwrap_err();
        assert!(!err.retryable());
        assert!(
            err.to_string().starts_with(
                "email: invalid destination: \"not an address\" is not an email address"
            ),
            "{err}"
        );
    }
}
