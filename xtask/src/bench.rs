//! `cargo xtask bench …`: Cloudkeep against reference tools on this machine.

pub mod agent;
pub mod alerts;
pub mod backup;
pub mod ingest;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Options shared by every benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Workspace root to build cloudkeep in (default: the parent of the xtask crate).
    #[arg(long)]
    pub project: Option<PathBuf>,
    /// Use this cloudkeep binary instead of `cargo build --release -p cloudkeep`.
    #[arg(long)]
    pub cloudkeep_bin: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep the temporary data and log directories (their paths are printed).
    #[arg(long)]
    pub keep_temp: bool,
}

impl CommonArgs {
    pub fn project(&self) -> PathBuf {
        self.project.clone().unwrap_or_else(|| {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).to_path_buf()
        })
    }

    pub fn cloudkeep_bin(&self) -> Result<PathBuf> {
        crate::cloudkeep::binary(self.cloudkeep_bin.as_deref(), &self.project())
    }

    pub fn write_json(&self, value: &serde_json::Value) -> Result<()> {
        if let Some(path) = &self.json {
            std::fs::write(path, serde_json::to_vec_pretty(value)?)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("\nresults written to {}", path.display());
        }
        Ok(())
    }

    /// A fresh temporary directory for one contestant; kept when `--keep-temp`.
    pub fn temp_dir(&self, name: &str) -> Result<TempRoot> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ck-bench-{name}-"))
            .tempdir()
            .context("creating a temporary directory")?;
        Ok(TempRoot {
            dir: Some(dir),
            keep: self.keep_temp,
        })
    }
}

/// A temporary directory that is removed on drop unless it is to be kept.
#[derive(Debug)]
pub struct TempRoot {
    dir: Option<tempfile::TempDir>,
    keep: bool,
}

impl TempRoot {
    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        if self.keep
            && let Some(dir) = self.dir.take()
        {
            eprintln!("kept {}", dir.keep().display());
        }
    }
}
