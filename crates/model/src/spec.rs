//! Platform spec format v1: the `PlatformSpec` document types, their helpers and the JSON Schema.

mod backup;
mod validate;

use std::collections::BTreeSet;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::id::{
    CloudName, ComponentName, HostName, IsvName, MetricName, MonitorName, PlatformName, TenantName,
};

pub use backup::{BackupSpec, DrillSpec};
pub(crate) use validate::validate;

/// Deserialize (from a string only, so a wrong type reads "invalid type: integer `7`, expected a string"),
/// `ALL` and `FromStr` for a unit enum whose `as_str` gives the spec name.
macro_rules! string_enum {
    ($name:ident, $what:literal, [$($variant:ident),* $(,)?]) => {
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        format!(concat!("unknown ", $what, " {:?}; use one of: {}"), s, names.join(", "))
                    })
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                const NAMES: &[&str] = &[$($name::$variant.as_str()),*];
                let text = String::deserialize(deserializer)?;
                text.parse()
                    .map_err(|_| serde::de::Error::unknown_variant(&text, NAMES))
            }
        }
    };
}

/// Spec format versions this crate understands.
pub const SUPPORTED_SPEC_VERSIONS: &[u64] = &[1];

/// The `$id` of the platform spec JSON Schema.
pub const SPEC_SCHEMA_ID: &str = "urn:cloudkeep:schema:platform-spec:v1";

/// A Cloudkeep platform spec (format version 1): one deployed stack for a
/// tenant, its hosts, their components and monitors, and rule overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformSpec {
    /// Optional reference to this JSON Schema, for editors; ignored by Cloudkeep.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Spec format version; must be 1.
    #[schemars(schema_with = "version_schema")]
    pub version: u64,
    /// Name of the platform, unique across all specs, e.g. `acme-prod`.
    pub platform: PlatformName,
    /// The isv (vendor organisation) that runs this platform, e.g. `acme`.
    pub isv: IsvName,
    /// The tenant (customer of the isv) this platform serves, e.g. `globex`.
    pub tenant: TenantName,
    /// The cloud (site/region) hosts run in unless a host overrides it, e.g. `gc-uk1`.
    pub cloud: CloudName,
    /// Free-form human description of the platform.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The hosts (machines running the agent) of this platform; host names are unique within the spec.
    pub hosts: Vec<HostSpec>,
    /// Platform-wide monitors, applied to every host; a host or component monitor with the same name replaces one on that host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitors: Vec<MonitorSpec>,
    /// Rule overrides: thresholds on monitor metrics that replace the built-in defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
}

fn version_schema(_generator: &mut SchemaGenerator) -> Schema {
    let mut map = serde_json::Map::new();
    map.insert("type".into(), "integer".into());
    map.insert("const".into(), 1.into());
    Schema::from(map)
}

/// One host (machine running the agent) of the platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Host name, unique within the spec; lowercase labels separated by dots, e.g. `app1.acme-prod`.
    pub name: HostName,
    /// Cloud this host runs in, when it differs from the platform's `cloud`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudName>,
    /// Components (roles) on this host, e.g. an app server and a web server; names are unique on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentSpec>,
    /// Monitors of the host itself (not tied to a component); names are unique on the host, components included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitors: Vec<MonitorSpec>,
}

/// A component: a role played by a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentSpec {
    /// Component name, unique on its host, e.g. `app` or `db`.
    pub name: ComponentName,
    /// What kind of role this component is.
    pub kind: ComponentKind,
    /// Monitors specific to this component; names are unique on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitors: Vec<MonitorSpec>,
    /// Backups of this database (components of kind `database` only): base backups and WAL archiving by the host's agent; the component's name is the database's name in the backup catalog, unique in the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
}

/// The kind of role a component plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// An application server.
    AppServer,
    /// A database server.
    Database,
    /// A web server or reverse proxy.
    Web,
    /// A cache, e.g. memcached or redis used as a cache.
    Cache,
    /// A message queue or broker.
    Queue,
    /// Anything else.
    Other,
}

impl ComponentKind {
    /// The snake_case name used in specs.
    pub const fn as_str(self) -> &'static str {
        match self {
            ComponentKind::AppServer => "app_server",
            ComponentKind::Database => "database",
            ComponentKind::Web => "web",
            ComponentKind::Cache => "cache",
            ComponentKind::Queue => "queue",
            ComponentKind::Other => "other",
        }
    }
}

string_enum!(
    ComponentKind,
    "component kind",
    [AppServer, Database, Web, Cache, Queue, Other]
);

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A monitor: a named thing watched on a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    /// Monitor name, unique on its host, e.g. `df` or `rogue_proc`; rules refer to monitors by this name.
    pub name: MonitorName,
    /// What the monitor watches; decides which options apply and which metrics it produces.
    pub kind: MonitorKind,
    /// How often the monitor is sampled, e.g. `10s`; the agent's default for the kind when absent. Must be greater than zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Kind-specific options as a JSON object (e.g. a mount point for `df`, a URL for `http`); checked by the agent for the kind.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// What a monitor watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MonitorKind {
    /// CPU utilisation.
    Cpu,
    /// Memory usage.
    Memory,
    /// Swap usage.
    Swap,
    /// Disk space of a file system.
    Df,
    /// A network interface: traffic, errors, link state.
    Interface,
    /// System load average.
    Load,
    /// Liveness of the agent itself.
    Heartbeat,
    /// Presence, count or resource use of processes.
    Process,
    /// An HTTP(S) endpoint.
    Http,
    /// A TCP port.
    Tcp,
    /// The exit status and output of a command (plugins, backup checks and the like).
    Command,
    /// A PostgreSQL server.
    Postgres,
    /// A Prometheus scrape endpoint.
    Prometheus,
}

impl MonitorKind {
    /// The snake_case name used in specs.
    pub const fn as_str(self) -> &'static str {
        match self {
            MonitorKind::Cpu => "cpu",
            MonitorKind::Memory => "memory",
            MonitorKind::Swap => "swap",
            MonitorKind::Df => "df",
            MonitorKind::Interface => "interface",
            MonitorKind::Load => "load",
            MonitorKind::Heartbeat => "heartbeat",
            MonitorKind::Process => "process",
            MonitorKind::Http => "http",
            MonitorKind::Tcp => "tcp",
            MonitorKind::Command => "command",
            MonitorKind::Postgres => "postgres",
            MonitorKind::Prometheus => "prometheus",
        }
    }
}

string_enum!(
    MonitorKind,
    "monitor kind",
    [
        Cpu, Memory, Swap, Df, Interface, Load, Heartbeat, Process, Http, Tcp, Command, Postgres,
        Prometheus
    ]
);

impl fmt::Display for MonitorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule override: warning/critical thresholds on one metric of a monitor.
///
/// Without `hosts` or `component` the rule applies to every host that has the
/// monitor. When several rules match the same host, monitor and metric, the
/// most specific wins: `hosts` over `component` over platform-wide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Name of the monitor whose metric this rule checks.
    pub monitor: MonitorName,
    /// Metric of the monitor the thresholds apply to, e.g. `host_cpu_busy_percent`.
    pub metric: MetricName,
    /// Value at which the state becomes `warning`. At least one of `warning` and `critical` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<f64>,
    /// Value at which the state becomes `critical`; beyond `warning` in the rule's direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<f64>,
    /// Hysteresis: once raised, the state returns to `ok` only when the value gets back past `clear` (below it for `above` rules, above it for `below` rules). Defaults to the lowest threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<f64>,
    /// How long a threshold must stay crossed before the state changes, e.g. `2m`; immediately when absent.
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_duration: Option<Duration>,
    /// Whether values `above` (the default) or `below` the thresholds are bad.
    #[serde(default, skip_serializing_if = "Direction::is_above")]
    pub direction: Direction,
    /// Restrict the rule to these hosts; each must have the monitor. Cannot be combined with `component`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<HostName>>,
    /// Restrict the rule to every host that has this component; each must have the monitor. Cannot be combined with `hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentName>,
    /// Name of the warning level shown to the NOC, e.g. `cpu busy`; `<monitor> warning` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning_name: Option<String>,
    /// Name of the critical level shown to the NOC, e.g. `cpu overloaded`; `<monitor> critical` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_name: Option<String>,
    /// Raise only after this many consecutive samples cross a threshold (as well as `for`, when both are set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive: Option<u32>,
    /// No sample for this long makes the state `unknown`, e.g. `5m`; three monitor intervals when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data_after: Option<Duration>,
    /// Contacts or contact groups (from the server's `[notify]` configuration) told about this rule, instead of the routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
}

/// Which side of the thresholds is bad.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Values at or above the thresholds are bad (e.g. CPU busy percent): warning < critical, clear < warning.
    #[default]
    Above,
    /// Values at or below the thresholds are bad (e.g. free disk percent): warning > critical, clear > warning.
    Below,
}

impl Direction {
    /// Whether this is [`Direction::Above`].
    pub fn is_above(&self) -> bool {
        matches!(self, Direction::Above)
    }

    /// The lowercase name used in specs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Above => "above",
            Direction::Below => "below",
        }
    }
}

string_enum!(Direction, "direction", [Above, Below]);

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl HostSpec {
    /// The cloud this host runs in: its own override, else `platform_cloud`.
    pub fn effective_cloud<'a>(&'a self, platform_cloud: &'a CloudName) -> &'a CloudName {
        self.cloud.as_ref().unwrap_or(platform_cloud)
    }

    /// Whether the host has a component of this name.
    pub fn has_component(&self, name: &ComponentName) -> bool {
        self.components.iter().any(|c| &c.name == name)
    }

    /// The host's own and its components' monitors, in spec order.
    pub fn local_monitors(&self) -> impl Iterator<Item = &MonitorSpec> {
        self.monitors
            .iter()
            .chain(self.components.iter().flat_map(|c| c.monitors.iter()))
    }
}

impl PlatformSpec {
    /// The host of this name, if declared.
    pub fn host(&self, name: &HostName) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| &h.name == name)
    }

    /// Every component with a `backup` section, with its host and the section, in spec order.
    pub fn backed_up_databases(
        &self,
    ) -> impl Iterator<Item = (&HostSpec, &ComponentSpec, &BackupSpec)> {
        self.hosts.iter().flat_map(|host| {
            host.components.iter().filter_map(move |component| {
                component
                    .backup
                    .as_ref()
                    .map(|backup| (host, component, backup))
            })
        })
    }

    /// Every monitor that runs on `host`: its own and its components' monitors
    /// (in spec order), then the platform-wide monitors it does not replace.
    /// Empty when the host is not declared.
    pub fn monitors_for_host(&self, host: &HostName) -> Vec<&MonitorSpec> {
        self.host(host)
            .map(|host| self.monitors_of(host))
            .unwrap_or_default()
    }

    /// Every monitor that runs on `host` (a host of this platform), as [`Self::monitors_for_host`],
    /// without looking the host up by name.
    pub fn monitors_of<'a>(&'a self, host: &'a HostSpec) -> Vec<&'a MonitorSpec> {
        let mut monitors: Vec<&MonitorSpec> = host.local_monitors().collect();
        let local: BTreeSet<&MonitorName> = monitors.iter().map(|m| &m.name).collect();
        monitors.extend(self.monitors.iter().filter(|m| !local.contains(&m.name)));
        monitors
    }

    /// Whether `rule` applies to `host`: it is listed in `hosts`, else it has `component`, else it
    /// runs the rule's monitor.
    pub fn rule_applies_to(&self, rule: &RuleSpec, host: &HostSpec) -> bool {
        match (&rule.hosts, &rule.component) {
            (Some(hosts), _) => hosts.contains(&host.name),
            (None, Some(component)) => host.has_component(component),
            (None, None) => self
                .monitors_of(host)
                .iter()
                .any(|m| m.name == rule.monitor),
        }
    }

    /// Names of the hosts a rule applies to, in spec order: the listed
    /// `hosts`, else every host with `component`, else every host that has the
    /// rule's monitor. Names that are not declared hosts are left out.
    pub fn rule_targets(&self, rule: &RuleSpec) -> Vec<&HostName> {
        self.hosts
            .iter()
            .filter(|h| self.rule_applies_to(rule, h))
            .map(|h| &h.name)
            .collect()
    }
}

/// The JSON Schema of the platform spec format v1, with every field's
/// documentation as its `description`, `additionalProperties: false` on every
/// object, and `$id`/`title` set.
pub fn spec_json_schema() -> serde_json::Value {
    let mut value = schemars::schema_for!(PlatformSpec).to_value();
    if let Some(root) = value.as_object_mut() {
        root.insert("$id".into(), SPEC_SCHEMA_ID.into());
        root.insert("title".into(), "Cloudkeep platform spec v1".into());
    }
    value
}
