//! Tests of `parse_spec` on the example specs in `examples/` and on inline specs: exact messages, paths and positions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cloudkeep_model::{
    CloudName, Direction, Duration, HostName, MonitorKind, PlatformSpec, SpecError, parse_spec,
};
use expect_test::{Expect, expect};

fn example(name: &str) -> (String, String) {
    let path = format!("examples/{name}");
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

fn render(result: Result<PlatformSpec, Vec<SpecError>>) -> String {
    match result {
        Ok(_) => "ok\n".to_owned(),
        Err(errors) => errors.iter().map(|e| format!("{e}\n")).collect(),
    }
}

fn check_example(name: &str, expected: Expect) {
    let (path, text) = example(name);
    expected.assert_eq(&render(parse_spec(&path, &text)));
}

fn check_inline(text: &str, expected: Expect) {
    expected.assert_eq(&render(parse_spec("inline.json", text)));
}

#[test]
fn valid_example_parses() {
    let (path, text) = example("acme-prod.json");
    let spec = parse_spec(&path, &text).unwrap();
    assert_eq!(spec.platform, "acme-prod");
    assert_eq!(spec.isv, "acme");
    assert_eq!(spec.tenant, "globex");
    assert_eq!(spec.hosts.len(), 2);
    assert_eq!(spec.rules.len(), 3);
    assert_eq!(spec.rules[1].direction, Direction::Below);
    assert_eq!(
        spec.rules[0].for_duration,
        Some("2m".parse::<Duration>().unwrap())
    );
    assert_eq!(
        spec.hosts[0].components[0].monitors[0].kind,
        MonitorKind::Http
    );
    let backed_up: Vec<(&str, &str, &str)> = spec
        .backed_up_databases()
        .map(|(host, component, backup)| {
            (
                host.name.as_str(),
                component.name.as_str(),
                backup.pgdata.as_str(),
            )
        })
        .collect();
    assert_eq!(
        backed_up,
        [("db1.acme-prod", "db", "/var/lib/postgresql/15/main")]
    );

    let hosts = spec.hosts();
    let summary: Vec<String> = hosts
        .iter()
        .map(|h| {
            let components: Vec<&str> = h.components.iter().map(|c| c.as_str()).collect();
            format!(
                "{} {} {} [{}]",
                h.name,
                h.platform,
                h.cloud,
                components.join(",")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "app1.acme-prod acme-prod gc-uk1 [app,web]",
            "db1.acme-prod acme-prod gc-uk2 [db]"
        ]
    );

    // host-level "df" replaces the platform-wide "df" on db1
    let db1 = HostName::new("db1.acme-prod").unwrap();
    let monitors: Vec<String> = spec
        .monitors_for_host(&db1)
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m.name,
                m.options
                    .get("mount")
                    .map_or("-".to_owned(), |v| v.to_string())
            )
        })
        .collect();
    assert_eq!(
        monitors,
        [
            "df:\"/var/lib/postgresql\"",
            "postgres:-",
            "backup:-",
            "cpu:-",
            "memory:-",
            "swap:-",
            "heartbeat:-"
        ]
    );
    let targets: Vec<&str> = spec
        .rule_targets(&spec.rules[2])
        .iter()
        .map(|h| h.as_str())
        .collect();
    assert_eq!(targets, ["db1.acme-prod"]);
    let targets: Vec<&str> = spec
        .rule_targets(&spec.rules[0])
        .iter()
        .map(|h| h.as_str())
        .collect();
    assert_eq!(targets, ["app1.acme-prod", "db1.acme-prod"]);

    let platform = cloudkeep_model::Platform::from_spec(spec.clone(), 7);
    assert_eq!(platform.name, "acme-prod");
    assert_eq!(platform.cloud, CloudName::new("gc-uk1").unwrap());
    assert_eq!(platform.revision, 7);
    assert_eq!(platform.hosts(), hosts);
}

#[test]
fn valid_example_round_trips_through_json() {
    let (path, text) = example("acme-prod.json");
    let spec = parse_spec(&path, &text).unwrap();
    let json = serde_json::to_string_pretty(&spec).unwrap();
    let again = parse_spec("round-trip.json", &json).unwrap();
    assert_eq!(again, spec);
    // defaults are not written back out
    assert!(!json.contains("\"direction\": \"above\""));
    assert!(json.contains("\"direction\": \"below\""));
}

#[test]
fn wrong_type() {
    check_example(
        "invalid/wrong-type.json",
        expect![[r#"
            examples/invalid/wrong-type.json:12:34: hosts[0].components[1].kind: invalid type: integer `7`, expected a string
        "#]],
    );
}

#[test]
fn unknown_field() {
    check_example(
        "invalid/unknown-field.json",
        expect![[r#"
            examples/invalid/unknown-field.json:11:51: hosts[0].monitors[0].intervall: unknown field `intervall`, expected one of `name`, `kind`, `interval`, `options`
        "#]],
    );
}

#[test]
fn missing_field() {
    check_example(
        "invalid/missing-field.json",
        expect![[r#"
            examples/invalid/missing-field.json:9:1: missing field `tenant`
        "#]],
    );
}

#[test]
fn duplicate_host() {
    let (path, text) = example("invalid/duplicate-host.json");
    let errors = parse_spec(&path, &text).unwrap_err();
    assert_eq!(
        errors,
        [SpecError {
            file: path.clone(),
            path: "hosts[1].name".to_owned(),
            line: Some(9),
            column: Some(15),
            message: "duplicate host \"app1\" (first defined at hosts[0].name)".to_owned(),
        }]
    );
    check_example(
        "invalid/duplicate-host.json",
        expect![[r#"
            examples/invalid/duplicate-host.json:9:15: hosts[1].name: duplicate host "app1" (first defined at hosts[0].name)
        "#]],
    );
}

#[test]
fn bad_name() {
    check_example(
        "invalid/bad-name.json",
        expect![[r#"
            examples/invalid/bad-name.json:9:31: hosts[1].name: invalid host name "DB1.acme-prod": character 'D' is not allowed; use lowercase letters, digits, '-' and '.'
        "#]],
    );
}

#[test]
fn unsupported_version_is_reported_alone() {
    check_example(
        "invalid/unsupported-version.json",
        expect![[r#"
            examples/invalid/unsupported-version.json:2:14: version: unsupported spec version 2; supported versions: 1
        "#]],
    );
    check_inline(
        r#"{"version": 1.5}"#,
        expect![[r#"
            inline.json:1:13: version: unsupported spec version 1.5; supported versions: 1
        "#]],
    );
    check_inline(
        r#"{"version": "1", "platform": "x"}"#,
        expect![[r#"
            inline.json:1:15: version: invalid type: string "1", expected u64
        "#]],
    );
}

#[test]
fn every_semantic_error_is_reported() {
    check_example(
        "invalid/many-errors.json",
        expect![[r#"
            examples/invalid/many-errors.json:12:19: hosts[0].components[1].name: duplicate component "app" on host "app1" (first defined at hosts[0].components[0].name)
            examples/invalid/many-errors.json:12:64: hosts[0].components[1].monitors[0].name: duplicate monitor "http" on host "app1" (first defined at hosts[0].components[0].monitors[0].name)
            examples/invalid/many-errors.json:14:64: hosts[0].monitors[0].interval: interval must be greater than zero
            examples/invalid/many-errors.json:16:15: hosts[1].name: duplicate host "app1" (first defined at hosts[0].name)
            examples/invalid/many-errors.json:21:15: monitors[1].name: duplicate monitor "df" (first defined at monitors[0].name)
            examples/invalid/many-errors.json:24:87: rules[0].critical: critical threshold 80 must be above warning threshold 95 (direction "above")
            examples/invalid/many-errors.json:25:119: rules[1].clear: clear threshold 10 must be above warning threshold 15 (direction "below")
            examples/invalid/many-errors.json:26:18: rules[2].monitor: unknown monitor "nginx"; defined monitors: "cpu", "df", "http"
            examples/invalid/many-errors.json:27:85: rules[3].hosts[0]: unknown host "app2"; defined hosts: "app1", "db1"
            examples/invalid/many-errors.json:28:88: rules[4].component: no host has component "cache"; defined components: "app", "db"
            examples/invalid/many-errors.json:29:18: rules[5].monitor: monitor "http" is not defined on host "db1" (targeted via component "db")
            examples/invalid/many-errors.json:30:5: rules[6]: a rule needs a `warning` or a `critical` threshold (or both)
            examples/invalid/many-errors.json:30:5: rules[6]: duplicates rules[1] for monitor "df" metric "host_df_free_percent" on hosts "app1", "db1" (both platform-wide); merge them or target different hosts
            examples/invalid/many-errors.json:31:106: rules[7].component: `hosts` and `component` cannot be combined; use one of them
            examples/invalid/many-errors.json:32:5: rules[8]: duplicates rules[1] for monitor "df" metric "host_df_free_percent" on hosts "app1", "db1" (both platform-wide); merge them or target different hosts
        "#]],
    );
}

const HEAD: &str = r#""version": 1, "platform": "p", "isv": "i", "tenant": "t", "cloud": "c""#;

fn spec_with(rest: &str) -> String {
    format!("{{{HEAD}, {rest}}}")
}

#[test]
fn threshold_ordering() {
    let hosts = r#""hosts": [{"name": "h"}], "monitors": [{"name": "cpu", "kind": "cpu"}]"#;
    let rule = |r: &str| {
        spec_with(&format!(
            r#"{hosts}, "rules": [{{"monitor": "cpu", "metric": "m", {r}}}]"#
        ))
    };
    check_inline(
        &rule(r#""warning": 80, "critical": 95, "clear": 75"#),
        expect!["ok\n"],
    );
    check_inline(&rule(r#""critical": 95, "clear": 90"#), expect!["ok\n"]);
    check_inline(&rule(r#""warning": 80"#), expect!["ok\n"]);
    check_inline(
        &rule(r#""warning": 80, "critical": 95, "clear": 80"#),
        expect![[r#"
            inline.json:1:230: rules[0].clear: clear threshold 80 must be below warning threshold 80 (direction "above")
        "#]],
    );
    check_inline(
        &rule(r#""critical": 95, "clear": 96"#),
        expect![[r#"
            inline.json:1:215: rules[0].clear: clear threshold 96 must be below critical threshold 95 (direction "above")
        "#]],
    );
    check_inline(
        &rule(r#""warning": 80, "critical": 80"#),
        expect![[r#"
            inline.json:1:217: rules[0].critical: critical threshold 80 must be above warning threshold 80 (direction "above")
        "#]],
    );
    check_inline(
        &rule(r#""direction": "below", "warning": 15.5, "critical": 5, "clear": 20"#),
        expect!["ok\n"],
    );
    check_inline(
        &rule(r#""direction": "below", "warning": 5, "critical": 15, "clear": 2"#),
        expect![[r#"
            inline.json:1:238: rules[0].critical: critical threshold 15 must be below warning threshold 5 (direction "below")
            inline.json:1:251: rules[0].clear: clear threshold 2 must be above warning threshold 5 (direction "below")
        "#]],
    );
    check_inline(
        &rule(r#""direction": "sideways", "warning": 5"#),
        expect![[r#"
            inline.json:1:212: rules[0].direction: unknown variant `sideways`, expected `above` or `below`
        "#]],
    );
}

#[test]
fn rule_targets_and_overrides() {
    let base = r#""hosts": [
        {"name": "a", "components": [{"name": "db", "kind": "database", "monitors": [{"name": "pg", "kind": "postgres"}]}]},
        {"name": "b", "monitors": [{"name": "cpu", "kind": "cpu", "interval": "5s"}]}
    ],
    "monitors": [{"name": "cpu", "kind": "cpu"}]"#;
    // host-level monitor replacing a platform-wide one is fine; rules at different levels may overlap
    check_inline(
        &spec_with(&format!(
            r#"{base}, "rules": [
                {{"monitor": "cpu", "metric": "m", "warning": 1}},
                {{"monitor": "cpu", "metric": "m", "warning": 2, "hosts": ["b"]}},
                {{"monitor": "cpu", "metric": "m", "warning": 3, "component": "db"}},
                {{"monitor": "cpu", "metric": "other", "warning": 3, "component": "db"}},
                {{"monitor": "pg", "metric": "m", "warning": 1}},
                {{"monitor": "pg", "metric": "m", "warning": 1, "component": "db"}}
            ]"#
        )),
        expect!["ok\n"],
    );
    check_inline(
        &spec_with(&format!(
            r#"{base}, "rules": [
                {{"monitor": "pg", "metric": "m", "warning": 1, "hosts": ["a", "b", "a"]}},
                {{"monitor": "cpu", "metric": "m", "warning": 1, "hosts": []}},
                {{"monitor": "cpu", "metric": "m", "warning": 1, "hosts": ["b"]}},
                {{"monitor": "cpu", "metric": "m", "warning": 2, "hosts": ["a", "b"]}}
            ]"#
        )),
        expect![[r#"
            inline.json:6:29: rules[0].monitor: monitor "pg" is not defined on host "b"
            inline.json:6:84: rules[0].hosts[2]: host "a" is listed twice (first at rules[0].hosts[0])
            inline.json:7:74: rules[1].hosts: must list at least one host; leave `hosts` out to target every host with the monitor
            inline.json:9:17: rules[3]: duplicates rules[2] for monitor "cpu" metric "m" on host "b" (both list hosts); merge them or target different hosts
        "#]],
    );
}

#[test]
fn backup_sections() {
    let host = |components: &str| {
        spec_with(&format!(
            r#""hosts": [{{"name": "db1", "components": [{components}]}}]"#
        ))
    };
    check_inline(
        &host(
            r#"{"name": "db", "kind": "database", "backup": {"pgdata": "/var/lib/postgresql/15/main"}}"#,
        ),
        expect!["ok\n"],
    );
    check_inline(
        &host(
            r#"{"name": "db", "kind": "database", "backup": {"pgdata": "/pg", "connection": "postgresql://backup@db/postgres",
                "full_every": "2m", "incremental_every": "1m", "keep_full": 1, "pitr_window": "0s", "archive_timeout": "1h", "compression_level": 19,
                "parallel": 32, "split_size": 1048576, "heartbeat_every": "1s", "drill": {"every": "1m", "check_sql": "SELECT 1", "key_file": "/etc/cloudkeep/drill.key"}}}"#,
        ),
        expect!["ok\n"],
    );
    check_inline(
        &host(
            r#"{"name": "web", "kind": "web", "backup": {"pgdata": "pg"}},
               {"name": "db", "kind": "database", "backup": {"pgdata": "/pg", "connection": "mysql://root:hunter2@db/x",
                "full_every": "59s", "keep_full": 0, "archive_timeout": "2h", "compression_level": 0,
                "parallel": 33, "split_size": 1048575, "heartbeat_every": "0s", "drill": {"every": "10s", "check_sql": " ", "key_file": "drill.key"}}}"#,
        ),
        expect![[r#"
            inline.json:1:156: hosts[0].components[0].backup: `backup` is only allowed on components of kind "database"; "web" is of kind "web"
            inline.json:1:167: hosts[0].components[0].backup.pgdata: "pg" is not an absolute path; give PostgreSQL's data directory, e.g. "/var/lib/postgresql/15/main"
            inline.json:2:93: hosts[0].components[1].backup.connection: must be a postgres:// or postgresql:// URL
            inline.json:3:31: hosts[0].components[1].backup.full_every: 59s is too short; use at least 1m
            inline.json:3:51: hosts[0].components[1].backup.keep_full: must be at least 1: retention never deletes the newest full backup
            inline.json:3:73: hosts[0].components[1].backup.archive_timeout: 2h is out of range; use 1s to 1h
            inline.json:3:100: hosts[0].components[1].backup.compression_level: 0 is out of range; use 1 to 19
            inline.json:4:29: hosts[0].components[1].backup.parallel: 33 is out of range; use 1 to 32
            inline.json:4:47: hosts[0].components[1].backup.split_size: 1048575 bytes is too small; use at least 1048576 (1 MiB)
            inline.json:4:75: hosts[0].components[1].backup.heartbeat_every: must be greater than zero
            inline.json:4:100: hosts[0].components[1].backup.drill.every: 10s is too short; use at least 1m
            inline.json:4:120: hosts[0].components[1].backup.drill.check_sql: is empty; give a query returning one row whose first column is true when healthy, or leave it out
            inline.json:4:137: hosts[0].components[1].backup.drill.key_file: "drill.key" is not an absolute path; give the private key file's path on the database host
        "#]],
    );
    check_inline(
        &host(
            r#"{"name": "a", "kind": "database", "backup": {"pgdata": "/pg", "incremental_every": "30s"}},
               {"name": "b", "kind": "database", "backup": {"pgdata": "/pg", "full_every": "6h", "incremental_every": "6h"}}"#,
        ),
        expect![[r#"
            inline.json:1:198: hosts[0].components[0].backup.incremental_every: 30s is too short; use at least 1m
            inline.json:2:119: hosts[0].components[1].backup.incremental_every: 6h is not less than full_every (6h): no incremental backup would ever be taken
        "#]],
    );
    check_inline(
        &spec_with(
            r#""hosts": [{"name": "db1", "components": [{"name": "db", "kind": "database", "backup": {"pgdata": "/pg"}}]},
                         {"name": "db2", "components": [{"name": "db", "kind": "database", "backup": {"pgdata": "/pg"}}]}]"#,
        ),
        expect![[r#"
            inline.json:2:102: hosts[1].components[0].backup: database "db" is already backed up on host "db1" (at hosts[0].components[0].backup); backed-up databases need distinct component names in a platform
        "#]],
    );
    // structural problems stop at the first
    check_inline(
        &host(
            r#"{"name": "db", "kind": "database", "backup": {"pgdata": "/pg", "retention": "7d"}}"#,
        ),
        expect![[r#"
            inline.json:1:188: hosts[0].components[0].backup.retention: unknown field `retention`, expected one of `pgdata`, `connection`, `full_every`, `incremental_every`, `keep_full`, `pitr_window`, `archive_timeout`, `compression_level`, `parallel`, `split_size`, `heartbeat_every`, `streaming`, `drill`
        "#]],
    );
    check_inline(
        &host(r#"{"name": "db", "kind": "database", "backup": {"connection": "postgres://x"}}"#),
        expect![[r#"
            inline.json:1:189: hosts[0].components[0].backup: missing field `pgdata`
        "#]],
    );
    check_inline(
        &host(r#"{"name": "db", "kind": "database", "backup": ["/pg"]}"#),
        expect![[r#"
            inline.json:1:160: hosts[0].components[0].backup: invalid type: array, expected an object
        "#]],
    );
    check_inline(
        &host(
            r#"{"name": "db", "kind": "database", "backup": {"pgdata": "/pg", "drill": ["7d"]}}"#,
        ),
        expect![[r#"
            inline.json:1:187: hosts[0].components[0].backup.drill: invalid type: array, expected an object
        "#]],
    );
    check_inline(
        &host(r#"{"name": "db", "kind": "database", "backup": {"pgdata": "/pg", "drill": {}}}"#),
        expect![[r#"
            inline.json:1:188: hosts[0].components[0].backup.drill: missing field `every`
        "#]],
    );
}

#[test]
fn structural_errors() {
    check_inline(
        "",
        expect![[r#"
        inline.json:1:1: EOF while parsing a value
    "#]],
    );
    check_inline(
        "[]",
        expect![[r#"
        inline.json:1:1: invalid type: array, expected an object
    "#]],
    );
    check_inline(
        &spec_with(
            r#""hosts": [["h"], {"name": "g", "components": [["c", "web"]], "monitors": [["m", "cpu"]]}], "rules": [["cpu"]]"#,
        ),
        expect![[r#"
            inline.json:1:84: hosts[0]: invalid type: array, expected an object
            inline.json:1:120: hosts[1].components[0]: invalid type: array, expected an object
            inline.json:1:148: hosts[1].monitors[0]: invalid type: array, expected an object
            inline.json:1:175: rules[0]: invalid type: array, expected an object
        "#]],
    );
    check_inline(
        &format!("{{{HEAD}, \"hosts\": []}} trailing"),
        expect![[r#"
            inline.json:1:87: trailing characters
        "#]],
    );
    check_inline(
        &format!("{{{HEAD}, \"hosts\": [{{\"name\": \"h\",}}]}}"),
        expect![[r#"
            inline.json:1:97: hosts[0]: trailing comma
        "#]],
    );
    check_inline(
        &spec_with(
            r#""hosts": [{"name": "h", "monitors": [{"name": "x", "kind": "cpu", "interval": "10 s"}]}]"#,
        ),
        expect![[r#"
            inline.json:1:158: hosts[0].monitors[0].interval: invalid duration "10 s": use a whole number followed by ms, s, m, h or d (e.g. 500ms, 10s, 2m, 1h, 7d)
        "#]],
    );
    check_inline(
        &spec_with(
            r#""hosts": [{"name": "h", "monitors": [{"name": "x", "kind": "cpu", "options": []}]}]"#,
        ),
        expect![[r#"
            inline.json:1:150: hosts[0].monitors[0].options: invalid type: sequence, expected a map
        "#]],
    );
    check_inline(
        &spec_with(r#""hosts": [], "$schema": "./platform-spec-v1.schema.json""#),
        expect!["ok\n"],
    );
}

/// No input may make the parser panic: every prefix of the valid example, and
/// the example with every character position replaced by a few troublemakers.
#[test]
fn never_panics() {
    let (_, text) = example("acme-prod.json");
    let mut checked = 0;
    for (i, _) in text.char_indices() {
        let _ = parse_spec("prefix.json", &text[..i]);
        for replacement in ["\"", "}", "[", "-", "é", "\\u0000"] {
            let mut mutated = text.clone();
            mutated.replace_range(i..i + 1, replacement);
            let _ = parse_spec("mutated.json", &mutated);
            checked += 1;
        }
    }
    assert!(checked > 1000);
}
