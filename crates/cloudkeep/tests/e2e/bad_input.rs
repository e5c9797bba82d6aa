//! Bad input gets a clear error naming where and what, and changes nothing stored.

use std::path::PathBuf;

use cloudkeep_protocol::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};

use crate::harness::{TestServer, binary, read_admin, spec};

fn invalid_example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../model/examples/invalid")
        .join(name)
}

#[test]
fn spec_validate_names_file_path_and_expectation() {
    let cases = [
        (
            "wrong-type.json",
            "hosts[0].components[1].kind: invalid type: integer `7`, expected a string",
        ),
        (
            "unknown-field.json",
            "hosts[0].monitors[0].intervall: unknown field `intervall`",
        ),
        ("missing-field.json", "missing field `tenant`"),
        (
            "duplicate-host.json",
            "hosts[1].name: duplicate host \"app1\" (first defined at hosts[0].name)",
        ),
    ];
    for (file, expected) in cases {
        let path = invalid_example(file);
        let output = binary()
            .args(["spec", "validate"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{file} must fail validation");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{file}: error names the file: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{file}: expected {expected:?} in {stderr}"
        );
    }
    let valid = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/examples/acme-prod.json");
    let output = binary()
        .args(["spec", "validate", "--output", "json"])
        .arg(&valid)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let schema = binary().args(["spec", "schema"]).output().unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&schema.stdout).unwrap();
    assert!(
        schema
            .get("properties")
            .and_then(|p| p.get("hosts"))
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_specs_and_bodies_change_nothing_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), cloudkeep_testkit::free_port()).await;
    let admin = server.admin_client();
    admin
        .apply_spec("good.json", spec("p1", &["h1"]))
        .await
        .unwrap();

    // Every invalid example is refused by the server too, with details, and nothing changes.
    for file in [
        "wrong-type.json",
        "unknown-field.json",
        "missing-field.json",
        "duplicate-host.json",
    ] {
        let text = std::fs::read_to_string(invalid_example(file)).unwrap();
        let err = admin.apply_spec(file, text).await.unwrap_err();
        assert_eq!(err.status(), Some(400), "{file}: {err}");
        assert!(
            err.to_string().contains(file),
            "{file}: details name the source: {err}"
        );
    }
    // Through the CLI: a spec that claims another platform's host is a conflict, and the CLI says so.
    let stolen = dir.path().join("stolen.json");
    std::fs::write(&stolen, spec("p2", &["h1"])).unwrap();
    let output = binary()
        .args([
            "spec",
            "apply",
            "--server",
            &server.url(),
            "--api-token",
            &read_admin(dir.path()).token,
        ])
        .arg(&stolen)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("host \"h1\" already belongs to platform \"p1\"")
    );
    let platforms = admin.platforms().await.unwrap();
    assert_eq!(platforms.platforms.len(), 1, "nothing but p1 stored");
    assert_eq!(platforms.platforms[0].revision, 1);

    // A good write, then corrupt and truncated bodies: 400 with a reason, stored series unchanged.
    let good = remote_write::encode(&WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label {
                name: "__name__".into(),
                value: "probe".into(),
            }],
            samples: vec![Sample {
                value: 1.0,
                timestamp: 1_800_000_000_000,
            }],
        }],
    });
    admin.remote_write(good.clone()).await.unwrap();
    let before = admin
        .series("{__name__=~\".+\"}")
        .await
        .unwrap()
        .series
        .len();
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    for (what, body) in [
        ("truncated", good[..good.len() - 3].to_vec()),
        ("garbage", b"definitely not snappy".to_vec()),
        ("corrupt", flipped),
        (
            "empty name",
            remote_write::encode(&WriteRequest {
                timeseries: vec![TimeSeries {
                    labels: vec![],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: 1,
                    }],
                }],
            }),
        ),
    ] {
        match admin.remote_write(body).await {
            Err(err) => {
                assert_eq!(err.status(), Some(400), "{what}: {err}");
                assert!(
                    err.to_string().contains("invalid remote_write body"),
                    "{what}: {err}"
                );
            }
            // A flipped byte can still decode to a valid message; it must then be a well-formed write.
            Ok(()) => assert_eq!(what, "corrupt", "{what} body was accepted"),
        }
    }
    let after = admin
        .series("{__name__=~\".+\"}")
        .await
        .unwrap()
        .series
        .len();
    assert!(
        after == before || after == before + 1,
        "bad bodies stored nothing: {before} -> {after}"
    );
    // Unauthenticated writes are refused.
    let anonymous = cloudkeep_client::Client::new(&server.url(), None).unwrap();
    assert_eq!(
        anonymous.remote_write(good).await.unwrap_err().status(),
        Some(401)
    );
    assert!(server.process.terminate().success());
}
