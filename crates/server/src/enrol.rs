//! Join tokens and agent enrolment: a single-use, expiring token is traded once for a per-agent credential.

use cloudkeep_protocol::api::{
    AgentList, AgentSummary, EnrollRequest, EnrollResponse, TokenCreateRequest, TokenCreateResponse,
};
use cloudkeep_protocol::credential::{Credential, CredentialKind};
use cloudkeep_stdx::ids::random_hex;
use cloudkeep_store::{AgentRecord, JoinRefusal, JoinTokenRecord};

use crate::auth::{Permission, digests_equal, hash_secret};
use crate::{ErrorKind, Principal, Server, ServiceError};

const DEFAULT_TOKEN_TTL_SECONDS: u64 = 3600;
const MAX_TOKEN_TTL_SECONDS: u64 = 7 * 24 * 3600;

impl Server {
    pub async fn create_join_token(
        &self,
        caller: &Principal,
        request: &TokenCreateRequest,
    ) -> Result<TokenCreateResponse, ServiceError> {
        caller.require(Permission::CreateJoinToken)?;
        let result = self.create_join_token_unaudited(caller, request).await;
        let target = match &result {
            Ok(created) => format!("platform:{} token:{}", created.platform, created.token_id),
            Err(_) => format!("platform:{}", request.platform),
        };
        self.audit(caller, "token.create", &target, &result).await;
        result
    }

    async fn create_join_token_unaudited(
        &self,
        caller: &Principal,
        request: &TokenCreateRequest,
    ) -> Result<TokenCreateResponse, ServiceError> {
        let ttl_seconds = request.ttl_seconds.unwrap_or(DEFAULT_TOKEN_TTL_SECONDS);
        if ttl_seconds == 0 || ttl_seconds > MAX_TOKEN_TTL_SECONDS {
            return Err(ServiceError::bad_request(format!(
                "ttl_seconds must be between 1 and {MAX_TOKEN_TTL_SECONDS}, got {ttl_seconds}"
            )));
        }
        if self
            .store()
            .get_platform(&request.platform)
            .await?
            .is_none()
        {
            return Err(ServiceError::not_found(format!(
                "no platform {:?}; apply its spec first (cloudkeep spec apply)",
                request.platform
            )));
        }
        let credential = Credential::new(CredentialKind::Join, random_hex(8), random_hex(24));
        let now_ms = self.now_ms();
        let expires_at_ms = now_ms + i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2_000) * 1000;
        self.store()
            .insert_join_token(&JoinTokenRecord {
                id: credential.id.clone(),
                secret_hash: hash_secret(&credential.secret),
                platform: request.platform.clone(),
                created_by: caller.actor(),
                created_at_ms: now_ms,
                expires_at_ms,
                used_at_ms: None,
                used_by_agent: None,
            })
            .await?;
        Ok(TokenCreateResponse {
            token: credential.encode(),
            token_id: credential.id,
            platform: request.platform.clone(),
            expires_at_ms,
        })
    }

    /// Trades a join token for an agent credential. Unknown, expired, reused and mismatched tokens get one answer.
    pub async fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse, ServiceError> {
        let refused = |reason: &str| {
            tracing::warn!(host = %request.hostname, reason, "enrolment refused");
            ServiceError::new(
                ErrorKind::Unauthenticated,
                "join token is unknown, expired or already used",
            )
        };
        let Some(credential) =
            Credential::parse(&request.join_token).filter(|c| c.kind == CredentialKind::Join)
        else {
            return Err(refused("malformed token"));
        };
        let Some(token) = self.store().get_join_token(&credential.id).await? else {
            return Err(refused("unknown token"));
        };
        if !digests_equal(&token.secret_hash, &hash_secret(&credential.secret)) {
            return Err(refused("wrong secret"));
        }
        let host = self.store().get_host(&request.hostname).await?;
        match host {
            Some(host) if host.platform == token.platform => {}
            _ => {
                // Checked before the token is spent, so a typo in the host name does not burn the token.
                return Err(ServiceError::bad_request(format!(
                    "host {:?} is not declared in platform {:?}; add it to the spec and apply it",
                    request.hostname, token.platform
                )));
            }
        }
        let agent_credential =
            Credential::new(CredentialKind::Agent, random_hex(8), random_hex(24));
        let agent = AgentRecord {
            id: agent_credential.id.clone(),
            secret_hash: hash_secret(&agent_credential.secret),
            host: request.hostname.clone(),
            platform: token.platform.clone(),
            created_at_ms: self.now_ms(),
            revoked_at_ms: None,
        };
        match self.store().enroll_agent(&credential.id, &agent).await? {
            Ok(()) => {}
            Err(JoinRefusal::Unknown) => return Err(refused("unknown token")),
            Err(JoinRefusal::Expired) => return Err(refused("expired token")),
            Err(JoinRefusal::AlreadyUsed) => return Err(refused("token already used")),
        }
        self.audit_system(
            "agent.enroll",
            &format!("agent:{} host:{}", agent.id, agent.host),
            "ok",
        )
        .await;
        tracing::info!(agent = %agent.id, host = %agent.host, platform = %agent.platform, "agent enrolled");
        Ok(EnrollResponse {
            agent_id: agent.id,
            credential: agent_credential.encode(),
            host: agent.host,
            platform: agent.platform,
        })
    }

    pub async fn agents(&self, caller: &Principal) -> Result<AgentList, ServiceError> {
        caller.require(Permission::Read)?;
        let agents = self.store().list_agents().await?;
        let result = Ok(AgentList {
            agents: agents
                .into_iter()
                .map(|agent| AgentSummary {
                    id: agent.id,
                    host: agent.host,
                    platform: agent.platform,
                    created_at_ms: agent.created_at_ms,
                    revoked_at_ms: agent.revoked_at_ms,
                })
                .collect(),
        });
        self.audit(caller, "agents.list", "agents", &result).await;
        result
    }

    pub async fn revoke_agent(
        &self,
        caller: &Principal,
        agent_id: &str,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::ManageAgents)?;
        let result = match self.store().revoke_agent(agent_id, self.now_ms()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ServiceError::not_found(format!(
                "no active agent {agent_id:?}"
            ))),
            Err(err) => Err(err.into()),
        };
        self.audit(
            caller,
            "agent.revoke",
            &format!("agent:{agent_id}"),
            &result,
        )
        .await;
        result
    }
}
