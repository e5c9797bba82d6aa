//! Prometheus `metric_relabel_configs` semantics for scraped samples: replace, keep, drop, labelmap, labeldrop, labelkeep.
//!
//! During relabelling the metric name is the label `__name__`, as in Prometheus. Regexes are
//! fully anchored (`^(?:regex)$`); `$1`, `${1}` and `${name}` in `replacement` (and in a
//! `replace` rule's `target_label`) expand capture groups. Setting a label to the empty string
//! removes it. A sample whose `__name__` ends up empty is dropped.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::exposition::is_label_name;
use crate::check::CheckConfigError;
use crate::check::options::config_error;

/// One relabel rule, as in Prometheus' `metric_relabel_configs`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values, joined with `separator`, are matched against `regex`
    /// (`__name__` is the metric name; a missing label is the empty string).
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// The string put between the source label values.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Regular expression, fully anchored, matched against the joined source values
    /// (against label names for `labelmap`, `labeldrop` and `labelkeep`).
    #[serde(default = "default_regex")]
    pub regex: String,
    /// The label a `replace` rule writes (may use `$1` etc.); `__name__` renames the metric.
    #[serde(default)]
    pub target_label: Option<String>,
    /// The value a `replace` rule writes, or the new label name of `labelmap`, with `$1` etc. expanded.
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// What to do when the regex matches.
    #[serde(default)]
    pub action: RelabelAction,
}

/// The action of a relabel rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RelabelAction {
    /// Set `target_label` to the expanded `replacement` when the regex matches (the default).
    #[default]
    Replace,
    /// Drop the sample unless the regex matches.
    Keep,
    /// Drop the sample when the regex matches.
    Drop,
    /// Copy every label whose name matches to the name given by the expanded `replacement`.
    Labelmap,
    /// Remove every label whose name matches.
    Labeldrop,
    /// Remove every label whose name does not match.
    Labelkeep,
}

fn default_separator() -> String {
    ";".to_owned()
}

fn default_regex() -> String {
    "(.*)".to_owned()
}

fn default_replacement() -> String {
    "$1".to_owned()
}

/// A checked, compiled relabel rule.
#[derive(Debug, Clone)]
pub struct RelabelRule {
    source_labels: Vec<String>,
    separator: String,
    regex: regex::Regex,
    target_label: String,
    replacement: String,
    action: RelabelAction,
}

impl RelabelRule {
    /// Check and compile `config`; `path` is its place in the options (e.g. `.relabel[2]`).
    pub fn compile(config: &RelabelConfig, path: &str) -> Result<RelabelRule, CheckConfigError> {
        let regex = regex::Regex::new(&format!("^(?:{})$", config.regex)).map_err(|error| {
            config_error(
                &format!("{path}.regex"),
                format!("invalid regex \"{}\": {error}", config.regex),
            )
        })?;
        for (index, source_label) in config.source_labels.iter().enumerate() {
            if !is_label_name(source_label) {
                return Err(config_error(
                    &format!("{path}.source_labels[{index}]"),
                    format!("invalid label name \"{source_label}\""),
                ));
            }
        }
        let target_label = config.target_label.clone().unwrap_or_default();
        match config.action {
            RelabelAction::Replace => {
                if target_label.is_empty() {
                    return Err(config_error(
                        &format!("{path}.target_label"),
                        "the replace action needs a target_label",
                    ));
                }
                if !target_label.contains('$') && !is_label_name(&target_label) {
                    return Err(config_error(
                        &format!("{path}.target_label"),
                        format!("invalid label name \"{target_label}\""),
                    ));
                }
            }
            RelabelAction::Labelmap => {
                if !is_label_name_template(&config.replacement) {
                    return Err(config_error(
                        &format!("{path}.replacement"),
                        format!(
                            "\"{}\" is not a label name (with $1-style references) for the labelmap action",
                            config.replacement
                        ),
                    ));
                }
            }
            RelabelAction::Labeldrop | RelabelAction::Labelkeep => {
                let only_regex = config.source_labels.is_empty()
                    && config.target_label.is_none()
                    && config.separator == default_separator()
                    && config.replacement == default_replacement();
                if !only_regex {
                    return Err(config_error(
                        path,
                        format!(
                            "the {} action takes only a regex (no source_labels, separator, target_label or replacement)",
                            action_name(config.action)
                        ),
                    ));
                }
            }
            RelabelAction::Keep | RelabelAction::Drop => {}
        }
        Ok(RelabelRule {
            source_labels: config.source_labels.clone(),
            separator: config.separator.clone(),
            regex,
            target_label,
            replacement: config.replacement.clone(),
            action: config.action,
        })
    }

    /// Apply this rule to `labels` (which include `__name__`); `false` means the sample is dropped.
    fn apply(&self, labels: &mut BTreeMap<String, String>) -> bool {
        match self.action {
            RelabelAction::Keep => self.regex.is_match(&self.source_value(labels)),
            RelabelAction::Drop => !self.regex.is_match(&self.source_value(labels)),
            RelabelAction::Replace => {
                let value = self.source_value(labels);
                let Some(captures) = self.regex.captures(&value) else {
                    return true;
                };
                let mut target = String::new();
                captures.expand(&self.target_label, &mut target);
                if !is_label_name(&target) {
                    return true;
                }
                let mut replacement = String::new();
                captures.expand(&self.replacement, &mut replacement);
                if replacement.is_empty() {
                    labels.remove(&target);
                } else {
                    labels.insert(target, replacement);
                }
                true
            }
            RelabelAction::Labelmap => {
                let mapped: Vec<(String, String)> = labels
                    .iter()
                    .filter_map(|(name, value)| {
                        let captures = self.regex.captures(name)?;
                        let mut new_name = String::new();
                        captures.expand(&self.replacement, &mut new_name);
                        is_label_name(&new_name).then(|| (new_name, value.clone()))
                    })
                    .collect();
                labels.extend(mapped);
                true
            }
            RelabelAction::Labeldrop => {
                labels.retain(|name, _| !self.regex.is_match(name));
                true
            }
            RelabelAction::Labelkeep => {
                // The metric name is not a label one can keep or drop by accident.
                labels.retain(|name, _| name == "__name__" || self.regex.is_match(name));
                true
            }
        }
    }

    fn source_value(&self, labels: &BTreeMap<String, String>) -> String {
        self.source_labels
            .iter()
            .map(|name| labels.get(name).map(String::as_str).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(&self.separator)
    }
}

fn action_name(action: RelabelAction) -> &'static str {
    match action {
        RelabelAction::Replace => "replace",
        RelabelAction::Keep => "keep",
        RelabelAction::Drop => "drop",
        RelabelAction::Labelmap => "labelmap",
        RelabelAction::Labeldrop => "labeldrop",
        RelabelAction::Labelkeep => "labelkeep",
    }
}

/// Prometheus' `relabelTarget`: label-name characters and `$1`/`${name}` references.
fn is_label_name_template(template: &str) -> bool {
    // `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$` from Prometheus, checked by hand.
    let mut rest = template;
    let mut first = true;
    while !rest.is_empty() {
        if let Some(after_dollar) = rest.strip_prefix('$') {
            let reference_len = if let Some(inside) = after_dollar.strip_prefix('{') {
                match inside.find('}') {
                    Some(end) if end > 0 && inside.get(..end).is_some_and(is_word) => end + 2,
                    _ => return false,
                }
            } else {
                let word_len = after_dollar
                    .find(|character: char| !is_word_character(character))
                    .unwrap_or(after_dollar.len());
                if word_len == 0 {
                    return false;
                }
                word_len
            };
            rest = after_dollar.get(reference_len..).unwrap_or_default();
        } else {
            let mut characters = rest.chars();
            let Some(character) = characters.next() else {
                break;
            };
            let allowed = if first {
                character.is_ascii_alphabetic() || character == '_'
            } else {
                is_word_character(character)
            };
            if !allowed {
                return false;
            }
            rest = characters.as_str();
        }
        first = false;
    }
    !template.is_empty()
}

fn is_word_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || character == '_'
}

fn is_word(text: &str) -> bool {
    text.chars().all(is_word_character)
}

/// Apply `rules` in order to a sample; returns its new name and labels, or `None` when dropped.
pub fn relabel_sample(
    name: &str,
    labels: &[(String, String)],
    rules: &[RelabelRule],
) -> Option<(String, Vec<(String, String)>)> {
    if rules.is_empty() {
        return Some((name.to_owned(), labels.to_vec()));
    }
    let mut label_set: BTreeMap<String, String> = labels.iter().cloned().collect();
    label_set.insert("__name__".to_owned(), name.to_owned());
    for rule in rules {
        if !rule.apply(&mut label_set) {
            return None;
        }
    }
    let new_name = label_set
        .remove("__name__")
        .filter(|name| !name.is_empty())?;
    label_set.retain(|_, value| !value.is_empty());
    Some((new_name, label_set.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: serde_json::Value) -> RelabelRule {
        let config: RelabelConfig = serde_json::from_value(json).unwrap();
        RelabelRule::compile(&config, ".relabel[0]").unwrap()
    }

    fn compile_error(json: serde_json::Value) -> CheckConfigError {
        let config: RelabelConfig = serde_json::from_value(json).unwrap();
        RelabelRule::compile(&config, ".relabel[0]").unwrap_err()
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn keep_and_drop_match_the_whole_joined_value() {
        let keep =
            rule(json!({"source_labels": ["__name__"], "regex": "node_load1", "action": "keep"}));
        assert!(relabel_sample("node_load1", &[], std::slice::from_ref(&keep)).is_some());
        // Anchored: node_load15 does not match "node_load1".
        assert!(relabel_sample("node_load15", &[], std::slice::from_ref(&keep)).is_none());

        let drop = rule(json!({
            "source_labels": ["__name__", "mode"], "separator": "/", "regex": "cpu/(idle|steal)", "action": "drop",
        }));
        assert!(
            relabel_sample(
                "cpu",
                &labels(&[("mode", "idle")]),
                std::slice::from_ref(&drop)
            )
            .is_none()
        );
        assert!(
            relabel_sample(
                "cpu",
                &labels(&[("mode", "user")]),
                std::slice::from_ref(&drop)
            )
            .is_some()
        );
        // A missing source label is the empty string.
        let drop_unlabelled =
            rule(json!({"source_labels": ["job"], "regex": "", "action": "drop"}));
        assert!(relabel_sample("x", &[], std::slice::from_ref(&drop_unlabelled)).is_none());
    }

    #[test]
    fn replace_sets_renames_and_removes() {
        let set_from_capture = rule(json!({
            "source_labels": ["device"], "regex": "(sd[a-z])[0-9]*", "target_label": "disk", "replacement": "/dev/$1",
        }));
        let (name, new_labels) = relabel_sample(
            "io",
            &labels(&[("device", "sda1")]),
            std::slice::from_ref(&set_from_capture),
        )
        .unwrap();
        assert_eq!(name, "io");
        assert_eq!(
            new_labels,
            labels(&[("device", "sda1"), ("disk", "/dev/sda")])
        );

        let rename_metric = rule(json!({
            "source_labels": ["__name__"], "regex": "node_(.*)", "target_label": "__name__", "replacement": "host_${1}",
        }));
        let (name, _) =
            relabel_sample("node_load1", &[], std::slice::from_ref(&rename_metric)).unwrap();
        assert_eq!(name, "host_load1");

        let remove = rule(json!({"target_label": "device", "replacement": ""}));
        let (_, new_labels) = relabel_sample(
            "io",
            &labels(&[("device", "sda1")]),
            std::slice::from_ref(&remove),
        )
        .unwrap();
        assert!(new_labels.is_empty());

        let remove_name = rule(json!({"target_label": "__name__", "replacement": ""}));
        assert!(relabel_sample("io", &[], std::slice::from_ref(&remove_name)).is_none());

        // A target template that expands to an invalid name changes nothing.
        let bad_target =
            rule(json!({"source_labels": ["a"], "regex": "(.*)", "target_label": "$1"}));
        let (_, new_labels) = relabel_sample(
            "m",
            &labels(&[("a", "not-a-name")]),
            std::slice::from_ref(&bad_target),
        )
        .unwrap();
        assert_eq!(new_labels, labels(&[("a", "not-a-name")]));
    }

    #[test]
    fn labelmap_labeldrop_and_labelkeep_work_on_names() {
        let map = rule(json!({"regex": "meta_(.+)", "action": "labelmap"}));
        let (_, new_labels) = relabel_sample(
            "m",
            &labels(&[("meta_zone", "a"), ("x", "1")]),
            std::slice::from_ref(&map),
        )
        .unwrap();
        assert_eq!(
            new_labels,
            labels(&[("meta_zone", "a"), ("x", "1"), ("zone", "a")])
        );

        let drop = rule(json!({"regex": "meta_.*", "action": "labeldrop"}));
        let (_, new_labels) = relabel_sample(
            "m",
            &labels(&[("meta_zone", "a"), ("x", "1")]),
            std::slice::from_ref(&drop),
        )
        .unwrap();
        assert_eq!(new_labels, labels(&[("x", "1")]));

        let keep = rule(json!({"regex": "x|y", "action": "labelkeep"}));
        let (name, new_labels) = relabel_sample(
            "m",
            &labels(&[("meta_zone", "a"), ("x", "1"), ("y", "2")]),
            std::slice::from_ref(&keep),
        )
        .unwrap();
        assert_eq!(name, "m");
        assert_eq!(new_labels, labels(&[("x", "1"), ("y", "2")]));
    }

    #[test]
    fn rules_apply_in_order() {
        let rules = [
            rule(
                json!({"source_labels": ["mode"], "regex": "idle", "target_label": "kind", "replacement": "rest"}),
            ),
            rule(json!({"source_labels": ["kind"], "regex": "rest", "action": "drop"})),
        ];
        assert!(relabel_sample("cpu", &labels(&[("mode", "idle")]), &rules).is_none());
        assert!(relabel_sample("cpu", &labels(&[("mode", "user")]), &rules).is_some());
    }

    #[test]
    fn invalid_rules_name_the_field() {
        let error = compile_error(json!({"regex": "(", "action": "keep"}));
        assert_eq!(error.path, ".relabel[0].regex");
        assert!(
            error.message.starts_with("invalid regex \"(\": "),
            "{error}"
        );
        let error = compile_error(json!({"source_labels": ["a"]}));
        assert_eq!(
            error.to_string(),
            "options.relabel[0].target_label: the replace action needs a target_label"
        );
        let error = compile_error(json!({"target_label": "bad-name"}));
        assert_eq!(error.path, ".relabel[0].target_label");
        let error = compile_error(json!({"source_labels": ["bad-name"], "action": "keep"}));
        assert_eq!(error.path, ".relabel[0].source_labels[0]");
        let error =
            compile_error(json!({"source_labels": ["a"], "regex": "x", "action": "labeldrop"}));
        assert_eq!(error.path, ".relabel[0]");
        let error =
            compile_error(json!({"regex": "(.*)", "replacement": "a-b", "action": "labelmap"}));
        assert_eq!(error.path, ".relabel[0].replacement");
        assert!(is_label_name_template("$1"));
        assert!(is_label_name_template("${1}_x"));
        assert!(is_label_name_template("prefix_$1"));
        assert!(!is_label_name_template("1abc"));
        assert!(!is_label_name_template("${}"));
        assert!(!is_label_name_template(""));
    }

    use serde_json::json;
}
