//! Backup messages of the API: the public keys backups are encrypted to.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/backup-keys`: store the public half of an ISV's backup key pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupKeyCreate {
    /// The ISV whose backups are encrypted to this key.
    pub isv: String,
    /// The age X25519 public key, `age1…`. Never the secret key: the server refuses one.
    pub recipient: String,
    /// Who holds the private key, for the record.
    #[serde(default)]
    pub comment: String,
}

/// One stored public key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupKeyView {
    pub id: String,
    pub isv: String,
    pub recipient: String,
    pub comment: String,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// `GET /api/v1/backup-keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupKeyList {
    pub keys: Vec<BackupKeyView>,
}
