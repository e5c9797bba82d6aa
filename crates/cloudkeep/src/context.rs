//! The operator context: server URL and API token in the user's config dir (mode 0600), like a kubeconfig.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::cli::Remote;

#[derive(Clone, Serialize, Deserialize)]
pub struct OperatorContext {
    pub server: String,
    pub token: String,
}

/// `$XDG_CONFIG_HOME/cloudkeep/context.json`, else `~/.config/cloudkeep/context.json`.
pub fn context_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("cloudkeep").join("context.json"))
}

/// `$XDG_DATA_HOME/cloudkeep`, else `~/.local/share/cloudkeep`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("cloudkeep")
}

pub fn save(context: &OperatorContext) -> anyhow::Result<PathBuf> {
    let path = context_path()
        .context("neither XDG_CONFIG_HOME nor HOME is set; cannot save the operator context")?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let bytes = serde_json::to_vec_pretty(context)?;
    cloudkeep_agent::state::write_private_file(&path, &bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn load() -> anyhow::Result<Option<OperatorContext>> {
    let Some(path) = context_path() else {
        return Ok(None);
    };
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not a valid operator context", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// The typed client for an operator verb: flags and environment win over the saved context.
pub fn client(remote: &Remote) -> anyhow::Result<cloudkeep_client::Client> {
    let saved = load()?;
    let server = remote
        .server
        .clone()
        .or_else(|| saved.as_ref().map(|context| context.server.clone()))
        .context("no server: pass --server URL, set CLOUDKEEP_SERVER, or run `cloudkeep up` / `cloudkeep login`")?;
    let token = remote.api_token.clone().or_else(|| {
        saved
            .filter(|context| {
                remote.server.is_none() || remote.server.as_deref() == Some(&context.server)
            })
            .map(|c| c.token)
    });
    Ok(cloudkeep_client::Client::new(&server, token)?)
}
