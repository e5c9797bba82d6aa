//! Rows of the state store as plain structs, one per table.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{StoreError, get_opt_i64};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    /// An argon2 PHC string; never the password.
    pub password_hash: String,
    pub role: String,
    pub created_at_ms: i64,
    pub disabled: bool,
}

impl UserRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            name: row.try_get(0)?,
            password_hash: row.try_get(1)?,
            role: row.try_get(2)?,
            created_at_ms: row.try_get(3)?,
            disabled: row.try_get::<i32, _>(4)? != 0,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub id: String,
    pub secret_hash: String,
    pub user: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

impl ApiTokenRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<ApiTokenRecord, StoreError> {
        Ok(ApiTokenRecord {
            id: row.try_get(0)?,
            secret_hash: row.try_get(1)?,
            user: row.try_get(2)?,
            created_at_ms: row.try_get(3)?,
            expires_at_ms: get_opt_i64(row, 4)?,
            revoked_at_ms: get_opt_i64(row, 5)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformRecord {
    pub name: String,
    pub isv: String,
    pub tenant: String,
    pub cloud: String,
    /// The spec as applied, canonical JSON.
    pub spec_json: String,
    /// blake3 of `spec_json`, so re-applying the same spec is a no-op.
    pub spec_hash: String,
    pub revision: i64,
    pub updated_at_ms: i64,
}

impl PlatformRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<PlatformRecord, StoreError> {
        Ok(PlatformRecord {
            name: row.try_get(0)?,
            isv: row.try_get(1)?,
            tenant: row.try_get(2)?,
            cloud: row.try_get(3)?,
            spec_json: row.try_get(4)?,
            spec_hash: row.try_get(5)?,
            revision: row.try_get(6)?,
            updated_at_ms: row.try_get(7)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Created,
    Updated,
    Unchanged,
}

impl ApplyOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Created => "created",
            ApplyOutcome::Updated => "updated",
            ApplyOutcome::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    pub name: String,
    pub platform: String,
    pub cloud: String,
    /// JSON array of component names.
    pub components_json: String,
    pub last_seen_ms: Option<i64>,
}

impl HostRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<HostRecord, StoreError> {
        Ok(HostRecord {
            name: row.try_get(0)?,
            platform: row.try_get(1)?,
            cloud: row.try_get(2)?,
            components_json: row.try_get(3)?,
            last_seen_ms: get_opt_i64(row, 4)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTokenRecord {
    pub id: String,
    pub secret_hash: String,
    pub platform: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub used_at_ms: Option<i64>,
    pub used_by_agent: Option<String>,
}

impl JoinTokenRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<JoinTokenRecord, StoreError> {
        Ok(JoinTokenRecord {
            id: row.try_get(0)?,
            secret_hash: row.try_get(1)?,
            platform: row.try_get(2)?,
            created_by: row.try_get(3)?,
            created_at_ms: row.try_get(4)?,
            expires_at_ms: row.try_get(5)?,
            used_at_ms: get_opt_i64(row, 6)?,
            used_by_agent: row.try_get(7)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub id: String,
    pub secret_hash: String,
    pub host: String,
    pub platform: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

impl AgentRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<AgentRecord, StoreError> {
        Ok(AgentRecord {
            id: row.try_get(0)?,
            secret_hash: row.try_get(1)?,
            host: row.try_get(2)?,
            platform: row.try_get(3)?,
            created_at_ms: row.try_get(4)?,
            revoked_at_ms: get_opt_i64(row, 5)?,
        })
    }
}
