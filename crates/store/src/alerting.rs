//! Alerting rows: events, current alerts with their acknowledgements, maintenance windows,
//! silences, the notification delivery log and worker cursors.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{Store, StoreError, get_opt_i64};

/// A timestamped fact about a platform: a state change, an acknowledgement, a notification
/// sent or failed, a maintenance window starting or ending.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventRecord {
    pub id: String,
    pub at_ms: i64,
    /// `state_change`, `acknowledged`, `notification_sent`, `notification_failed`,
    /// `maintenance_started`, `maintenance_ended`, `flapping_started`, … (the server's vocabulary).
    pub kind: String,
    pub cloud: String,
    pub isv: String,
    pub tenant: String,
    pub platform: String,
    pub host: String,
    pub monitor: String,
    pub alert_key: String,
    pub state_from: Option<String>,
    pub state_to: Option<String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub message: String,
    /// The person or component that caused it (`alice`, `alert-evaluator`).
    pub actor: Option<String>,
    /// Further details as a JSON object.
    pub data_json: String,
}

const EVENT_COLUMNS: &str = "id, at_ms, kind, cloud, isv, tenant, platform, host, monitor, alert_key, state_from, state_to, value, threshold, message, actor, data_json";

impl EventRecord {
    fn from_row(row: &AnyRow) -> Result<EventRecord, StoreError> {
        Ok(EventRecord {
            id: row.try_get(0)?,
            at_ms: row.try_get(1)?,
            kind: row.try_get(2)?,
            cloud: row.try_get(3)?,
            isv: row.try_get(4)?,
            tenant: row.try_get(5)?,
            platform: row.try_get(6)?,
            host: row.try_get(7)?,
            monitor: row.try_get(8)?,
            alert_key: row.try_get(9)?,
            state_from: row.try_get(10)?,
            state_to: row.try_get(11)?,
            value: row.try_get(12)?,
            threshold: row.try_get(13)?,
            message: row.try_get(14)?,
            actor: row.try_get(15)?,
            data_json: row.try_get(16)?,
        })
    }
}

/// Which events to list; every field narrows the result, `None` means any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub kinds: Vec<String>,
    pub cloud: Option<String>,
    pub isv: Option<String>,
    pub tenant: Option<String>,
    pub platform: Option<String>,
    pub host: Option<String>,
    pub alert_key: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// The current state of one alert: a rule on one series, a check, a heartbeat or an
/// alert raised from outside. Rows stay after recovery (state `ok`) so a later raise is
/// compared with what was last notified.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub alert_key: String,
    /// `rule`, `check`, `heartbeat` or `external`.
    pub source: String,
    pub cloud: String,
    pub isv: String,
    pub tenant: String,
    pub platform: String,
    pub host: String,
    pub monitor: String,
    pub metric: String,
    pub labels_json: String,
    pub state: String,
    pub since_ms: i64,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub level_name: Option<String>,
    pub message: String,
    pub flapping: bool,
    pub acked_by: Option<String>,
    pub acked_at_ms: Option<i64>,
    pub ack_comment: Option<String>,
    /// The state the last notification told about, if any.
    pub notified_state: Option<String>,
    pub notified_at_ms: Option<i64>,
    pub escalation_level: i64,
    pub updated_at_ms: i64,
}

const ALERT_COLUMNS: &str = "alert_key, source, cloud, isv, tenant, platform, host, monitor, metric, labels_json, state, since_ms, value, threshold, level_name, message, flapping, acked_by, acked_at, ack_comment, notified_state, notified_at, escalation_level, updated_at";

impl AlertRecord {
    fn from_row(row: &AnyRow) -> Result<AlertRecord, StoreError> {
        Ok(AlertRecord {
            alert_key: row.try_get(0)?,
            source: row.try_get(1)?,
            cloud: row.try_get(2)?,
            isv: row.try_get(3)?,
            tenant: row.try_get(4)?,
            platform: row.try_get(5)?,
            host: row.try_get(6)?,
            monitor: row.try_get(7)?,
            metric: row.try_get(8)?,
            labels_json: row.try_get(9)?,
            state: row.try_get(10)?,
            since_ms: row.try_get(11)?,
            value: row.try_get(12)?,
            threshold: row.try_get(13)?,
            level_name: row.try_get(14)?,
            message: row.try_get(15)?,
            flapping: row.try_get::<i32, _>(16)? != 0,
            acked_by: row.try_get(17)?,
            acked_at_ms: get_opt_i64(row, 18)?,
            ack_comment: row.try_get(19)?,
            notified_state: row.try_get(20)?,
            notified_at_ms: get_opt_i64(row, 21)?,
            escalation_level: row.try_get::<i32, _>(22)?.into(),
            updated_at_ms: row.try_get(23)?,
        })
    }
}

/// A maintenance window; scope and schedule are the server's JSON documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceRecord {
    pub id: String,
    pub scope_json: String,
    pub schedule_json: String,
    pub comment: String,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// A silence: notifications matching its matchers are not sent until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceRecord {
    pub id: String,
    pub matchers_json: String,
    pub expires_at_ms: i64,
    pub comment: String,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// One delivery of one notification to one contact over one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: String,
    pub at_ms: i64,
    pub notification_id: String,
    pub platform: String,
    pub contact: String,
    /// `email`, `sms` or `webhook:<name>`.
    pub channel: String,
    /// `sent`, `failed` or `rate_limited`.
    pub status: String,
    pub attempts: i64,
    pub error: Option<String>,
}

impl Store {
    // ---- events ----

    pub async fn insert_event(&self, event: &EventRecord) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO events ({EVENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        )))
        .bind(&event.id)
        .bind(event.at_ms)
        .bind(&event.kind)
        .bind(&event.cloud)
        .bind(&event.isv)
        .bind(&event.tenant)
        .bind(&event.platform)
        .bind(&event.host)
        .bind(&event.monitor)
        .bind(&event.alert_key)
        .bind(&event.state_from)
        .bind(&event.state_to)
        .bind(event.value)
        .bind(event.threshold)
        .bind(&event.message)
        .bind(&event.actor)
        .bind(&event.data_json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Events matching `filter`, newest first.
    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let mut conditions: Vec<String> = Vec::new();
        // Placeholders are numbered in the order they appear; `binds` keeps that order.
        let mut binds: Vec<BindValue<'_>> = Vec::new();
        if let Some(from) = filter.from_ms {
            binds.push(BindValue::Int(from));
            conditions.push(format!("at_ms >= ${}", binds.len()));
        }
        if let Some(to) = filter.to_ms {
            binds.push(BindValue::Int(to));
            conditions.push(format!("at_ms < ${}", binds.len()));
        }
        for (column, value) in [
            ("cloud", &filter.cloud),
            ("isv", &filter.isv),
            ("tenant", &filter.tenant),
            ("platform", &filter.platform),
            ("host", &filter.host),
            ("alert_key", &filter.alert_key),
        ] {
            if let Some(value) = value {
                binds.push(BindValue::Text(value));
                conditions.push(format!("{column} = ${}", binds.len()));
            }
        }
        if !filter.kinds.is_empty() {
            let mut placeholders: Vec<String> = Vec::new();
            for kind in &filter.kinds {
                binds.push(BindValue::Text(kind));
                placeholders.push(format!("${}", binds.len()));
            }
            conditions.push(format!("kind IN ({})", placeholders.join(", ")));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let limit = filter.limit.clamp(1, 10_000);
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events{where_clause} ORDER BY at_ms DESC, id DESC LIMIT {limit}"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for bind in binds {
            query = match bind {
                BindValue::Text(text) => query.bind(text),
                BindValue::Int(int) => query.bind(int),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(EventRecord::from_row).collect()
    }

    // ---- alerts ----

    /// Inserts or replaces the alert's state, keeping its acknowledgement and notification
    /// fields (those change only through [`Store::ack_alert`] and [`Store::mark_alert_notified`]).
    pub async fn upsert_alert(&self, alert: &AlertRecord) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) \
             ON CONFLICT (alert_key) DO UPDATE SET state = excluded.state, since_ms = excluded.since_ms, value = excluded.value, \
             threshold = excluded.threshold, level_name = excluded.level_name, message = excluded.message, flapping = excluded.flapping, \
             acked_by = excluded.acked_by, acked_at = excluded.acked_at, ack_comment = excluded.ack_comment, \
             escalation_level = excluded.escalation_level, labels_json = excluded.labels_json, updated_at = excluded.updated_at"
        )))
        .bind(&alert.alert_key)
        .bind(&alert.source)
        .bind(&alert.cloud)
        .bind(&alert.isv)
        .bind(&alert.tenant)
        .bind(&alert.platform)
        .bind(&alert.host)
        .bind(&alert.monitor)
        .bind(&alert.metric)
        .bind(&alert.labels_json)
        .bind(&alert.state)
        .bind(alert.since_ms)
        .bind(alert.value)
        .bind(alert.threshold)
        .bind(&alert.level_name)
        .bind(&alert.message)
        .bind(i32::from(alert.flapping))
        .bind(&alert.acked_by)
        .bind(alert.acked_at_ms)
        .bind(&alert.ack_comment)
        .bind(&alert.notified_state)
        .bind(alert.notified_at_ms)
        .bind(i32::try_from(alert.escalation_level).unwrap_or(i32::MAX))
        .bind(alert.updated_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every alert (with `include_ok`) or only those not `ok`, by platform, host and key.
    pub async fn list_alerts(&self, include_ok: bool) -> Result<Vec<AlertRecord>, StoreError> {
        let filter = if include_ok {
            ""
        } else {
            " WHERE state <> 'ok'"
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts{filter} ORDER BY platform, host, alert_key"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(AlertRecord::from_row).collect()
    }

    pub async fn get_alert(&self, key: &str) -> Result<Option<AlertRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_key = $1"
        )))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| AlertRecord::from_row(&row)).transpose()
    }

    /// Records an acknowledgement; false when there is no such alert.
    pub async fn ack_alert(
        &self,
        key: &str,
        by: &str,
        comment: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE alerts SET acked_by = $1, acked_at = $2, ack_comment = $3, updated_at = $4 WHERE alert_key = $5",
        )
        .bind(by)
        .bind(at_ms)
        .bind(comment)
        .bind(at_ms)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Records that a notification told about `state` at `at_ms` at escalation `level`.
    pub async fn mark_alert_notified(
        &self,
        key: &str,
        state: &str,
        at_ms: i64,
        level: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alerts SET notified_state = $1, notified_at = $2, escalation_level = $3 WHERE alert_key = $4",
        )
        .bind(state)
        .bind(at_ms)
        .bind(i32::try_from(level).unwrap_or(i32::MAX))
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- maintenance windows and silences ----

    pub async fn insert_maintenance(&self, window: &MaintenanceRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO maintenance_windows (id, scope_json, schedule_json, comment, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&window.id)
        .bind(&window.scope_json)
        .bind(&window.schedule_json)
        .bind(&window.comment)
        .bind(&window.created_by)
        .bind(window.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Windows not deleted, oldest first.
    pub async fn list_maintenance(&self) -> Result<Vec<MaintenanceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, scope_json, schedule_json, comment, created_by, created_at FROM maintenance_windows WHERE deleted_at IS NULL ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MaintenanceRecord {
                    id: row.try_get(0)?,
                    scope_json: row.try_get(1)?,
                    schedule_json: row.try_get(2)?,
                    comment: row.try_get(3)?,
                    created_by: row.try_get(4)?,
                    created_at_ms: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Marks a window deleted (kept for the record); false when there is no such live window.
    pub async fn delete_maintenance(&self, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.soft_delete("maintenance_windows", id, at_ms).await
    }

    pub async fn insert_silence(&self, silence: &SilenceRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO silences (id, matchers_json, expires_at, comment, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&silence.id)
        .bind(&silence.matchers_json)
        .bind(silence.expires_at_ms)
        .bind(&silence.comment)
        .bind(&silence.created_by)
        .bind(silence.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Silences not deleted and not expired at `now_ms`.
    pub async fn list_silences(&self, now_ms: i64) -> Result<Vec<SilenceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, matchers_json, expires_at, comment, created_by, created_at FROM silences WHERE deleted_at IS NULL AND expires_at > $1 ORDER BY created_at, id",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SilenceRecord {
                    id: row.try_get(0)?,
                    matchers_json: row.try_get(1)?,
                    expires_at_ms: row.try_get(2)?,
                    comment: row.try_get(3)?,
                    created_by: row.try_get(4)?,
                    created_at_ms: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Marks a silence deleted (kept for the record); false when there is no such live silence.
    pub async fn delete_silence(&self, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.soft_delete("silences", id, at_ms).await
    }

    /// Sets `deleted_at` on a live row of `table` (one of this module's constant table names).
    async fn soft_delete(
        &self,
        table: &'static str,
        id: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL"
        )))
        .bind(at_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    // ---- deliveries ----

    pub async fn insert_delivery(&self, delivery: &DeliveryRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO deliveries (id, at_ms, notification_id, platform, contact, channel, status, attempts, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&delivery.id)
        .bind(delivery.at_ms)
        .bind(&delivery.notification_id)
        .bind(&delivery.platform)
        .bind(&delivery.contact)
        .bind(&delivery.channel)
        .bind(&delivery.status)
        .bind(i32::try_from(delivery.attempts).unwrap_or(i32::MAX))
        .bind(&delivery.error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest `limit` deliveries, newest first.
    pub async fn list_deliveries(&self, limit: u32) -> Result<Vec<DeliveryRecord>, StoreError> {
        let limit = limit.clamp(1, 10_000);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, at_ms, notification_id, platform, contact, channel, status, attempts, error FROM deliveries ORDER BY at_ms DESC, id DESC LIMIT {limit}"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryRecord {
                    id: row.try_get(0)?,
                    at_ms: row.try_get(1)?,
                    notification_id: row.try_get(2)?,
                    platform: row.try_get(3)?,
                    contact: row.try_get(4)?,
                    channel: row.try_get(5)?,
                    status: row.try_get(6)?,
                    attempts: row.try_get::<i32, _>(7)?.into(),
                    error: row.try_get(8)?,
                })
            })
            .collect()
    }

    // ---- worker cursors ----

    pub async fn get_cursor(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT value FROM worker_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| row.try_get::<i64, _>(0).map_err(StoreError::from))
            .transpose()
    }

    pub async fn set_cursor(&self, name: &str, value: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO worker_cursors (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum BindValue<'a> {
    Text(&'a str),
    Int(i64),
}
