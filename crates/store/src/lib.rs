//! The state store: one API over SQLite (the embedded default) and PostgreSQL, one migration set.
//!
//! Only this crate knows SQL. Records here are plain rows; the server turns them into domain types.
#![forbid(unsafe_code)]

mod alerting;
mod audit;
mod backup;
mod records;

use std::borrow::Cow;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlSafeStr};

pub use alerting::{
    AlertRecord, DeliveryRecord, EventFilter, EventRecord, MaintenanceRecord, SilenceRecord,
};
pub use audit::{AuditRecord, chain_is_valid};
pub use backup::{
    BackupChange, BackupDatabaseRecord, BackupFailureRecord, BackupKeyRecord, BackupReportApplied,
    BaseBackupRecord, WalFileRecord,
};
pub use records::{
    AgentRecord, ApiTokenRecord, ApplyOutcome, HostRecord, JoinTokenRecord, PlatformRecord,
    UserRecord,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Conflict(String),
}

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Why a join token could not be used; the caller answers all of these the same way to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefusal {
    Unknown,
    Expired,
    AlreadyUsed,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            Cow::Borrowed("initial"),
            MigrationType::Simple,
            include_str!("../migrations/0001_initial.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("alerting"),
            MigrationType::Simple,
            include_str!("../migrations/0002_alerting.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            Cow::Borrowed("backup_keys"),
            MigrationType::Simple,
            include_str!("../migrations/0003_backup_keys.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            Cow::Borrowed("backup_catalog"),
            MigrationType::Simple,
            include_str!("../migrations/0004_backup_catalog.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            Cow::Borrowed("incremental_backups"),
            MigrationType::Simple,
            include_str!("../migrations/0005_incremental_backups.sql").into_sql_str(),
            false,
        ),
    ])
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (engine, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let separator = if path.contains('?') { '&' } else { '?' };
            (
                Engine::Sqlite,
                format!("sqlite://{path}{separator}mode=rwc"),
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Engine::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        // SQLite allows one writer; a single connection avoids "database is locked" under load.
        let max_connections = match engine {
            Engine::Sqlite => 1,
            Engine::Postgres => 8,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        if engine == Engine::Sqlite {
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
            sqlx::query("PRAGMA foreign_keys=ON").execute(&pool).await?;
        }
        migrator().run(&pool).await?;
        Ok(Store { pool, engine })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    // ---- users and API tokens ----

    pub async fn user_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO users (name, password_hash, role, created_at, disabled) VALUES ($1, $2, $3, $4, $5)")
            .bind(&user.name)
            .bind(&user.password_hash)
            .bind(&user.role)
            .bind(user.created_at_ms)
            .bind(i32::from(user.disabled))
            .execute(&self.pool)
            .await
            .map_err(|err| conflict_or(err, format!("user {:?} already exists", user.name)))?;
        Ok(())
    }

    pub async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, password_hash, role, created_at, disabled FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| UserRecord::from_row(&row)).transpose()
    }

    pub async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, secret_hash, user_name, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.id)
        .bind(&token.secret_hash)
        .bind(&token.user)
        .bind(token.created_at_ms)
        .bind(token.expires_at_ms)
        .bind(token.revoked_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_api_token(&self, id: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, secret_hash, user_name, created_at, expires_at, revoked_at FROM api_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| ApiTokenRecord::from_row(&row)).transpose()
    }

    // ---- platforms and hosts ----

    /// Creates or updates a platform and replaces its host list, in one transaction.
    ///
    /// A host name is unique across platforms: claiming another platform's host is a conflict.
    pub async fn apply_platform(
        &self,
        platform: &PlatformRecord,
        hosts: &[HostRecord],
    ) -> Result<(ApplyOutcome, i64), StoreError> {
        let mut tx = self.pool.begin().await?;
        let existing = sqlx::query("SELECT spec_hash, revision FROM platforms WHERE name = $1")
            .bind(&platform.name)
            .fetch_optional(&mut *tx)
            .await?;
        let (outcome, revision) = match existing {
            Some(row) => {
                let spec_hash: String = row.try_get(0)?;
                let revision: i64 = row.try_get(1)?;
                if spec_hash == platform.spec_hash {
                    tx.rollback().await?;
                    return Ok((ApplyOutcome::Unchanged, revision));
                }
                (ApplyOutcome::Updated, revision + 1)
            }
            None => (ApplyOutcome::Created, 1),
        };
        for host in hosts {
            let owner = sqlx::query("SELECT platform FROM hosts WHERE name = $1")
                .bind(&host.name)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(owner) = owner {
                let owner: String = owner.try_get(0)?;
                if owner != platform.name {
                    return Err(StoreError::Conflict(format!(
                        "host {:?} already belongs to platform {owner:?}",
                        host.name
                    )));
                }
            }
        }
        if outcome == ApplyOutcome::Created {
            sqlx::query(
                "INSERT INTO platforms (name, isv, tenant, cloud, spec_json, spec_hash, revision, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&platform.name)
            .bind(&platform.isv)
            .bind(&platform.tenant)
            .bind(&platform.cloud)
            .bind(&platform.spec_json)
            .bind(&platform.spec_hash)
            .bind(revision)
            .bind(platform.updated_at_ms)
            .bind(platform.updated_at_ms)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "UPDATE platforms SET isv = $1, tenant = $2, cloud = $3, spec_json = $4, spec_hash = $5, revision = $6, updated_at = $7 \
                 WHERE name = $8",
            )
            .bind(&platform.isv)
            .bind(&platform.tenant)
            .bind(&platform.cloud)
            .bind(&platform.spec_json)
            .bind(&platform.spec_hash)
            .bind(revision)
            .bind(platform.updated_at_ms)
            .bind(&platform.name)
            .execute(&mut *tx)
            .await?;
        }
        // Hosts dropped from the spec go; kept hosts keep their last-seen time.
        let current = sqlx::query("SELECT name FROM hosts WHERE platform = $1")
            .bind(&platform.name)
            .fetch_all(&mut *tx)
            .await?;
        for row in current {
            let name: String = row.try_get(0)?;
            if !hosts.iter().any(|host| host.name == name) {
                sqlx::query("DELETE FROM hosts WHERE name = $1")
                    .bind(&name)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for host in hosts {
            let updated =
                sqlx::query("UPDATE hosts SET cloud = $1, components_json = $2 WHERE name = $3")
                    .bind(&host.cloud)
                    .bind(&host.components_json)
                    .bind(&host.name)
                    .execute(&mut *tx)
                    .await?;
            if updated.rows_affected() == 0 {
                sqlx::query("INSERT INTO hosts (name, platform, cloud, components_json, last_seen) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&host.name)
                    .bind(&platform.name)
                    .bind(&host.cloud)
                    .bind(&host.components_json)
                    .bind(None::<i64>)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok((outcome, revision))
    }

    pub async fn get_platform(&self, name: &str) -> Result<Option<PlatformRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, isv, tenant, cloud, spec_json, spec_hash, revision, updated_at FROM platforms WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| PlatformRecord::from_row(&row)).transpose()
    }

    pub async fn list_platforms(&self) -> Result<Vec<PlatformRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, isv, tenant, cloud, spec_json, spec_hash, revision, updated_at FROM platforms ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(PlatformRecord::from_row).collect()
    }

    pub async fn list_hosts(&self) -> Result<Vec<HostRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT name, platform, cloud, components_json, last_seen FROM hosts ORDER BY platform, name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(HostRecord::from_row).collect()
    }

    pub async fn get_host(&self, name: &str) -> Result<Option<HostRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, platform, cloud, components_json, last_seen FROM hosts WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| HostRecord::from_row(&row)).transpose()
    }

    /// Moves a host's last-seen time forward (never back: batches may arrive out of order).
    pub async fn touch_host(&self, name: &str, seen_at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE hosts SET last_seen = $1 WHERE name = $2 AND (last_seen IS NULL OR last_seen < $3)")
            .bind(seen_at_ms)
            .bind(name)
            .bind(seen_at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- join tokens and agents ----

    pub async fn insert_join_token(&self, token: &JoinTokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO join_tokens (id, secret_hash, platform, created_by, created_at, expires_at, used_at, used_by_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&token.id)
        .bind(&token.secret_hash)
        .bind(&token.platform)
        .bind(&token.created_by)
        .bind(token.created_at_ms)
        .bind(token.expires_at_ms)
        .bind(token.used_at_ms)
        .bind(&token.used_by_agent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_join_token(&self, id: &str) -> Result<Option<JoinTokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, secret_hash, platform, created_by, created_at, expires_at, used_at, used_by_agent FROM join_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| JoinTokenRecord::from_row(&row)).transpose()
    }

    /// Atomically marks a join token used and registers the agent it enrols; either both happen or neither.
    pub async fn enroll_agent(
        &self,
        token_id: &str,
        agent: &AgentRecord,
    ) -> Result<Result<(), JoinRefusal>, StoreError> {
        let now_ms = agent.created_at_ms;
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE join_tokens SET used_at = $1, used_by_agent = $2 WHERE id = $3 AND used_at IS NULL AND expires_at > $4",
        )
        .bind(now_ms)
        .bind(&agent.id)
        .bind(token_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            tx.rollback().await?;
            let refusal = match self.get_join_token(token_id).await? {
                None => JoinRefusal::Unknown,
                Some(token) if token.used_at_ms.is_some() => JoinRefusal::AlreadyUsed,
                Some(_) => JoinRefusal::Expired,
            };
            return Ok(Err(refusal));
        }
        sqlx::query(
            "INSERT INTO agents (id, secret_hash, host, platform, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&agent.id)
        .bind(&agent.secret_hash)
        .bind(&agent.host)
        .bind(&agent.platform)
        .bind(agent.created_at_ms)
        .bind(agent.revoked_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    pub async fn get_agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let row =
            sqlx::query("SELECT id, secret_hash, host, platform, created_at, revoked_at FROM agents WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| AgentRecord::from_row(&row)).transpose()
    }

    pub async fn list_agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, secret_hash, host, platform, created_at, revoked_at FROM agents ORDER BY host, created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(AgentRecord::from_row).collect()
    }

    /// Revokes an agent; false if there is no such agent or it was already revoked.
    pub async fn revoke_agent(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE agents SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_ms)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() == 1)
    }
}

pub(crate) fn conflict_or(err: sqlx::Error, message: String) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message),
        _ => StoreError::Database(err),
    }
}

pub(crate) fn get_opt_i64(row: &AnyRow, index: usize) -> Result<Option<i64>, StoreError> {
    Ok(row.try_get::<Option<i64>, _>(index)?)
}
