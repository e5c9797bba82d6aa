//! The JSON body of collectd's write_http plugin (`Format "JSON"`): an array of value lists with their data-source names.
//!
//! Each element is `{"values":[..], "dstypes":["gauge"|"derive"|"counter"|"absolute"],
//! "dsnames":[..], "time": seconds, "interval": seconds, "host", "plugin", "plugin_instance",
//! "type", "type_instance", "meta"?}`. collectd writes an unknown gauge (NaN) as `null`. Unknown
//! fields are ignored so newer senders stay readable. Errors carry the JSON path
//! (`[3].values[1]: ...`) in serde_path_to_error's notation.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{CollectdError, DataSourceType, Value, ValueList};

/// One element of a write_http JSON body: a value list plus what the binary form lacks.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteHttpValueList {
    /// The value list, its values typed by `dstypes`.
    pub value_list: ValueList,
    /// The data-source names, one per value (from the sender's types.db).
    pub ds_names: Vec<String>,
    /// The value list's metadata (`meta`), empty when absent.
    pub meta: BTreeMap<String, serde_json::Value>,
}

/// Parses a whole write_http JSON body.
pub fn parse_write_http(body: &[u8]) -> Result<Vec<WriteHttpValueList>, CollectdError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let raw_lists: Vec<RawValueList> = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| CollectdError::Json {
            path: error.path().to_string(),
            detail: error.inner().to_string(),
        })?;
    deserializer.end().map_err(|error| CollectdError::Json {
        path: ".".to_owned(),
        detail: error.to_string(),
    })?;
    raw_lists
        .into_iter()
        .enumerate()
        .map(|(index, raw)| raw.into_value_list(index))
        .collect()
}

/// The element as it is on the wire; converted after parsing because `values` is typed by `dstypes`.
#[derive(Deserialize)]
struct RawValueList {
    values: Vec<RawNumber>,
    dstypes: Vec<DsTypeName>,
    dsnames: Vec<String>,
    time: f64,
    #[serde(default)]
    interval: f64,
    host: String,
    plugin: String,
    #[serde(default)]
    plugin_instance: String,
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    type_instance: String,
    #[serde(default)]
    meta: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum DsTypeName {
    Gauge,
    Derive,
    Counter,
    Absolute,
}

impl From<DsTypeName> for DataSourceType {
    fn from(name: DsTypeName) -> DataSourceType {
        match name {
            DsTypeName::Gauge => DataSourceType::Gauge,
            DsTypeName::Derive => DataSourceType::Derive,
            DsTypeName::Counter => DataSourceType::Counter,
            DsTypeName::Absolute => DataSourceType::Absolute,
        }
    }
}

/// A JSON number kept exact (integers stay integers) until its dstype says how to read it.
#[derive(Clone, Copy)]
enum RawNumber {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Null,
}

impl fmt::Display for RawNumber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawNumber::Unsigned(number) => write!(formatter, "{number}"),
            RawNumber::Signed(number) => write!(formatter, "{number}"),
            RawNumber::Float(number) => write!(formatter, "{number}"),
            RawNumber::Null => formatter.write_str("null"),
        }
    }
}

impl<'de> Deserialize<'de> for RawNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawNumber, D::Error> {
        struct NumberVisitor;
        impl Visitor<'_> for NumberVisitor {
            type Value = RawNumber;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a number or null")
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<RawNumber, E> {
                Ok(RawNumber::Unsigned(number))
            }
            fn visit_i64<E: de::Error>(self, number: i64) -> Result<RawNumber, E> {
                Ok(RawNumber::Signed(number))
            }
            fn visit_f64<E: de::Error>(self, number: f64) -> Result<RawNumber, E> {
                Ok(RawNumber::Float(number))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawNumber, E> {
                Ok(RawNumber::Null)
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

fn json_error(path: String, detail: String) -> CollectdError {
    CollectdError::Json { path, detail }
}

/// Seconds as a JSON float → Unix milliseconds, refusing what does not fit an i64.
fn seconds_to_ms(seconds: f64, path: String) -> Result<i64, CollectdError> {
    let ms = (seconds * 1000.0).round();
    // i64::MAX as f64 rounds up to 2^63, so the bound is exclusive.
    if ms.is_finite() && ms >= i64::MIN as f64 && ms < i64::MAX as f64 {
        Ok(ms as i64)
    } else {
        Err(json_error(
            path,
            format!("{seconds:?} seconds is out of range"),
        ))
    }
}

fn typed_value(
    number: RawNumber,
    kind: DataSourceType,
    path: String,
) -> Result<Value, CollectdError> {
    let value = match (kind, number) {
        (DataSourceType::Gauge, RawNumber::Null) => Some(Value::Gauge(f64::NAN)),
        (DataSourceType::Gauge, RawNumber::Float(number)) => Some(Value::Gauge(number)),
        (DataSourceType::Gauge, RawNumber::Unsigned(number)) => Some(Value::Gauge(number as f64)),
        (DataSourceType::Gauge, RawNumber::Signed(number)) => Some(Value::Gauge(number as f64)),
        (DataSourceType::Derive, RawNumber::Signed(number)) => Some(Value::Derive(number)),
        (DataSourceType::Derive, RawNumber::Unsigned(number)) => {
            i64::try_from(number).ok().map(Value::Derive)
        }
        (DataSourceType::Counter, RawNumber::Unsigned(number)) => Some(Value::Counter(number)),
        (DataSourceType::Absolute, RawNumber::Unsigned(number)) => Some(Value::Absolute(number)),
        _ => None,
    };
    value.ok_or_else(|| {
        let expected = match kind {
            DataSourceType::Gauge => "a number or null",
            DataSourceType::Derive => "a 64-bit signed integer",
            DataSourceType::Counter | DataSourceType::Absolute => "a 64-bit unsigned integer",
        };
        json_error(
            path,
            format!("{} value {number} is not {expected}", kind.as_str()),
        )
    })
}

impl RawValueList {
    fn into_value_list(self, index: usize) -> Result<WriteHttpValueList, CollectdError> {
        let values_count = self.values.len();
        for (field, count) in [
            ("dstypes", self.dstypes.len()),
            ("dsnames", self.dsnames.len()),
        ] {
            if count != values_count {
                return Err(json_error(
                    format!("[{index}].{field}"),
                    format!("has {count} entries but values has {values_count}"),
                ));
            }
        }
        if values_count == 0 {
            return Err(json_error(
                format!("[{index}].values"),
                "is empty".to_owned(),
            ));
        }
        for (field, text) in [
            ("host", &self.host),
            ("plugin", &self.plugin),
            ("type", &self.type_),
        ] {
            if text.is_empty() {
                return Err(json_error(
                    format!("[{index}].{field}"),
                    "is empty".to_owned(),
                ));
            }
        }
        let values = self
            .values
            .iter()
            .zip(&self.dstypes)
            .enumerate()
            .map(|(position, (&number, &kind))| {
                typed_value(number, kind.into(), format!("[{index}].values[{position}]"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WriteHttpValueList {
            value_list: ValueList {
                host: self.host,
                time_ms: seconds_to_ms(self.time, format!("[{index}].time"))?,
                interval_ms: seconds_to_ms(self.interval, format!("[{index}].interval"))?,
                plugin: self.plugin,
                plugin_instance: self.plugin_instance,
                type_: self.type_,
                type_instance: self.type_instance,
                values,
            },
            ds_names: self.dsnames,
            meta: self.meta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_LIST: &str = r#"[{"values":[1.5,null],"dstypes":["gauge","gauge"],"dsnames":["a","b"],"time":1700000000.123,"interval":10.0,"host":"h","plugin":"p","plugin_instance":"pi","type":"t","type_instance":"ti","meta":{"network:received":true}}]"#;

    #[test]
    fn parses_every_field() {
        let lists = parse_write_http(ONE_LIST.as_bytes()).unwrap();
        assert_eq!(lists.len(), 1);
        let list = &lists[0];
        assert_eq!(list.ds_names, ["a", "b"]);
        assert_eq!(list.meta["network:received"], serde_json::Value::Bool(true));
        let value_list = &list.value_list;
        assert_eq!(value_list.host, "h");
        assert_eq!(value_list.time_ms, 1_700_000_000_123);
        assert_eq!(value_list.interval_ms, 10_000);
        assert_eq!(value_list.plugin, "p");
        assert_eq!(value_list.plugin_instance, "pi");
        assert_eq!(value_list.type_, "t");
        assert_eq!(value_list.type_instance, "ti");
        assert_eq!(value_list.values[0], Value::Gauge(1.5));
        assert!(matches!(value_list.values[1], Value::Gauge(nan) if nan.is_nan()));
    }

    #[test]
    fn integers_keep_their_kind_and_full_range() {
        let body = r#"[{"values":[-5,18446744073709551615,7,3],"dstypes":["derive","counter","absolute","gauge"],"dsnames":["d","c","a","g"],"time":1,"interval":1,"host":"h","plugin":"p","type":"t"}]"#;
        let lists = parse_write_http(body.as_bytes()).unwrap();
        let value_list = &lists[0].value_list;
        assert_eq!(
            value_list.values,
            [
                Value::Derive(-5),
                Value::Counter(u64::MAX),
                Value::Absolute(7),
                Value::Gauge(3.0)
            ]
        );
        assert_eq!(value_list.plugin_instance, "");
        assert_eq!(value_list.type_instance, "");
        assert!(lists[0].meta.is_empty());
    }

    #[test]
    fn errors_carry_the_json_path() {
        let valid = r#"{"values":[1],"dstypes":["gauge"],"dsnames":["value"],"time":1,"interval":1,"host":"h","plugin":"p","type":"t"}"#;
        let cases = [
            (
                format!(r#"[{valid},{valid},{valid},{{"values":[1,"x"]}}]"#),
                "[3].values[1]: invalid type: string \"x\", expected a number or null at line 1 column",
            ),
            (
                format!(r#"[{valid},{}]"#, valid.replace("\"gauge\"", "\"float\"")),
                "[1].dstypes[0]: unknown variant `float`, expected one of `gauge`, `derive`, `counter`, `absolute`",
            ),
            (
                valid.replace("\"time\":1,", "").replace("{", "[{") + "]",
                "[0]: missing field `time`",
            ),
            (
                format!(
                    "[{}]",
                    valid.replace("\"dsnames\":[\"value\"]", "\"dsnames\":[]")
                ),
                "[0].dsnames: has 0 entries but values has 1",
            ),
            (
                format!(
                    "[{}]",
                    valid
                        .replace("\"dstypes\":[\"gauge\"]", "\"dstypes\":[\"derive\"]")
                        .replace("[1]", "[1.5]")
                ),
                "[0].values[0]: derive value 1.5 is not a 64-bit signed integer",
            ),
            (
                format!(
                    "[{}]",
                    valid
                        .replace("\"dstypes\":[\"gauge\"]", "\"dstypes\":[\"counter\"]")
                        .replace("[1]", "[-1]")
                ),
                "[0].values[0]: counter value -1 is not a 64-bit unsigned integer",
            ),
            (
                format!("[{}]", valid.replace("\"time\":1", "\"time\":1e300")),
                "[0].time: 1e300 seconds is out of range",
            ),
            (
                format!("[{}]", valid.replace("\"host\":\"h\"", "\"host\":\"\"")),
                "[0].host: is empty",
            ),
            (
                format!(
                    "[{}]",
                    valid
                        .replace("[1]", "[]")
                        .replace("[\"gauge\"]", "[]")
                        .replace("[\"value\"]", "[]")
                ),
                "[0].values: is empty",
            ),
            ("{}".to_owned(), ".: invalid type: map, expected a sequence"),
            (format!("[{valid}] x"), ".: trailing characters"),
        ];
        for (body, expected) in cases {
            let error = parse_write_http(body.as_bytes()).unwrap_err().to_string();
            assert!(
                error.starts_with(expected),
                "for {body}\n  got      {error}\n  expected {expected}"
            );
        }
    }
}
