//! The one typed HTTP client of the Cloudkeep API, used by the CLI, the agent and the tests.
#![forbid(unsafe_code)]

use std::time::Duration;

use cloudkeep_protocol::alerting::{
    AckRequest, AgentConfig, AlertList, AlertView, CheckReport, DeliveryList, EventList,
    EventQuery, MaintenanceCreate, MaintenanceList, MaintenanceView, NotifyTestRequest,
    NotifyTestResult, PostableAlert, SilenceCreate, SilenceList, SilenceView, StatusList,
};
use cloudkeep_protocol::api::{
    AgentList, AuditList, EnrollRequest, EnrollResponse, ErrorBody, HostList, LoginRequest,
    LoginResponse, PlatformApplied, PlatformList, QueryRangeResponse, SeriesList,
    TokenCreateRequest, TokenCreateResponse, WorkerList,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    /// The server answered with an error.
    #[error("{status}: {message}{}", details.iter().map(|d| format!("\n  {d}")).collect::<String>())]
    Api {
        status: u16,
        kind: String,
        message: String,
        details: Vec<String>,
    },
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

impl ClientError {
    /// True when retrying later may succeed (network trouble, overload, server errors).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Api { status, .. } => *status >= 500 || *status == 429,
            ClientError::Protocol(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client bound to one server URL and, optionally, one bearer credential.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    bearer: Option<String>,
}

impl Client {
    pub fn new(base_url: &str, bearer: Option<String>) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("cloudkeep/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ClientError::Protocol(err.to_string()))?;
        Ok(Client {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            bearer,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn with_bearer(&self, bearer: String) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            bearer: Some(bearer),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.bearer {
            Some(bearer) => builder.bearer_auth(bearer),
            None => builder,
        }
    }

    async fn send(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = builder
            .send()
            .await
            .map_err(|err| ClientError::Unreachable {
                url: self.base.clone(),
                message: error_chain(&err),
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status: status.as_u16(),
                kind: body.error.kind,
                message: body.error.message,
                details: body.error.details,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                kind: "unknown".into(),
                message: format!("{} {}", status, text.trim()),
                details: Vec::new(),
            },
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.send(builder).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|err| ClientError::Unreachable {
                url: self.base.clone(),
                message: error_chain(&err),
            })?;
        serde_json::from_slice(&bytes)
            .map_err(|err| ClientError::Protocol(format!("invalid JSON: {err}")))
    }

    pub async fn healthz(&self) -> Result<(), ClientError> {
        self.send(self.request(reqwest::Method::GET, "/healthz"))
            .await
            .map(|_| ())
    }

    pub async fn readyz(&self) -> Result<(), ClientError> {
        self.send(self.request(reqwest::Method::GET, "/readyz"))
            .await
            .map(|_| ())
    }

    pub async fn login(&self, request: &LoginRequest) -> Result<LoginResponse, ClientError> {
        self.json(
            self.request(reqwest::Method::POST, "/api/v1/sessions")
                .json(request),
        )
        .await
    }

    pub async fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse, ClientError> {
        self.json(
            self.request(reqwest::Method::POST, "/api/v1/enroll")
                .json(request),
        )
        .await
    }

    /// Sends an already encoded and compressed remote_write body.
    pub async fn remote_write(&self, body: Vec<u8>) -> Result<(), ClientError> {
        let builder = self
            .request(reqwest::Method::POST, "/api/v1/write")
            .header("content-encoding", "snappy")
            .header("content-type", "application/x-protobuf")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .body(body);
        let response = self.send(builder).await?;
        if response.status() == StatusCode::NO_CONTENT || response.status() == StatusCode::OK {
            Ok(())
        } else {
            Err(ClientError::Protocol(format!(
                "remote write answered {}",
                response.status()
            )))
        }
    }

    pub async fn hosts(&self) -> Result<HostList, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/api/v1/hosts"))
            .await
    }

    pub async fn platforms(&self) -> Result<PlatformList, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/api/v1/platforms"))
            .await
    }

    /// Applies a spec; `source` names the file in error messages.
    pub async fn apply_spec(
        &self,
        source: &str,
        text: String,
    ) -> Result<PlatformApplied, ClientError> {
        let builder = self
            .request(reqwest::Method::POST, "/api/v1/platforms")
            .header("content-type", "application/json")
            .header("x-cloudkeep-source", source)
            .body(text);
        self.json(builder).await
    }

    pub async fn create_token(
        &self,
        request: &TokenCreateRequest,
    ) -> Result<TokenCreateResponse, ClientError> {
        self.json(
            self.request(reqwest::Method::POST, "/api/v1/tokens")
                .json(request),
        )
        .await
    }

    pub async fn agents(&self) -> Result<AgentList, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/api/v1/agents"))
            .await
    }

    pub async fn revoke_agent(&self, id: &str) -> Result<(), ClientError> {
        self.send(self.request(reqwest::Method::DELETE, &format!("/api/v1/agents/{id}")))
            .await
            .map(|_| ())
    }

    pub async fn series(&self, selector: &str) -> Result<SeriesList, ClientError> {
        self.json(
            self.request(reqwest::Method::GET, "/api/v1/series")
                .query(&[("match", selector)]),
        )
        .await
    }

    /// A range query; times as the API takes them (ms, `now`, `now-1h`).
    pub async fn query_range(
        &self,
        selector: &str,
        start: &str,
        end: &str,
        step: Option<&str>,
        agg: Option<&str>,
    ) -> Result<QueryRangeResponse, ClientError> {
        let mut query = vec![("query", selector), ("start", start), ("end", end)];
        if let Some(step) = step {
            query.push(("step", step));
        }
        if let Some(agg) = agg {
            query.push(("agg", agg));
        }
        self.json(
            self.request(reqwest::Method::GET, "/api/v1/query_range")
                .query(&query),
        )
        .await
    }

    pub async fn audit(&self) -> Result<AuditList, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/api/v1/audit"))
            .await
    }

    pub async fn workers(&self) -> Result<WorkerList, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/api/v1/workers"))
            .await
    }

    // ---- alerting ----

    pub async fn events(&self, query: &EventQuery) -> Result<EventList, ClientError> {
        self.json(
            self.request(reqwest::Method::GET, "/api/v1/events")
                .query(query),
        )
        .await
    }

    /// Current alerts; with `all`, also those back to ok.
    pub async fn alerts(&self, all: bool) -> Result<AlertList, ClientError> {
        let mut builder = self.request(reqwest::Method::GET, "/api/v1/alerts");
        if all {
            builder = builder.query(&[("all", "true")]);
        }
        self.json(builder).await
    }

    pub async fn ack(&self, alert_id: &str, comment: &str) -> Result<AlertView, ClientError> {
        self.json(
            self.request(
                reqwest::Method::POST,
                &format!("/api/v1/alerts/{alert_id}/ack"),
            )
            .json(&AckRequest {
                comment: comment.into(),
            }),
        )
        .await
    }

    pub async fn status(&self) -> Result<StatusList, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/api/v1/status"))
            .await
    }

    pub async fn maintenance(&self) -> Result<MaintenanceList, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/api/v1/maintenance"))
            .await
    }

    pub async fn create_maintenance(
        &self,
        request: &MaintenanceCreate,
    ) -> Result<MaintenanceView, ClientError> {
        self.json(
            self.request(reqwest::Method::POST, "/api/v1/maintenance")
                .json(request),
        )
        .await
    }

    pub async fn delete_maintenance(&self, id: &str) -> Result<(), ClientError> {
        self.send(self.request(
            reqwest::Method::DELETE,
            &format!("/api/v1/maintenance/{id}"),
        ))
        .await
        .map(|_| ())
    }

    pub async fn silences(&self) -> Result<SilenceList, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/api/v1/silences"))
            .await
    }

    pub async fn create_silence(
        &self,
        request: &SilenceCreate,
    ) -> Result<SilenceView, ClientError> {
        self.json(
            self.request(reqwest::Method::POST, "/api/v1/silences")
                .json(request),
        )
        .await
    }

    pub async fn delete_silence(&self, id: &str) -> Result<(), ClientError> {
        self.send(self.request(reqwest::Method::DELETE, &format!("/api/v1/silences/{id}")))
            .await
            .map(|_| ())
    }

    pub async fn deliveries(&self) -> Result<DeliveryList, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/api/v1/deliveries"))
            .await
    }

    /// Stores the public half of an ISV's backup key pair.
    pub async fn create_backup_key(
        &self,
        request: &cloudkeep_protocol::backup::BackupKeyCreate,
    ) -> Result<cloudkeep_protocol::backup::BackupKeyView, ClientError> {
        self.json(
            self.request(reqwest::Method::POST, "/api/v1/backup-keys")
                .json(request),
        )
        .await
    }

    /// The stored public backup keys, of one ISV or all.
    pub async fn backup_keys(
        &self,
        isv: Option<&str>,
    ) -> Result<cloudkeep_protocol::backup::BackupKeyList, ClientError> {
        let mut request = self.request(reqwest::Method::GET, "/api/v1/backup-keys");
        if let Some(isv) = isv {
            request = request.query(&[("isv", isv)]);
        }
        self.json(request).await
    }

    /// Reports what the calling agent's host did for one of its databases (agents only).
    pub async fn report_backups(
        &self,
        report: &cloudkeep_protocol::backup::BackupReport,
    ) -> Result<(), ClientError> {
        self.send(
            self.request(reqwest::Method::POST, "/api/v1/agent/backups")
                .json(report),
        )
        .await
        .map(|_| ())
    }

    /// The backup catalog, of one platform and/or database name or all.
    pub async fn backup_catalog(
        &self,
        platform: Option<&str>,
        database: Option<&str>,
    ) -> Result<cloudkeep_protocol::backup::BackupCatalog, ClientError> {
        let mut request = self.request(reqwest::Method::GET, "/api/v1/backups");
        if let Some(platform) = platform {
            request = request.query(&[("platform", platform)]);
        }
        if let Some(database) = database {
            request = request.query(&[("database", database)]);
        }
        self.json(request).await
    }

    /// Where a platform's backups live, credentials included (admins only; audited).
    pub async fn backup_repository(
        &self,
        platform: &str,
    ) -> Result<cloudkeep_protocol::backup::RepositoryAccess, ClientError> {
        self.json(
            self.request(reqwest::Method::GET, "/api/v1/backups/repository")
                .query(&[("platform", platform)]),
        )
        .await
    }

    /// Records a DR drill's result (an event on the platform).
    pub async fn record_drill(
        &self,
        record: &cloudkeep_protocol::backup::DrillRecord,
    ) -> Result<(), ClientError> {
        self.send(
            self.request(reqwest::Method::POST, "/api/v1/backups/drills")
                .json(record),
        )
        .await
        .map(|_| ())
    }

    /// Raises (or resolves) alerts the way Alertmanager's clients do (`POST /api/v2/alerts`).
    pub async fn raise_alerts(&self, alerts: &[PostableAlert]) -> Result<(), ClientError> {
        self.send(
            self.request(reqwest::Method::POST, "/api/v2/alerts")
                .json(alerts),
        )
        .await
        .map(|_| ())
    }

    /// Sends a test notification to a contact and returns each channel's outcome.
    pub async fn notify_test(
        &self,
        request: &NotifyTestRequest,
    ) -> Result<NotifyTestResult, ClientError> {
        self.json(
            self.request(reqwest::Method::POST, "/api/v1/notify/test")
                .json(request),
        )
        .await
    }

    /// The calling agent's monitors.
    pub async fn agent_config(&self) -> Result<AgentConfig, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/api/v1/agent/config"))
            .await
    }

    /// The calling agent's latest check results.
    pub async fn report_checks(&self, report: &CheckReport) -> Result<(), ClientError> {
        self.send(
            self.request(reqwest::Method::POST, "/api/v1/agent/checks")
                .json(report),
        )
        .await
        .map(|_| ())
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}
