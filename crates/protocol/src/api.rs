//! JSON bodies of the `/api/v1` endpoints, shared by the server, the typed client and the tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error answer: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// One of `bad_request`, `unauthenticated`, `forbidden`, `not_found`, `conflict`, `unavailable`, `internal`.
    pub kind: String,
    pub message: String,
    /// Itemised problems, e.g. one line per spec error with file and JSON path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// `POST /api/v1/enroll`: an agent trades a join token for its own credential.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollRequest {
    pub join_token: String,
    /// The host name the agent reports as; must be a host of the token's platform.
    pub hostname: String,
    pub agent_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    pub agent_id: String,
    /// Bearer credential for every later request; shown once.
    pub credential: String,
    pub host: String,
    pub platform: String,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenCreateRequest {
    pub platform: String,
    /// Lifetime in seconds; default one hour, at most seven days.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenCreateResponse {
    pub token: String,
    pub token_id: String,
    pub platform: String,
    pub expires_at_ms: i64,
}

/// `POST /api/v1/sessions`: a person logs in with a password and gets an API token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    pub expires_at_ms: i64,
}

/// Answer of `POST /api/v1/platforms` (spec apply).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlatformApplied {
    pub platform: String,
    pub revision: i64,
    /// `created`, `updated` or `unchanged`.
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlatformSummary {
    pub name: String,
    pub isv: String,
    pub tenant: String,
    pub cloud: String,
    pub revision: i64,
    pub hosts: Vec<String>,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlatformList {
    pub platforms: Vec<PlatformSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FilesystemSummary {
    pub mountpoint: String,
    pub used_percent: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InterfaceSummary {
    pub interface: String,
    pub receive_bytes_per_second: Option<f64>,
    pub transmit_bytes_per_second: Option<f64>,
}

/// One host with its latest key metrics; a metric is absent when no sample arrived yet.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostSummary {
    pub name: String,
    pub platform: String,
    pub cloud: String,
    /// Last time the host's agent reported, ms since the epoch; absent if never.
    pub last_seen_ms: Option<i64>,
    pub cpu_busy_percent: Option<f64>,
    pub memory_used_percent: Option<f64>,
    pub load1: Option<f64>,
    pub filesystems: Vec<FilesystemSummary>,
    pub interfaces: Vec<InterfaceSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostList {
    pub hosts: Vec<HostSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentSummary {
    pub id: String,
    pub host: String,
    pub platform: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentSummary>,
}

/// `GET /api/v1/series?match=SELECTOR`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SeriesList {
    pub series: Vec<BTreeMap<String, String>>,
}

/// One series of a range query; `points` are `[timestamp_ms, value]`, value `null` for NaN.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SeriesData {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(i64, Option<f64>)>,
}

/// `GET /api/v1/query_range`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueryRangeResponse {
    /// The storage tier the answer came from: `raw`, `5m` or `1h`.
    pub tier: String,
    pub series: Vec<SeriesData>,
}

/// An entry of the append-only, hash-chained audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
    /// Whether every entry's hash chains to the previous one.
    pub chain_valid: bool,
}

/// A named background worker of the server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkerStatus {
    pub name: String,
    pub state: String,
    pub runs: u64,
    pub last_run_ms: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerStatus>,
}
