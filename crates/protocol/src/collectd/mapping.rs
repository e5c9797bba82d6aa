//! Value lists → named samples, following the naming of Prometheus' collectd_exporter.
//!
//! The convention (prometheus/collectd_exporter `newName` and `newLabels`), one sample per value:
//! - name: `collectd_<type>` when the plugin and the type are the same word (`cpu`/`cpu`,
//!   `memory`/`memory`, `load`/`load`), else `collectd_<plugin>_<type>` (`collectd_df_df_complex`);
//!   then `_<dsname>` unless the data source is called `value` (`collectd_load_shortterm`,
//!   `collectd_interface_if_octets_rx`); then `_total` for derive and counter values
//!   (`collectd_cpu_total`). Every character outside `[a-zA-Z0-9_]` becomes `_`.
//! - labels: `<plugin>="<plugin_instance>"` when the plugin instance is set; the type instance goes
//!   to `type="<type_instance>"` when a plugin instance is set too, and to `<plugin>="<type_instance>"`
//!   when it is not (`collectd_cpu_total{cpu="0",type="idle"}`, `collectd_memory{memory="used"}`).
//!   If the plugin itself is called `type`, its type instance goes to `type_instance` instead, so
//!   no label name repeats. Label names get the same character rule, and `_` in front of a digit.
//! - the host is not a label (collectd_exporter's `instance`): it is [`MappedSample::host`], for the
//!   caller to resolve into its own host identity.
//!
//! Values are emitted as they came: gauges as read, derive and counter values as their raw
//! cumulative totals (no rate is computed), absolute values as gauges.

use super::{
    CollectdError, ValueList, identifier, types_db::TypesDb, write_http::WriteHttpValueList,
};

/// One named, labelled value at one time, from one value of a collectd value list.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedSample {
    /// The value list's host, for the caller to map to its own host identity.
    pub host: String,
    /// The metric name, e.g. `collectd_cpu_total`.
    pub name: String,
    /// The labels, plugin label first, e.g. `[("cpu", "0"), ("type", "idle")]`.
    pub labels: Vec<(String, String)>,
    /// The value; cumulative kinds are their raw running totals.
    pub value: f64,
    /// The value list's time, Unix milliseconds.
    pub timestamp_ms: i64,
}

/// Maps a binary-protocol value list, naming its values from `types_db` (the datagram has no names).
///
/// Errors when the type is not in `types_db` or its data-source count differs from the values'.
pub fn map_value_list(
    value_list: &ValueList,
    types_db: &TypesDb,
) -> Result<Vec<MappedSample>, CollectdError> {
    let Some(data_sources) = types_db.get(&value_list.type_) else {
        return Err(CollectdError::UnknownType {
            identifier: identifier(value_list),
            type_: value_list.type_.clone(),
        });
    };
    check_count(value_list, data_sources.len())?;
    Ok(map_named(
        value_list,
        data_sources.iter().map(|source| source.name.as_str()),
    ))
}

/// Maps a write_http value list with the data-source names it carries (no types.db needed).
pub fn map_write_http_value_list(
    list: &WriteHttpValueList,
) -> Result<Vec<MappedSample>, CollectdError> {
    check_count(&list.value_list, list.ds_names.len())?;
    Ok(map_named(
        &list.value_list,
        list.ds_names.iter().map(String::as_str),
    ))
}

fn check_count(value_list: &ValueList, expected: usize) -> Result<(), CollectdError> {
    if value_list.values.len() == expected {
        return Ok(());
    }
    Err(CollectdError::ValueCountMismatch {
        identifier: identifier(value_list),
        type_: value_list.type_.clone(),
        expected,
        actual: value_list.values.len(),
    })
}

/// Names and labels every value; `ds_names` has one name per value (checked by the callers).
fn map_named<'name>(
    value_list: &ValueList,
    ds_names: impl Iterator<Item = &'name str>,
) -> Vec<MappedSample> {
    let base = if value_list.plugin == value_list.type_ {
        format!("collectd_{}", value_list.type_)
    } else {
        format!("collectd_{}_{}", value_list.plugin, value_list.type_)
    };
    let labels = labels_of(value_list);
    value_list
        .values
        .iter()
        .zip(ds_names)
        .map(|(value, ds_name)| {
            let mut name = base.clone();
            if ds_name != "value" {
                name.push('_');
                name.push_str(ds_name);
            }
            if value.data_source_type().is_cumulative() {
                name.push_str("_total");
            }
            MappedSample {
                host: value_list.host.clone(),
                name: sanitize(&name),
                labels: labels.clone(),
                value: value.as_f64(),
                timestamp_ms: value_list.time_ms,
            }
        })
        .collect()
}

fn labels_of(value_list: &ValueList) -> Vec<(String, String)> {
    let plugin_label = label_name(&value_list.plugin);
    let mut labels = Vec::with_capacity(2);
    if !value_list.plugin_instance.is_empty() {
        labels.push((plugin_label.clone(), value_list.plugin_instance.clone()));
    }
    if !value_list.type_instance.is_empty() {
        let type_label = if value_list.plugin_instance.is_empty() {
            plugin_label
        } else if plugin_label == "type" {
            "type_instance".to_owned()
        } else {
            "type".to_owned()
        };
        labels.push((type_label, value_list.type_instance.clone()));
    }
    labels
}

/// Every character outside `[a-zA-Z0-9_]` becomes `_`.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '_' {
                character
            } else {
                '_'
            }
        })
        .collect()
}

/// A plugin name as a label name: sanitized, and never starting with a digit or empty.
fn label_name(plugin: &str) -> String {
    let name = sanitize(plugin);
    if name.is_empty() || name.starts_with(|character: char| character.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectd::Value;

    fn value_list(
        plugin: &str,
        plugin_instance: &str,
        type_: &str,
        type_instance: &str,
        values: Vec<Value>,
    ) -> ValueList {
        ValueList {
            host: "web-1".to_owned(),
            time_ms: 1_700_000_000_000,
            interval_ms: 10_000,
            plugin: plugin.to_owned(),
            plugin_instance: plugin_instance.to_owned(),
            type_: type_.to_owned(),
            type_instance: type_instance.to_owned(),
            values,
        }
    }

    fn names_and_labels(samples: &[MappedSample]) -> Vec<(String, Vec<(String, String)>)> {
        samples
            .iter()
            .map(|sample| (sample.name.clone(), sample.labels.clone()))
            .collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn follows_collectd_exporter_names_and_labels() {
        let types_db = TypesDb::builtin();
        // The cases of collectd_exporter's own TestNewName / TestNewLabels, plus load and df.
        let cases = [
            (
                value_list("cpu", "0", "cpu", "user", vec![Value::Derive(5)]),
                vec![(
                    "collectd_cpu_total",
                    labels(&[("cpu", "0"), ("type", "user")]),
                )],
            ),
            (
                value_list("dns", "", "dns_qtype", "A", vec![Value::Derive(1)]),
                vec![("collectd_dns_dns_qtype_total", labels(&[("dns", "A")]))],
            ),
            (
                value_list(
                    "df",
                    "root",
                    "df",
                    "",
                    vec![Value::Gauge(1.0), Value::Gauge(2.0)],
                ),
                vec![
                    ("collectd_df_used", labels(&[("df", "root")])),
                    ("collectd_df_free", labels(&[("df", "root")])),
                ],
            ),
            (
                value_list("df", "", "df_complex", "used", vec![Value::Gauge(1.0)]),
                vec![("collectd_df_df_complex", labels(&[("df", "used")]))],
            ),
            (
                value_list(
                    "interface",
                    "eth0",
                    "if_octets",
                    "",
                    vec![Value::Counter(1), Value::Counter(2)],
                ),
                vec![
                    (
                        "collectd_interface_if_octets_rx_total",
                        labels(&[("interface", "eth0")]),
                    ),
                    (
                        "collectd_interface_if_octets_tx_total",
                        labels(&[("interface", "eth0")]),
                    ),
                ],
            ),
            (
                value_list(
                    "load",
                    "",
                    "load",
                    "",
                    vec![Value::Gauge(0.1), Value::Gauge(0.2), Value::Gauge(0.3)],
                ),
                vec![
                    ("collectd_load_shortterm", vec![]),
                    ("collectd_load_midterm", vec![]),
                    ("collectd_load_longterm", vec![]),
                ],
            ),
            (
                // A single data source not called "value" keeps its name.
                value_list("exec", "", "duration", "", vec![Value::Gauge(1.0)]),
                vec![("collectd_exec_duration_seconds", vec![])],
            ),
            (
                // Absolute values are not cumulative: no `_total`.
                value_list(
                    "my-plugin",
                    "a b",
                    "absolute",
                    "x.y",
                    vec![Value::Absolute(3)],
                ),
                vec![(
                    "collectd_my_plugin_absolute",
                    labels(&[("my_plugin", "a b"), ("type", "x.y")]),
                )],
            ),
            (
                value_list("type", "i", "gauge", "t", vec![Value::Gauge(3.0)]),
                vec![(
                    "collectd_type_gauge",
                    labels(&[("type", "i"), ("type_instance", "t")]),
                )],
            ),
            (
                value_list("9p", "", "gauge", "t", vec![Value::Gauge(3.0)]),
                vec![("collectd_9p_gauge", labels(&[("_9p", "t")]))],
            ),
        ];
        for (list, expected) in cases {
            let samples = map_value_list(&list, types_db).unwrap();
            let expected: Vec<(String, Vec<(String, String)>)> = expected
                .into_iter()
                .map(|(name, labels)| (name.to_owned(), labels))
                .collect();
            assert_eq!(names_and_labels(&samples), expected, "for {list:?}");
            for (sample, value) in samples.iter().zip(&list.values) {
                assert_eq!(sample.host, "web-1");
                assert_eq!(sample.timestamp_ms, 1_700_000_000_000);
                assert_eq!(sample.value, value.as_f64());
            }
        }
    }

    #[test]
    fn counters_keep_their_raw_cumulative_value() {
        let list = value_list("cpu", "0", "cpu", "idle", vec![Value::Derive(-7)]);
        assert_eq!(
            map_value_list(&list, TypesDb::builtin()).unwrap()[0].value,
            -7.0
        );
        let list = value_list(
            "interface",
            "lo",
            "if_octets",
            "",
            vec![Value::Counter(1 << 40), Value::Counter(9)],
        );
        let samples = map_value_list(&list, TypesDb::builtin()).unwrap();
        assert_eq!(samples[0].value, (1u64 << 40) as f64);
        assert_eq!(samples[1].value, 9.0);
    }

    #[test]
    fn unknown_type_and_wrong_value_count_name_the_type() {
        let list = value_list("cpu", "0", "cpux", "idle", vec![Value::Derive(1)]);
        assert_eq!(
            map_value_list(&list, TypesDb::builtin())
                .unwrap_err()
                .to_string(),
            "value list web-1/cpu-0/cpux-idle: type \"cpux\" is not defined in types.db"
        );
        let list = value_list(
            "load",
            "",
            "load",
            "",
            vec![Value::Gauge(1.0), Value::Gauge(2.0)],
        );
        assert_eq!(
            map_value_list(&list, TypesDb::builtin())
                .unwrap_err()
                .to_string(),
            "value list web-1/load/load: type \"load\" has 3 data sources but the value list has 2 values"
        );
    }

    #[test]
    fn write_http_lists_use_their_own_ds_names() {
        let list = WriteHttpValueList {
            // A type unknown to any types.db: the JSON names suffice.
            value_list: value_list(
                "custom",
                "",
                "pair",
                "",
                vec![Value::Gauge(1.0), Value::Derive(2)],
            ),
            ds_names: vec!["left".to_owned(), "right".to_owned()],
            meta: Default::default(),
        };
        let samples = map_write_http_value_list(&list).unwrap();
        let names: Vec<&str> = samples.iter().map(|sample| sample.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "collectd_custom_pair_left",
                "collectd_custom_pair_right_total"
            ]
        );

        let mut short = list.clone();
        short.ds_names.pop();
        assert_eq!(
            map_write_http_value_list(&short).unwrap_err().to_string(),
            "value list web-1/custom/pair: type \"pair\" has 1 data sources but the value list has 2 values"
        );
    }
}
