//! Crate root of `cloudkeep-model`: domain types, the platform spec format v1, its validation and its JSON Schema.
//!
//! The crate is plain data plus pure functions. The only I/O is reading spec
//! files in [`read_spec_file`] (used by [`load_spec_path`]); everything else
//! works on `(source_name, text)` pairs so callers can validate specs that came
//! from anywhere (an API request, a git blob, a test string).
//!
//! Vocabulary: a *cloud* is a site/region, an *isv* a vendor organisation, a
//! *tenant* a customer of an isv, a *platform* one deployed stack for a tenant
//! declared by a spec, a *host* one machine running the agent, a *component* a
//! role on a host, a *monitor* a named thing watched on a host, a *rule*
//! thresholds on a monitor's metric, and a *state* one of ok, warning,
//! critical, unknown.
#![forbid(unsafe_code)]

mod domain;
mod duration;
mod error;
mod id;
mod load;
mod locate;
mod spec;
mod state;

pub use domain::{Host, Platform};
pub use duration::{Duration, DurationError};
pub use error::SpecError;
pub use id::{
    CloudName, ComponentName, HostName, IdError, IsvName, MetricName, MonitorName, PlatformName,
    TenantName,
};
pub use load::{load_spec_path, parse_spec, read_spec_file};
pub use spec::{
    BackupSpec, ComponentKind, ComponentSpec, Direction, DrillSpec, HostSpec, MonitorKind,
    MonitorSpec, PlatformSpec, RuleSpec, SPEC_SCHEMA_ID, SUPPORTED_SPEC_VERSIONS, spec_json_schema,
};
pub use state::{State, StateParseError};
