//! Join tokens: unknown, expired and reused tokens are refused and change nothing; revoked agents are refused.

use std::time::Duration;

use cloudkeep_client::Client;
use cloudkeep_protocol::api::{EnrollRequest, TokenCreateRequest};
use cloudkeep_protocol::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};

use crate::harness::{TestServer, spec};

fn enroll_request(token: &str, host: &str) -> EnrollRequest {
    EnrollRequest {
        join_token: token.into(),
        hostname: host.into(),
        agent_version: "test".into(),
    }
}

fn one_sample() -> Vec<u8> {
    remote_write::encode(&WriteRequest {
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
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_tokens_are_single_use_expiring_and_revocation_sticks() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), cloudkeep_testkit::free_port()).await;
    let admin = server.admin_client();
    let anonymous = Client::new(&server.url(), None).unwrap();
    admin
        .apply_spec("p.json", spec("p1", &["h1", "h2"]))
        .await
        .unwrap();

    // Unknown and malformed tokens.
    for token in [
        "ckj_0000000000000000_00000000000000000000000000000000000000000000000",
        "garbage",
    ] {
        let err = anonymous
            .enroll(&enroll_request(token, "h1"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(401), "{err}");
    }
    // A token for a platform that does not exist.
    let err = admin
        .create_token(&TokenCreateRequest {
            platform: "nope".into(),
            ttl_seconds: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");

    // A valid token works once.
    let token = admin
        .create_token(&TokenCreateRequest {
            platform: "p1".into(),
            ttl_seconds: None,
        })
        .await
        .unwrap();
    // A host not in the platform is refused without spending the token.
    let err = anonymous
        .enroll(&enroll_request(&token.token, "stranger"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(
        err.to_string().contains("not declared in platform"),
        "{err}"
    );
    let enrolled = anonymous
        .enroll(&enroll_request(&token.token, "h1"))
        .await
        .unwrap();
    assert_eq!(enrolled.host, "h1");
    let reused = anonymous
        .enroll(&enroll_request(&token.token, "h2"))
        .await
        .unwrap_err();
    assert_eq!(reused.status(), Some(401), "reused token refused: {reused}");

    // An expired token.
    let short = admin
        .create_token(&TokenCreateRequest {
            platform: "p1".into(),
            ttl_seconds: Some(1),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired = anonymous
        .enroll(&enroll_request(&short.token, "h2"))
        .await
        .unwrap_err();
    assert_eq!(
        expired.status(),
        Some(401),
        "expired token refused: {expired}"
    );
    assert_eq!(
        admin.agents().await.unwrap().agents.len(),
        1,
        "refusals registered no agent"
    );

    // The agent credential writes; stamped with its own host label whatever it claims.
    let agent = Client::new(&server.url(), Some(enrolled.credential.clone())).unwrap();
    let mut claimed = WriteRequest::default();
    claimed.timeseries.push(TimeSeries {
        labels: vec![
            Label {
                name: "__name__".into(),
                value: "probe".into(),
            },
            Label {
                name: "host".into(),
                value: "h2".into(),
            },
        ],
        samples: vec![Sample {
            value: 1.0,
            timestamp: 1_800_000_000_000,
        }],
    });
    agent
        .remote_write(remote_write::encode(&claimed))
        .await
        .unwrap();
    let series = admin.series("probe").await.unwrap();
    assert_eq!(series.series.len(), 1);
    assert_eq!(
        series.series[0].get("host").map(String::as_str),
        Some("h1"),
        "host label forced to the agent's own"
    );
    // Agents cannot read.
    assert_eq!(agent.hosts().await.unwrap_err().status(), Some(403));

    // Revoked: refused from then on.
    admin.revoke_agent(&enrolled.agent_id).await.unwrap();
    let refused = agent.remote_write(one_sample()).await.unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");

    // Every person's action is in the hash-chained audit log.
    let audit = admin.audit().await.unwrap();
    assert!(audit.chain_valid);
    let actions: Vec<&str> = audit.entries.iter().map(|e| e.action.as_str()).collect();
    for expected in ["spec.apply", "token.create", "agent.enroll", "agent.revoke"] {
        assert!(
            actions.contains(&expected),
            "{expected} audited: {actions:?}"
        );
    }
    assert!(server.process.terminate().success());
}
