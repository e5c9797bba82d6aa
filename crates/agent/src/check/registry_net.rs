//! Builds the network and plugin checks (`command`, `prometheus`, `http`, `tcp`) from a monitor's kind and options.

use super::command::CommandCheck;
use super::http::HttpCheck;
use super::prometheus::PrometheusCheck;
use super::tcp::TcpCheck;
use super::{Check, CheckConfigError};

/// The monitor kinds [`build_net_check`] builds.
pub const NET_CHECK_KINDS: [&str; 4] = ["command", "prometheus", "http", "tcp"];

/// Build the check of `kind` from its `options`; `None` when `kind` is not one of [`NET_CHECK_KINDS`].
pub fn build_net_check(
    kind: &str,
    options: &serde_json::Map<String, serde_json::Value>,
) -> Option<Result<Box<dyn Check>, CheckConfigError>> {
    fn boxed<C: Check + 'static>(
        built: Result<C, CheckConfigError>,
    ) -> Result<Box<dyn Check>, CheckConfigError> {
        built.map(|check| Box::new(check) as Box<dyn Check>)
    }
    Some(match kind {
        "command" => boxed(CommandCheck::from_options(options)),
        "prometheus" => boxed(PrometheusCheck::from_options(options)),
        "http" => boxed(HttpCheck::from_options(options)),
        "tcp" => boxed(TcpCheck::from_options(options)),
        _ => return None,
    })
}

/// The JSON schema of each kind's options, for spec validation and documentation.
pub fn net_check_option_schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        (
            "command",
            schemars::schema_for!(super::command::CommandOptions),
        ),
        (
            "prometheus",
            schemars::schema_for!(super::prometheus::PrometheusOptions),
        ),
        ("http", schemars::schema_for!(super::http::HttpOptions)),
        ("tcp", schemars::schema_for!(super::tcp::TcpOptions)),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::check::net_testutil::options;

    #[test]
    fn builds_only_its_own_kinds() {
        let tcp = build_net_check("tcp", &options(json!({"port": 22})))
            .unwrap()
            .unwrap();
        assert_eq!(tcp.kind(), "tcp");
        let command = build_net_check("command", &options(json!({"command": ["/bin/true"]})))
            .unwrap()
            .unwrap();
        assert_eq!(command.kind(), "command");
        let http = build_net_check("http", &options(json!({"url": "http://127.0.0.1/"})))
            .unwrap()
            .unwrap();
        assert_eq!(http.kind(), "http");
        let prometheus = build_net_check(
            "prometheus",
            &options(json!({"url": "http://127.0.0.1:9100/metrics"})),
        )
        .unwrap()
        .unwrap();
        assert_eq!(prometheus.kind(), "prometheus");
        let Some(Err(error)) = build_net_check("http", &options(json!({"url": 5}))) else {
            panic!("expected an options error");
        };
        assert_eq!(error.path, ".url");
        assert!(build_net_check("process", &options(json!({}))).is_none());
    }

    #[test]
    fn option_schemas_document_every_field() {
        let schemas = net_check_option_schemas();
        assert_eq!(schemas.len(), NET_CHECK_KINDS.len());
        for (kind, schema) in schemas {
            let value = schema.as_value();
            let properties = value["properties"].as_object().unwrap();
            assert!(!properties.is_empty(), "{kind}");
            for (field, property) in properties {
                assert!(
                    property.get("description").is_some(),
                    "{kind}.{field} has no description: {property}"
                );
            }
            assert_eq!(value["additionalProperties"], json!(false), "{kind}");
        }
        let http = schemars::schema_for!(crate::check::http::HttpOptions);
        assert_eq!(
            http.as_value()["properties"]["timeout"]["default"],
            json!("10s")
        );
        let command = schemars::schema_for!(crate::check::command::CommandOptions);
        assert_eq!(
            command.as_value()["properties"]["timeout"]["default"],
            json!("30s")
        );
    }
}
