//! collectd's wire formats: the binary network protocol, types.db, write_http JSON, and their mapping to named metrics.
//!
//! Everything here is pure parsing: no sockets, no files (types.db text is passed in, or the
//! embedded Debian copy is used). Every malformed input is an [`CollectdError`] saying where and
//! what; nothing panics and no length field read from the input decides an allocation larger than
//! the input itself.
//!
//! - [`network`]: one UDP datagram of collectd's "network" plugin → [`network::Packet`], with
//!   HMAC-SHA-256 signatures checked and AES-256-OFB encrypted parts decrypted.
//! - [`types_db`]: the `types.db` data-set definitions that name the values of a binary value list.
//! - [`write_http`]: the JSON body POSTed by collectd's `write_http` plugin (`Format "JSON"`).
//! - [`mapping`]: value lists → [`mapping::MappedSample`]s named like collectd_exporter names them.

pub mod mapping;
pub mod network;
pub mod types_db;
pub mod write_http;

pub use mapping::{MappedSample, map_value_list, map_write_http_value_list};
pub use network::{
    DEFAULT_PORT, Notification, Packet, Security, SecurityLevel, Severity, parse_packet,
};
pub use types_db::{DataSource, TypesDb};
pub use write_http::{WriteHttpValueList, parse_write_http};

/// The kind of a data source, which decides how its value is encoded and whether it only grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataSourceType {
    /// An unsigned counter that wraps around (code 0 on the wire).
    Counter,
    /// A point-in-time reading (code 1 on the wire).
    Gauge,
    /// A signed counter that may be reset (code 2 on the wire).
    Derive,
    /// A count since the last reading, reset on every read (code 3 on the wire).
    Absolute,
}

impl DataSourceType {
    /// The lowercase name collectd uses in `write_http` JSON (`"dstypes"`).
    pub fn as_str(self) -> &'static str {
        match self {
            DataSourceType::Counter => "counter",
            DataSourceType::Gauge => "gauge",
            DataSourceType::Derive => "derive",
            DataSourceType::Absolute => "absolute",
        }
    }

    /// Whether samples of this kind are cumulative counters (named with a `_total` suffix).
    pub fn is_cumulative(self) -> bool {
        matches!(self, DataSourceType::Counter | DataSourceType::Derive)
    }
}

/// One value of a value list, as typed on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A reading; NaN means "unknown" in collectd.
    Gauge(f64),
    /// A signed cumulative counter.
    Derive(i64),
    /// An unsigned cumulative counter.
    Counter(u64),
    /// An unsigned count since the previous reading.
    Absolute(u64),
}

impl Value {
    /// The data-source type this value was sent as.
    pub fn data_source_type(&self) -> DataSourceType {
        match self {
            Value::Gauge(_) => DataSourceType::Gauge,
            Value::Derive(_) => DataSourceType::Derive,
            Value::Counter(_) => DataSourceType::Counter,
            Value::Absolute(_) => DataSourceType::Absolute,
        }
    }

    /// The value as a float; integers above 2^53 lose precision, as in every Prometheus-style store.
    pub fn as_f64(&self) -> f64 {
        match *self {
            Value::Gauge(value) => value,
            Value::Derive(value) => value as f64,
            Value::Counter(value) => value as f64,
            Value::Absolute(value) => value as f64,
        }
    }
}

/// One collectd value list: an identifier (host/plugin/type and their instances), a time and values.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueList {
    /// The host the values are about (collectd's `Hostname`).
    pub host: String,
    /// When the values were read, Unix milliseconds.
    pub time_ms: i64,
    /// The sender's collection interval in milliseconds; 0 when the sender did not say.
    pub interval_ms: i64,
    /// The plugin that read the values (`cpu`, `memory`, ...).
    pub plugin: String,
    /// The plugin instance (`0` for the first CPU, `root` for df's `/`); may be empty.
    pub plugin_instance: String,
    /// The types.db type that names and types the values (`cpu`, `load`, `df_complex`, ...).
    pub type_: String,
    /// The type instance (`idle`, `used`, ...); may be empty.
    pub type_instance: String,
    /// The values, one per data source of the type.
    pub values: Vec<Value>,
}

/// Everything that can be wrong with collectd input; each message says where and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CollectdError {
    /// The binary packet is not well formed at this byte offset of the datagram.
    #[error("offset {offset}: {detail}")]
    Malformed {
        /// Byte offset in the datagram where the problem starts.
        offset: usize,
        /// What is wrong there.
        detail: String,
    },
    /// A part of the packet is not covered by a signature or encryption the security level demands.
    #[error(
        "offset {offset}: {part} part is not {required}, but the security level requires {level}"
    )]
    InsufficientSecurity {
        /// Byte offset of the offending part.
        offset: usize,
        /// The kind of part (`host`, `values`, `signature`, ...).
        part: &'static str,
        /// What the part would have needed to be (`signed or encrypted`, `encrypted`).
        required: &'static str,
        /// The configured level (`signing`, `encryption`).
        level: &'static str,
    },
    /// A signature or encryption part names a user that is not configured.
    #[error("offset {offset}: {part} part names unknown user {username:?}")]
    UnknownUser {
        /// Byte offset of the signature or encryption part.
        offset: usize,
        /// `signature` or `encryption`.
        part: &'static str,
        /// The username as sent.
        username: String,
    },
    /// The HMAC-SHA-256 signature does not match: wrong password or an altered packet.
    #[error(
        "offset {offset}: HMAC-SHA-256 signature of user {username:?} does not match (wrong password or altered packet)"
    )]
    BadSignature {
        /// Byte offset of the signature part.
        offset: usize,
        /// The username the signature claims.
        username: String,
    },
    /// The decrypted part fails its SHA-1 checksum: wrong password or an altered packet.
    #[error(
        "offset {offset}: encrypted part of user {username:?} fails its SHA-1 checksum after decryption (wrong password or altered packet)"
    )]
    DecryptionFailed {
        /// Byte offset of the encryption part.
        offset: usize,
        /// The username the part claims.
        username: String,
    },
    /// A types.db text is not well formed.
    #[error("types.db line {line}: {detail}")]
    TypesDb {
        /// 1-based line number.
        line: usize,
        /// What is wrong on that line.
        detail: String,
    },
    /// A value list's type is not defined in the types.db used for mapping.
    #[error("value list {identifier}: type {type_:?} is not defined in types.db")]
    UnknownType {
        /// `host/plugin[-instance]/type[-instance]`, collectd's identifier notation.
        identifier: String,
        /// The unknown type.
        type_: String,
    },
    /// A value list has a different number of values than its type has data sources.
    #[error(
        "value list {identifier}: type {type_:?} has {expected} data sources but the value list has {actual} values"
    )]
    ValueCountMismatch {
        /// `host/plugin[-instance]/type[-instance]`.
        identifier: String,
        /// The type whose data sources were counted.
        type_: String,
        /// How many data sources the type (or the JSON `dsnames`) declares.
        expected: usize,
        /// How many values came.
        actual: usize,
    },
    /// A write_http JSON body is not what collectd sends; `path` is the JSON path (`[3].values[1]`).
    #[error("{path}: {detail}")]
    Json {
        /// Where in the body, in serde_path_to_error notation (`.` for the whole body).
        path: String,
        /// What is wrong there.
        detail: String,
    },
}

/// collectd's `host/plugin[-plugin_instance]/type[-type_instance]` notation, used in error messages.
pub(crate) fn identifier(value_list: &ValueList) -> String {
    let mut text = format!("{}/{}", value_list.host, value_list.plugin);
    if !value_list.plugin_instance.is_empty() {
        text.push('-');
        text.push_str(&value_list.plugin_instance);
    }
    text.push('/');
    text.push_str(&value_list.type_);
    if !value_list.type_instance.is_empty() {
        text.push('-');
        text.push_str(&value_list.type_instance);
    }
    text
}
