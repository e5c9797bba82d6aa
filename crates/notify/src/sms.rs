//! The SMS channel: one HTTP request to a gateway, either Twilio's Messages API or a request built from templates.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};

use crate::Receipt;
use crate::config::{HttpMethod, SmsConfig, SmsPreset};
use crate::error::{ChannelKind, ConfigError, DeliveryError, Secrets};
use crate::http::{build_client, excerpt, header_map, parse_url, redacted_url, send};
use crate::notification::Notification;
use crate::render::render_sms;

/// The placeholders templates may use.
const PLACEHOLDERS: [&str; 3] = ["to", "from", "text"];
const DEFAULT_CONTENT_TYPE: &str = "application/json";
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// How `{{…}}` values are escaped in a body, decided by its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escaping {
    Json,
    Form,
    Xml,
    Verbatim,
}

impl Escaping {
    fn for_content_type(content_type: &str) -> Escaping {
        let content_type = content_type.to_ascii_lowercase();
        if content_type.contains("json") {
            Escaping::Json
        } else if content_type.contains("x-www-form-urlencoded") {
            Escaping::Form
        } else if content_type.contains("xml") {
            Escaping::Xml
        } else {
            Escaping::Verbatim
        }
    }

    fn escape(self, value: &str) -> String {
        match self {
            Escaping::Json => {
                let quoted = serde_json::Value::String(value.to_owned()).to_string();
                quoted
                    .strip_prefix('"')
                    .and_then(|rest| rest.strip_suffix('"'))
                    .unwrap_or(&quoted)
                    .to_owned()
            }
            Escaping::Form => form_encode(value),
            Escaping::Xml => value
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&apos;"),
            Escaping::Verbatim => value.to_owned(),
        }
    }
}

enum Request {
    Twilio {
        url: reqwest::Url,
        account_sid: String,
        auth_token: String,
        from: String,
    },
    Templated {
        url_template: String,
        method: HttpMethod,
        body_template: Option<String>,
        content_type: String,
        basic_auth: Option<(String, String)>,
        from: String,
    },
}

/// A validated SMS gateway channel.
pub(crate) struct SmsChannel {
    client: reqwest::Client,
    request: Request,
    headers: HeaderMap,
    target: String,
    timeout: Duration,
    secrets: Secrets,
}

/// Only where it sends: the request holds the token, the password and maybe a key in the URL.
impl std::fmt::Debug for SmsChannel {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SmsChannel")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmsChannel {
    pub(crate) fn new(config: SmsConfig) -> Result<SmsChannel, ConfigError> {
        let mut secrets = Secrets::default();
        let headers = header_map(&config.headers, &mut secrets)?;
        if config.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be more than 0"));
        }
        let client = build_client(config.timeout)?;
        let (request, target) = match config.preset {
            Some(SmsPreset::Twilio) => twilio(&config, &mut secrets)?,
            None => templated(&config, &mut secrets)?,
        };
        Ok(SmsChannel {
            client,
            request,
            headers,
            target,
            timeout: config.timeout,
            secrets,
        })
    }

    pub(crate) async fn deliver(
        &self,
        number: &str,
        notification: &Notification,
    ) -> Result<Receipt, DeliveryError> {
        let to = normalize_phone_number(number)?;
        let text = render_sms(notification);
        let request = match &self.request {
            Request::Twilio {
                url,
                account_sid,
                auth_token,
                from,
            } => {
                let body = format!(
                    "To={}&From={}&Body={}",
                    form_encode(&to),
                    form_encode(from),
                    form_encode(&text)
                );
                self.client
                    .post(url.clone())
                    .headers(self.headers.clone())
                    .basic_auth(account_sid, Some(auth_token))
                    .header(CONTENT_TYPE, HeaderValue::from_static(FORM_CONTENT_TYPE))
                    .body(body)
            }
            Request::Templated {
                url_template,
                method,
                body_template,
                content_type,
                basic_auth,
                from,
            } => {
                let values = [to.as_str(), from.as_str(), text.as_str()];
                let url_text = fill(url_template, &values, percent_encode);
                let url = reqwest::Url::parse(&url_text).map_err(|err| {
                    self.secrets.scrub_error(DeliveryError::Build {
                        target: self.target.clone(),
                        message: format!("the url template gave an invalid URL: {err}"),
                    })
                })?;
                let method = match method {
                    HttpMethod::Get => reqwest::Method::GET,
                    HttpMethod::Post => reqwest::Method::POST,
                    HttpMethod::Put => reqwest::Method::PUT,
                };
                let mut request = self
                    .client
                    .request(method, url)
                    .headers(self.headers.clone());
                if let Some(template) = body_template {
                    let escaping = Escaping::for_content_type(content_type);
                    request = request
                        .header(CONTENT_TYPE, content_type.as_str())
                        .body(fill(template, &values, |value| escaping.escape(value)));
                }
                if let Some((username, password)) = basic_auth {
                    request = request.basic_auth(username, Some(password));
                }
                request
            }
        };
        let answer = send(request, &self.target, self.timeout, &self.secrets).await?;
        Ok(Receipt {
            channel: ChannelKind::Sms,
            message_id: provider_message_id(&answer.body),
            response: self.secrets.scrub(&excerpt(&answer.body)),
            http_status: Some(answer.status),
        })
    }
}

fn twilio(config: &SmsConfig, secrets: &mut Secrets) -> Result<(Request, String), ConfigError> {
    for (field, set) in [
        ("body_template", config.body_template.is_some()),
        ("content_type", config.content_type.is_some()),
        ("username", config.username.is_some()),
        ("password", config.password.is_some()),
    ] {
        if set {
            return Err(ConfigError::new(
                field,
                "not used with preset \"twilio\" (it builds the request itself)",
            ));
        }
    }
    if config.method != HttpMethod::Post {
        return Err(ConfigError::new("method", "preset \"twilio\" only POSTs"));
    }
    let required = |field: &str, value: &Option<String>| {
        value
            .clone()
            .filter(|value| !value.trim().is_empty())
            .ok_or_else(|| ConfigError::new(field, "required with preset \"twilio\""))
    };
    let account_sid = required("account_sid", &config.account_sid)?;
    let auth_token = required("auth_token", &config.auth_token)?;
    let from = required("from", &config.from)?;
    secrets.add_basic_auth(&account_sid, &auth_token);
    let base = parse_url("url", &config.url)?;
    let url = parse_url(
        "url",
        &format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            base.as_str().trim_end_matches('/'),
            percent_encode(&account_sid)
        ),
    )?;
    let target = format!("sms POST {}", redacted_url(&url));
    Ok((
        Request::Twilio {
            url,
            account_sid,
            auth_token,
            from,
        },
        target,
    ))
}

fn templated(config: &SmsConfig, secrets: &mut Secrets) -> Result<(Request, String), ConfigError> {
    for (field, set) in [
        ("account_sid", config.account_sid.is_some()),
        ("auth_token", config.auth_token.is_some()),
    ] {
        if set {
            return Err(ConfigError::new(field, "only used with preset \"twilio\""));
        }
    }
    check_placeholders("url", &config.url, config.from.is_some())?;
    if let Some(template) = &config.body_template {
        check_placeholders("body_template", template, config.from.is_some())?;
    }
    // The template must be a URL whatever the values: check it with harmless ones.
    let sample = fill(&config.url, &["1", "x", "x"], percent_encode);
    let sample_url = parse_url("url", &sample)?;
    // Gateways often take their API key in the query.
    secrets.add_url(&sample_url);
    let basic_auth = match (&config.username, &config.password) {
        (Some(username), Some(password)) => {
            secrets.add_basic_auth(username, password);
            Some((username.clone(), password.clone()))
        }
        (Some(_), None) => return Err(ConfigError::new("password", "required with username")),
        (None, Some(_)) => return Err(ConfigError::new("username", "required with password")),
        (None, None) => None,
    };
    let content_type = config
        .content_type
        .clone()
        .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
    if HeaderValue::from_str(&content_type).is_err() {
        return Err(ConfigError::new("content_type", "not a valid header value"));
    }
    let target = format!(
        "sms {} {}",
        config.method.as_str(),
        redacted_url(&sample_url)
    );
    Ok((
        Request::Templated {
            url_template: config.url.clone(),
            method: config.method,
            body_template: config.body_template.clone(),
            content_type,
            basic_auth,
            from: config.from.clone().unwrap_or_default(),
        },
        target,
    ))
}

/// Every `{{name}}` must be one we fill, and `{{from}}` needs `from`.
fn check_placeholders(field: &str, template: &str, has_from: bool) -> Result<(), ConfigError> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = rest.get(start + 2..).unwrap_or_default();
        let Some(end) = after.find("}}") else {
            return Err(ConfigError::new(field, "unclosed \"{{\""));
        };
        let name = after.get(..end).unwrap_or_default().trim();
        if !PLACEHOLDERS.contains(&name) {
            return Err(ConfigError::new(
                field,
                format!(
                    "unknown placeholder {{{{{name}}}}}; use {{{{to}}}}, {{{{from}}}} or {{{{text}}}}"
                ),
            ));
        }
        if name == "from" && !has_from {
            return Err(ConfigError::new(
                field,
                "uses {{from}} but `from` is not set",
            ));
        }
        rest = after.get(end + 2..).unwrap_or_default();
    }
    Ok(())
}

/// Replaces `{{to}}`, `{{from}}`, `{{text}}` (spaces inside the braces allowed) with escaped values.
fn fill(template: &str, values: &[&str; 3], escape: impl Fn(&str) -> String) -> String {
    let mut filled = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        filled.push_str(rest.get(..start).unwrap_or_default());
        let after = rest.get(start + 2..).unwrap_or_default();
        let Some(end) = after.find("}}") else {
            filled.push_str(rest.get(start..).unwrap_or_default());
            rest = "";
            break;
        };
        let name = after.get(..end).unwrap_or_default().trim();
        match PLACEHOLDERS.iter().position(|known| *known == name) {
            Some(index) => filled.push_str(&escape(values.get(index).copied().unwrap_or_default())),
            None => filled.push_str(rest.get(start..start + 2 + end + 2).unwrap_or_default()),
        }
        rest = after.get(end + 2..).unwrap_or_default();
    }
    filled.push_str(rest);
    filled
}

/// `+44 20 7946-0958` → `+442079460958`; anything but digits, one leading `+` and separators is refused.
fn normalize_phone_number(number: &str) -> Result<String, DeliveryError> {
    let invalid = |why: &str| DeliveryError::InvalidDestination {
        channel: ChannelKind::Sms,
        message: format!("{number:?} is not a phone number: {why}"),
    };
    let trimmed = number.trim();
    let (plus, digits_part) = match trimmed.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", trimmed),
    };
    let mut digits = String::new();
    for character in digits_part.chars() {
        match character {
            '0'..='9' => digits.push(character),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => {
                return Err(invalid(
                    "only digits, a leading +, spaces, -, . and parentheses are allowed",
                ));
            }
        }
    }
    if !(3..=15).contains(&digits.len()) {
        return Err(invalid("expected 3 to 15 digits"));
    }
    Ok(format!("{plus}{digits}"))
}

/// `application/x-www-form-urlencoded`: unreserved bytes as is, space as `+`, the rest `%XX`.
pub(crate) fn form_encode(value: &str) -> String {
    encode(value, true)
}

/// RFC 3986 percent-encoding of everything but unreserved characters (for URL templates).
fn percent_encode(value: &str) -> String {
    encode(value, false)
}

fn encode(value: &str, space_as_plus: bool) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                encoded.push(char::from(byte));
            }
            b' ' if space_as_plus => encoded.push('+'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// The provider's id of the message, when its JSON answer has one (`sid`, `id`, `message_id`, `messageId`).
fn provider_message_id(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    ["sid", "id", "message_id", "messageId"]
        .iter()
        .find_map(|key| match value.get(key)? {
            serde_json::Value::String(id) => Some(id.clone()),
            serde_json::Value::Number(id) => Some(id.to_string()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::DEFAULT_TIMEOUT;

    fn custom(url: &str, body_template: Option<&str>, content_type: Option<&str>) -> SmsConfig {
        SmsConfig {
            preset: None,
            url: url.into(),
            method: HttpMethod::Post,
            headers: BTreeMap::new(),
            body_template: body_template.map(str::to_owned),
            content_type: content_type.map(str::to_owned),
            username: None,
            password: None,
            account_sid: None,
            auth_token: None,
            from: Some("Cloudkeep".into()),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    #[test]
    fn escaping_follows_the_content_type() {
        let text = "a \"b\" & c/d\n<é>";
        assert_eq!(
            Escaping::for_content_type("application/json; charset=utf-8").escape(text),
            "a \\\"b\\\" & c/d\\n<é>"
        );
        assert_eq!(
            Escaping::for_content_type("application/x-www-form-urlencoded").escape(text),
            "a+%22b%22+%26+c%2Fd%0A%3C%C3%A9%3E"
        );
        assert_eq!(
            Escaping::for_content_type("text/xml").escape(text),
            "a &quot;b&quot; &amp; c/d\n&lt;é&gt;"
        );
        assert_eq!(Escaping::for_content_type("text/plain").escape(text), text);
        assert_eq!(percent_encode("a b+c"), "a%20b%2Bc");
    }

    #[test]
    fn templates_are_filled() {
        let values = ["+441", "Ck", "hi \"x\""];
        assert_eq!(
            fill(
                r#"{"to":"{{to}}","msg":"{{ text }}","from":"{{from}}"}"#,
                &values,
                |value| { Escaping::Json.escape(value) }
            ),
            r#"{"to":"+441","msg":"hi \"x\"","from":"Ck"}"#
        );
        assert_eq!(
            fill("{{nope}} {{to", &values, str::to_owned),
            "{{nope}} {{to"
        );
    }

    #[test]
    fn settings_are_checked() {
        let err = SmsChannel::new(custom("http://gw/{{phone}}", None, None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "url: unknown placeholder {{phone}}; use {{to}}, {{from}} or {{text}}"
        );
        let mut no_from = custom("http://gw/", Some("{{from}}"), None);
        no_from.from = None;
        assert_eq!(
            SmsChannel::new(no_from).unwrap_err().to_string(),
            "body_template: uses {{from}} but `from` is not set"
        );
        let mut twilio = custom("https://api.twilio.com", None, None);
        twilio.preset = Some(SmsPreset::Twilio);
        twilio.account_sid = Some("AC1".into());
        assert_eq!(
            SmsChannel::new(twilio.clone()).unwrap_err().to_string(),
            "auth_token: required with preset \"twilio\""
        );
        twilio.auth_token = Some("tok".into());
        twilio.body_template = Some("x".into());
        assert_eq!(
            SmsChannel::new(twilio).unwrap_err().to_string(),
            "body_template: not used with preset \"twilio\" (it builds the request itself)"
        );
        let channel = SmsChannel::new(custom(
            "https://gw.example.org/send?key=k3y-secret&to={{to}}",
            None,
            None,
        ))
        .unwrap();
        assert_eq!(channel.target, "sms POST https://gw.example.org/…");
    }

    #[test]
    fn phone_numbers() {
        assert_eq!(
            normalize_phone_number(" +44 (20) 7946-0958 ").unwrap(),
            "+442079460958"
        );
        assert_eq!(normalize_phone_number("0612345678").unwrap(), "0612345678");
        for bad in ["", "+", "12", "+44 20 x", "1234567890123456", "++44123"] {
            let err = normalize_phone_number(bad).unwrap_err();
            assert!(!err.retryable());
            assert!(
                err.to_string().starts_with("sms: invalid destination: "),
                "{err}"
            );
        }
    }

    #[test]
    fn provider_ids() {
        assert_eq!(
            provider_message_id(r#"{"sid":"SM1"}"#).as_deref(),
            Some("SM1")
        );
        assert_eq!(provider_message_id(r#"{"id":42}"#).as_deref(), Some("42"));
        assert_eq!(provider_message_id("ok"), None);
    }
}
