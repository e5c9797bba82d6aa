//! `cloudkeep keys`: backup key pairs are made here, on the operator's machine; the private key goes to a
//! file for the ISV's key custodian and only the public key is sent to the server.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::Context;
use cloudkeep_protocol::backup::BackupKeyCreate;

use crate::cli::KeysCommand;
use crate::context;
use crate::output::{self, print};

pub async fn run(command: &KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            isv,
            out,
            comment,
            remote,
        } => {
            let client = context::client(remote)?;
            let pair = cloudkeep_backup::generate_keypair();
            // Written before the server learns the public key, so that no backup can ever be encrypted
            // to a key whose private half was not saved. `create_new`: an existing key file is never lost.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(out)
                .with_context(|| {
                    format!(
                        "cannot create {} (an existing key file is never overwritten)",
                        out.display()
                    )
                })?;
            file.write_all(pair.identity.to_key_file().as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", out.display()))?;
            drop(file);
            let stored = client
                .create_backup_key(&BackupKeyCreate {
                    isv: isv.clone(),
                    recipient: pair.recipient.to_string(),
                    comment: comment.clone(),
                })
                .await;
            let view = match stored {
                Ok(view) => view,
                Err(err) => {
                    // Nothing was encrypted to it: the file would only mislead its holder.
                    let _ = std::fs::remove_file(out);
                    return Err(err)
                        .context("the server did not store the public key; no key file was kept");
                }
            };
            eprintln!(
                "private key written to {} (mode 0600): give it to the key custodian and keep a copy offline; \
                 the server cannot decrypt backups without it and never sees it",
                out.display()
            );
            print(
                remote.output,
                &view,
                &["ISV", "RECIPIENT", "ID"],
                vec![vec![
                    view.isv.clone(),
                    view.recipient.clone(),
                    view.id.clone(),
                ]],
            )
        }
        KeysCommand::List { isv, remote } => {
            let list = context::client(remote)?.backup_keys(isv.as_deref()).await?;
            let now = cloudkeep_stdx::Clock::now_ms(&cloudkeep_stdx::SystemClock);
            let rows = list
                .keys
                .iter()
                .map(|key| {
                    vec![
                        key.isv.clone(),
                        key.recipient.clone(),
                        output::age(Some(key.created_at_ms), now),
                        key.comment.clone(),
                    ]
                })
                .collect();
            print(
                remote.output,
                &list,
                &["ISV", "RECIPIENT", "CREATED", "COMMENT"],
                rows,
            )
        }
    }
}
