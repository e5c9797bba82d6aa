//! Backup keys: `cloudkeep keys create` keeps the private key on the operator's side (a 0600 file that
//! is never overwritten) and gives the server only the public key; the stock `age` tool can use both.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use cloudkeep_protocol::backup::BackupKeyCreate;

use crate::harness::{TestServer, binary, read_admin};

const AGE: &str = "/usr/bin/age";

fn keys(server: &TestServer, args: &[&str]) -> std::process::Output {
    let token = read_admin(&server.data_dir).token;
    binary()
        .arg("keys")
        .args(args)
        .args(["--server", &server.url(), "--api-token", &token])
        .output()
        .unwrap()
}

/// Every byte under `dir`, concatenated (the server's state store, WAL and blocks).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            bytes.extend(all_bytes(&path));
        } else if let Ok(content) = std::fs::read(&path) {
            bytes.extend(content);
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_key_stays_with_the_custodian_and_the_server_keeps_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start(&dir.path().join("server"), cloudkeep_testkit::free_port()).await;
    let key_file = dir.path().join("acme.key");

    let created = keys(
        &server,
        &[
            "create",
            "--isv",
            "acme",
            "--out",
            key_file.to_str().unwrap(),
            "-m",
            "custodian: alice",
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is private");
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    let identities = cloudkeep_backup::Identity::parse_key_file(&key_text).unwrap();
    assert_eq!(identities.len(), 1);
    let secret = identities[0].to_secret_string();
    assert!(secret.starts_with("AGE-SECRET-KEY-1"));
    let recipient = identities[0].to_recipient().to_string();

    let admin = server.admin_client();
    let stored = admin.backup_keys(Some("acme")).await.unwrap().keys;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].recipient, recipient);
    assert_eq!(stored[0].comment, "custodian: alice");

    // A second create never overwrites the key file.
    let again = keys(
        &server,
        &[
            "create",
            "--isv",
            "acme",
            "--out",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("never overwritten"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key_text);
    assert_eq!(admin.backup_keys(None).await.unwrap().keys.len(), 1);

    // A secret key pasted as a recipient is refused, and the answer does not repeat it.
    let refused = admin
        .create_backup_key(&BackupKeyCreate {
            isv: "acme".into(),
            recipient: secret.clone(),
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400));
    assert!(!refused.to_string().contains(&secret), "{refused}");
    let bad_isv = admin
        .create_backup_key(&BackupKeyCreate {
            isv: "acme corp/../x".into(),
            recipient: recipient.clone(),
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_isv.status(), Some(400), "{bad_isv}");

    // The secret is nowhere on the server's side: not in its files, not in its log.
    let server_bytes = all_bytes(&server.data_dir);
    assert!(
        !server_bytes
            .windows(secret.len())
            .any(|window| window == secret.as_bytes()),
        "the private key reached the server's data dir"
    );
    assert!(!server.process.output_text().contains(&secret));

    // The stock tool encrypts to the stored public key and decrypts with the custodian's file.
    if !Path::new(AGE).exists() {
        assert!(
            !cloudkeep_testkit::in_ci(),
            "{AGE} missing (CI=true): apt-get install age"
        );
        return;
    }
    let sealed = dir.path().join("note.age");
    let mut encrypt = Command::new(AGE)
        .args(["-r", &recipient, "-o"])
        .arg(&sealed)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut encrypt.stdin.take().unwrap(), b"restore me").unwrap();
    assert!(encrypt.wait().unwrap().success());
    let opened = Command::new(AGE)
        .arg("-d")
        .arg("-i")
        .arg(&key_file)
        .arg(&sealed)
        .output()
        .unwrap();
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    assert_eq!(opened.stdout, b"restore me");
}
