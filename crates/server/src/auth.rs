//! Who is calling: people (argon2 passwords, API tokens) and agents (per-agent credentials), roles, and the audit trail.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use cloudkeep_protocol::api::{AuditEntry, AuditList, LoginRequest, LoginResponse};
use cloudkeep_protocol::credential::{Credential, CredentialKind};
use cloudkeep_stdx::ids::random_hex;
use cloudkeep_store::{ApiTokenRecord, UserRecord};

use crate::{ErrorKind, Server, ServiceError};

/// How long a token from `POST /api/v1/sessions` lives.
const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

/// A person's role; each grants the least that its holder needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including people and agents.
    Admin,
    /// Applies specs, enrols hosts, reads everything.
    Operator,
    /// Reads status and metrics.
    Viewer,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

/// What an authenticated caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    WriteMetrics,
    ApplySpec,
    CreateJoinToken,
    ManageAgents,
    ReadAudit,
    /// Acknowledge alerts, manage maintenance windows and silences, send test notifications.
    OperateAlerts,
    /// Raise alerts from outside (Alertmanager's API).
    RaiseAlerts,
    /// Agents: fetch their own config and report their checks.
    AgentReport,
    /// Store ISVs' public backup keys (admins only: they decide who can read every backup).
    ManageBackupKeys,
    /// Read a platform's backup repository location with its credentials, for restores and
    /// verification (admins only: whoever holds them can delete backups).
    AccessBackupRepository,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User {
        name: String,
        role: Role,
    },
    Agent {
        id: String,
        host: String,
        platform: String,
    },
}

impl Principal {
    /// The name written to the audit log.
    pub fn actor(&self) -> String {
        match self {
            Principal::User { name, .. } => format!("user:{name}"),
            Principal::Agent { id, .. } => format!("agent:{id}"),
        }
    }

    pub fn is_person(&self) -> bool {
        matches!(self, Principal::User { .. })
    }

    pub fn allows(&self, permission: Permission) -> bool {
        match self {
            Principal::Agent { .. } => {
                matches!(
                    permission,
                    Permission::WriteMetrics | Permission::AgentReport
                )
            }
            Principal::User {
                role: Role::Admin, ..
            } => permission != Permission::AgentReport,
            Principal::User {
                role: Role::Operator,
                ..
            } => !matches!(
                permission,
                Permission::ReadAudit
                    | Permission::AgentReport
                    | Permission::ManageBackupKeys
                    | Permission::AccessBackupRepository
            ),
            Principal::User {
                role: Role::Viewer, ..
            } => permission == Permission::Read,
        }
    }

    pub fn require(&self, permission: Permission) -> Result<(), ServiceError> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(ServiceError::forbidden(format!(
                "{} may not {permission:?}",
                self.actor()
            )))
        }
    }
}

/// The first admin's credentials, shown once when a new installation starts.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct InitialAdmin {
    pub user: String,
    pub password: String,
    pub token: String,
}

impl std::fmt::Debug for InitialAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialAdmin")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

pub(crate) fn hash_secret(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex().to_string()
}

/// Compares two hex digests in time independent of where they differ.
pub(crate) fn digests_equal(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

pub(crate) fn hash_password(password: &str) -> Result<String, ServiceError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash: PasswordHash| hash.to_string())
        .map_err(|err| ServiceError::internal("hashing a password failed", &err))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

impl Server {
    /// On a new installation (no users), creates `admin` with a random password and an API token.
    pub(crate) async fn bootstrap_admin(&self) -> Result<Option<InitialAdmin>, ServiceError> {
        if self.store().user_count().await? > 0 {
            return Ok(None);
        }
        let password = random_hex(12);
        let now_ms = self.now_ms();
        self.store()
            .insert_user(&UserRecord {
                name: "admin".into(),
                password_hash: hash_password(&password)?,
                role: Role::Admin.as_str().into(),
                created_at_ms: now_ms,
                disabled: false,
            })
            .await?;
        let token = self.issue_api_token("admin", None).await?;
        self.audit_system("user.bootstrap", "user:admin", "ok")
            .await;
        tracing::info!(user = "admin", "created the first admin");
        Ok(Some(InitialAdmin {
            user: "admin".into(),
            password,
            token,
        }))
    }

    /// Creates a person and returns nothing secret; the password is hashed with argon2.
    pub async fn create_user(
        &self,
        caller: &Principal,
        name: &str,
        password: &str,
        role: Role,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::ManageAgents)?;
        if password.len() < 12 {
            return Err(ServiceError::bad_request(
                "password must have at least 12 characters",
            ));
        }
        let record = UserRecord {
            name: name.into(),
            password_hash: hash_password(password)?,
            role: role.as_str().into(),
            created_at_ms: self.now_ms(),
            disabled: false,
        };
        let result = self
            .store()
            .insert_user(&record)
            .await
            .map_err(ServiceError::from);
        self.audit(caller, "user.create", &format!("user:{name}"), &result)
            .await;
        result
    }

    async fn issue_api_token(
        &self,
        user: &str,
        expires_at_ms: Option<i64>,
    ) -> Result<String, ServiceError> {
        let credential = Credential::new(CredentialKind::User, random_hex(8), random_hex(24));
        self.store()
            .insert_api_token(&ApiTokenRecord {
                id: credential.id.clone(),
                secret_hash: hash_secret(&credential.secret),
                user: user.into(),
                created_at_ms: self.now_ms(),
                expires_at_ms,
                revoked_at_ms: None,
            })
            .await?;
        Ok(credential.encode())
    }

    /// Trades a user name and password for an API token valid for 12 hours.
    pub async fn login(&self, request: &LoginRequest) -> Result<LoginResponse, ServiceError> {
        let user = self.store().get_user(&request.user).await?;
        // Verify against a dummy hash for unknown users so timing does not tell which names exist.
        let valid = match &user {
            Some(user) if !user.disabled => verify_password(&request.password, &user.password_hash),
            _ => {
                let _ = verify_password(&request.password, dummy_hash());
                false
            }
        };
        let actor = format!("user:{}", request.user);
        if !valid {
            self.audit_system("session.create", &actor, "refused").await;
            return Err(ServiceError::new(
                ErrorKind::Unauthenticated,
                "wrong user name or password",
            ));
        }
        let expires_at_ms = self.now_ms() + SESSION_TTL_MS;
        let token = self
            .issue_api_token(&request.user, Some(expires_at_ms))
            .await?;
        self.audit_system("session.create", &actor, "ok").await;
        Ok(LoginResponse {
            token,
            expires_at_ms,
        })
    }

    /// Resolves a bearer credential to a principal, or refuses it.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, ServiceError> {
        let credential = bearer
            .and_then(Credential::parse)
            .ok_or_else(ServiceError::unauthenticated)?;
        let now_ms = self.now_ms();
        match credential.kind {
            CredentialKind::User => {
                let token = self
                    .store()
                    .get_api_token(&credential.id)
                    .await?
                    .ok_or_else(ServiceError::unauthenticated)?;
                let expired = token.expires_at_ms.is_some_and(|expires| expires <= now_ms);
                if expired
                    || token.revoked_at_ms.is_some()
                    || !digests_equal(&token.secret_hash, &hash_secret(&credential.secret))
                {
                    return Err(ServiceError::unauthenticated());
                }
                let user = self
                    .store()
                    .get_user(&token.user)
                    .await?
                    .ok_or_else(ServiceError::unauthenticated)?;
                let role = Role::parse(&user.role).ok_or_else(ServiceError::unauthenticated)?;
                if user.disabled {
                    return Err(ServiceError::unauthenticated());
                }
                Ok(Principal::User {
                    name: user.name,
                    role,
                })
            }
            CredentialKind::Agent => {
                let agent = self
                    .store()
                    .get_agent(&credential.id)
                    .await?
                    .ok_or_else(ServiceError::unauthenticated)?;
                if agent.revoked_at_ms.is_some()
                    || !digests_equal(&agent.secret_hash, &hash_secret(&credential.secret))
                {
                    return Err(ServiceError::unauthenticated());
                }
                Ok(Principal::Agent {
                    id: agent.id,
                    host: agent.host,
                    platform: agent.platform,
                })
            }
            CredentialKind::Join => Err(ServiceError::unauthenticated()),
        }
    }

    /// Records a person's action and its outcome; agents' data pushes are not access actions and are not recorded.
    pub async fn audit<T>(
        &self,
        caller: &Principal,
        action: &str,
        target: &str,
        result: &Result<T, ServiceError>,
    ) {
        if !caller.is_person() {
            return;
        }
        let outcome = match result {
            Ok(_) => "ok".to_owned(),
            Err(err) => format!("error:{}", err.kind.as_str()),
        };
        self.write_audit(&caller.actor(), action, target, &outcome)
            .await;
    }

    /// A read of the state store by `caller`: permission checked first, then the read, then the audit
    /// entry (failed reads are audited too).
    pub(crate) async fn audited_read<T>(
        &self,
        caller: &Principal,
        action: &str,
        target: &str,
        read: impl std::future::Future<Output = Result<T, cloudkeep_store::StoreError>>,
    ) -> Result<T, ServiceError> {
        caller.require(Permission::Read)?;
        let result = read.await.map_err(ServiceError::from);
        self.audit(caller, action, target, &result).await;
        result
    }

    pub(crate) async fn audit_system(&self, action: &str, target: &str, outcome: &str) {
        self.write_audit("system", action, target, outcome).await;
    }

    async fn write_audit(&self, actor: &str, action: &str, target: &str, outcome: &str) {
        if let Err(err) = self
            .store()
            .append_audit(self.now_ms(), actor, action, target, outcome, "")
            .await
        {
            // The action already happened; losing its record must be loud.
            tracing::error!(error = %err, actor, action, target, "writing the audit log failed");
        }
    }

    pub async fn audit_log(&self, caller: &Principal) -> Result<AuditList, ServiceError> {
        caller.require(Permission::ReadAudit)?;
        let records = self.store().list_audit().await?;
        let chain_valid = cloudkeep_store::chain_is_valid(&records);
        let entries = records
            .into_iter()
            .map(|record| AuditEntry {
                seq: record.seq,
                at_ms: record.at_ms,
                actor: record.actor,
                action: record.action,
                target: record.target,
                outcome: record.outcome,
                hash: record.hash,
            })
            .collect();
        Ok(AuditList {
            entries,
            chain_valid,
        })
    }
}

/// An argon2 hash of a random string, used to spend the same time on unknown users.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_hex(16)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn roles_grant_least_privilege() {
        let viewer = Principal::User {
            name: "v".into(),
            role: Role::Viewer,
        };
        let operator = Principal::User {
            name: "o".into(),
            role: Role::Operator,
        };
        let agent = Principal::Agent {
            id: "a".into(),
            host: "h".into(),
            platform: "p".into(),
        };
        assert!(viewer.allows(Permission::Read));
        assert!(!viewer.allows(Permission::ApplySpec));
        assert!(!viewer.allows(Permission::WriteMetrics));
        assert!(operator.allows(Permission::ApplySpec));
        assert!(!operator.allows(Permission::ReadAudit));
        assert!(!operator.allows(Permission::ManageBackupKeys));
        assert!(!operator.allows(Permission::AccessBackupRepository));
        assert!(!viewer.allows(Permission::AccessBackupRepository));
        assert!(!agent.allows(Permission::AccessBackupRepository));
        assert!(agent.allows(Permission::WriteMetrics));
        assert!(!agent.allows(Permission::Read));
    }

    #[test]
    fn digest_comparison() {
        assert!(digests_equal("abcd", "abcd"));
        assert!(!digests_equal("abcd", "abce"));
        assert!(!digests_equal("abcd", "abc"));
    }
}
