//! The agent's state directory: its credential (mode 0600) and its outbox.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What enrolment gave this agent; written once, read at every start.
#[derive(Clone, Serialize, Deserialize)]
pub struct AgentIdentity {
    pub server: String,
    pub agent_id: String,
    pub credential: String,
    pub host: String,
    pub platform: String,
}

impl std::fmt::Debug for AgentIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentIdentity")
            .field("server", &self.server)
            .field("agent_id", &self.agent_id)
            .field("host", &self.host)
            .field("platform", &self.platform)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid agent identity: {message}")]
    Corrupt { path: PathBuf, message: String },
}

fn identity_path(state_dir: &Path) -> PathBuf {
    state_dir.join("identity.json")
}

pub fn load_identity(state_dir: &Path) -> Result<Option<AgentIdentity>, StateError> {
    let path = identity_path(state_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| StateError::Corrupt {
                path,
                message: err.to_string(),
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Io { path, source }),
    }
}

/// Writes the identity atomically with mode 0600: it holds a secret.
pub fn save_identity(state_dir: &Path, identity: &AgentIdentity) -> Result<(), StateError> {
    let path = identity_path(state_dir);
    let io = |source| StateError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(io)?;
    let bytes =
        serde_json::to_vec_pretty(identity).map_err(|err| io(std::io::Error::other(err)))?;
    write_private_file(&path, &bytes).map_err(io)
}

/// Writes `bytes` to `path` via a temp file and rename, mode 0600, fsynced.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn identity_round_trips_privately_and_corruption_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_identity(dir.path()).unwrap().is_none());
        let identity = AgentIdentity {
            server: "http://x".into(),
            agent_id: "a".into(),
            credential: "cka_a_secret".into(),
            host: "h".into(),
            platform: "p".into(),
        };
        save_identity(dir.path(), &identity).unwrap();
        let mode = std::fs::metadata(dir.path().join("identity.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            load_identity(dir.path()).unwrap().unwrap().credential,
            "cka_a_secret"
        );
        assert!(!format!("{identity:?}").contains("secret"));
        std::fs::write(dir.path().join("identity.json"), b"{oops").unwrap();
        let err = load_identity(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("identity.json: not a valid agent identity"),
            "{err}"
        );
    }
}
