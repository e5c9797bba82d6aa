//! Backup service functions: the ISVs' public backup keys (the private halves never reach the
//! server); the agents' backup jobs in `backup/jobs.rs`, the catalog and repository access in
//! `backup/catalog.rs`, WAL runs in `backup/ranges.rs`.

mod catalog;
mod drill;
mod jobs;
mod ranges;

use cloudkeep_protocol::backup::{BackupKeyCreate, BackupKeyList, BackupKeyView};
use cloudkeep_store::BackupKeyRecord;

use crate::auth::Permission;
use crate::{Principal, Server, ServiceError};

/// Longest ISV name accepted.
const MAX_ISV_LEN: usize = 64;

impl Server {
    /// Stores the public half of an ISV's backup key pair (made by `cloudkeep keys create`).
    pub async fn backup_key_create(
        &self,
        caller: &Principal,
        request: &BackupKeyCreate,
    ) -> Result<BackupKeyView, ServiceError> {
        caller.require(Permission::ManageBackupKeys)?;
        let result = self.backup_key_create_unaudited(caller, request).await;
        self.audit(
            caller,
            "backup_keys.create",
            &format!("isv:{}", request.isv),
            &result,
        )
        .await;
        result
    }

    async fn backup_key_create_unaudited(
        &self,
        caller: &Principal,
        request: &BackupKeyCreate,
    ) -> Result<BackupKeyView, ServiceError> {
        let isv = request.isv.trim();
        if isv.is_empty()
            || isv.len() > MAX_ISV_LEN
            || !isv
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ServiceError::bad_request(format!(
                "isv: {isv:?} is not a name (1 to {MAX_ISV_LEN} letters, digits, '-', '_', '.')"
            )));
        }
        // The error never repeats what was sent: it may be a secret key pasted by mistake.
        let recipient = cloudkeep_backup::Recipient::parse(&request.recipient)
            .map_err(|err| ServiceError::bad_request(format!("recipient: {err}")))?;
        let record = BackupKeyRecord {
            id: cloudkeep_stdx::ids::random_hex(8),
            isv: isv.to_owned(),
            recipient: recipient.to_string(),
            comment: request.comment.clone(),
            created_by: caller.actor(),
            created_at_ms: self.now_ms(),
        };
        self.store().insert_backup_key(&record).await?;
        Ok(key_view(record))
    }

    /// The stored public keys, of one ISV or all.
    pub async fn backup_keys(
        &self,
        caller: &Principal,
        isv: Option<&str>,
    ) -> Result<BackupKeyList, ServiceError> {
        self.audited_read(caller, "backup_keys.list", "backup_keys", async {
            let records = self.store().list_backup_keys(isv).await?;
            Ok(BackupKeyList {
                keys: records.into_iter().map(key_view).collect(),
            })
        })
        .await
    }
}

fn key_view(record: BackupKeyRecord) -> BackupKeyView {
    BackupKeyView {
        id: record.id,
        isv: record.isv,
        recipient: record.recipient,
        comment: record.comment,
        created_by: record.created_by,
        created_at_ms: record.created_at_ms,
    }
}
