//! Tests of `spec_json_schema`: descriptions, closed objects, `$id`/title, and a checked-in copy of the schema.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cloudkeep_model::{SPEC_SCHEMA_ID, spec_json_schema};
use serde_json::Value;

/// Every object schema (one with `properties`) anywhere in `value`.
fn object_schemas<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if map.contains_key("properties") {
                out.push(value);
            }
            for v in map.values() {
                object_schemas(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| object_schemas(v, out)),
        _ => {}
    }
}

#[test]
fn schema_has_id_title_and_descriptions() {
    let schema = spec_json_schema();
    assert_eq!(schema["$id"], SPEC_SCHEMA_ID);
    assert_eq!(schema["title"], "Cloudkeep platform spec v1");
    assert!(
        schema["$schema"]
            .as_str()
            .unwrap()
            .contains("json-schema.org")
    );
    assert!(
        schema["description"]
            .as_str()
            .unwrap()
            .contains("Cloudkeep platform spec")
    );
    assert_eq!(schema["properties"]["version"]["const"], 1);
    assert_eq!(
        schema["properties"]["version"]["description"],
        "Spec format version; must be 1."
    );
    assert_eq!(schema["properties"]["hosts"]["type"], "array");
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        required,
        ["version", "platform", "isv", "tenant", "cloud", "hosts"]
    );
    let rule = &schema["$defs"]["RuleSpec"];
    assert!(
        rule["properties"]["for"]["description"]
            .as_str()
            .unwrap()
            .starts_with("How long a threshold must stay crossed")
    );
    assert_eq!(
        schema["$defs"]["HostName"]["pattern"],
        cloudkeep_model::HostName::pattern()
    );
    assert_eq!(
        schema["$defs"]["Duration"]["pattern"],
        "^[0-9]+(ms|s|m|h|d)$"
    );
}

#[test]
fn every_object_is_closed_and_every_property_described() {
    let schema = spec_json_schema();
    let mut objects = Vec::new();
    object_schemas(&schema, &mut objects);
    // PlatformSpec, HostSpec, ComponentSpec, BackupSpec, DrillSpec, MonitorSpec, RuleSpec
    assert_eq!(objects.len(), 7);
    for object in objects {
        assert_eq!(object["additionalProperties"], false, "{object:#}");
        assert!(object["description"].is_string(), "{object:#}");
        for (name, property) in object["properties"].as_object().unwrap() {
            assert!(
                property["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "property {name} has no description"
            );
        }
    }
}

#[test]
fn checked_in_schema_is_current() {
    let text = serde_json::to_string_pretty(&spec_json_schema()).unwrap() + "\n";
    expect_test::expect_file!["../schema/platform-spec-v1.schema.json"].assert_eq(&text);
}
