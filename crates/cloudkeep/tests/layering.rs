//! The dependency direction between crates is an invariant: this test reads every Cargo.toml and checks it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// For each crate, the project crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("stdx", &[]),
    ("model", &[]),
    ("protocol", &[]),
    ("testkit", &[]),
    ("client", &["protocol"]),
    ("store", &[]),
    ("tsdb", &[]),
    ("alerting", &["model"]),
    ("notify", &[]),
    ("backup", &[]),
    (
        "server",
        &[
            "model", "alerting", "notify", "backup", "protocol", "store", "tsdb", "stdx",
        ],
    ),
    ("http", &["server", "protocol", "model", "stdx"]),
    ("agent", &["protocol", "client", "stdx", "backup"]),
    (
        "cloudkeep",
        &[
            "model", "protocol", "client", "server", "http", "agent", "store", "tsdb", "stdx",
            "notify", "alerting", "backup",
        ],
    ),
];

fn project_dependencies(manifest: &toml::Table) -> BTreeSet<String> {
    manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|deps| {
            deps.keys()
                .filter_map(|name| name.strip_prefix("cloudkeep-").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn crates_depend_only_downwards() {
    let crates_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&crates_dir).unwrap() {
        let dir = entry.unwrap().path();
        let manifest_path = dir.join("Cargo.toml");
        if !manifest_path.exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let manifest: toml::Table = std::fs::read_to_string(&manifest_path)
            .unwrap()
            .parse()
            .unwrap();
        let permitted = allowed.get(name.as_str()).unwrap_or_else(|| {
            panic!(
                "crate {name} is not in the layering table; add it with its allowed dependencies"
            )
        });
        for dependency in project_dependencies(&manifest) {
            assert!(
                permitted.contains(&dependency.as_str()),
                "crates/{name} depends on cloudkeep-{dependency}, which breaks the dependency direction in ARCHITECTURE.md"
            );
        }
        seen.push(name);
    }
    assert!(seen.len() >= 10, "found the crates: {seen:?}");
}

#[test]
fn agent_never_depends_on_server_side_crates() {
    let manifest_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../agent/Cargo.toml");
    let manifest: toml::Table = std::fs::read_to_string(manifest_path)
        .unwrap()
        .parse()
        .unwrap();
    let dependencies = project_dependencies(&manifest);
    for forbidden in ["store", "tsdb", "server", "http"] {
        assert!(
            !dependencies.contains(forbidden),
            "agent depends on {forbidden}"
        );
    }
}
