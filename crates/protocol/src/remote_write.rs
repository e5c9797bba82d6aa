//! Prometheus remote_write 1.0: protobuf messages (hand-written, no protoc) and the snappy block framing.

use prost::Message;

/// Largest decompressed body accepted, so a small hostile body cannot claim a huge allocation.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("body is not snappy block-compressed data: {0}")]
    Snappy(String),
    #[error(
        "decompressed body would be {0} bytes, more than the limit of {MAX_DECOMPRESSED_BYTES}"
    )]
    TooLarge(usize),
    #[error("body is not a remote_write WriteRequest protobuf: {0}")]
    Protobuf(String),
    #[error("timeseries[{index}] has no __name__ label")]
    MissingName { index: usize },
    #[error("timeseries[{index}] label {name:?} is not a valid label name")]
    BadLabelName { index: usize, name: String },
}

/// Decompresses and decodes a remote_write body, checking what the store relies on.
pub fn decode(body: &[u8]) -> Result<WriteRequest, DecodeError> {
    let length =
        snap::raw::decompress_len(body).map_err(|err| DecodeError::Snappy(err.to_string()))?;
    if length > MAX_DECOMPRESSED_BYTES {
        return Err(DecodeError::TooLarge(length));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|err| DecodeError::Snappy(err.to_string()))?;
    let request = WriteRequest::decode(raw.as_slice())
        .map_err(|err| DecodeError::Protobuf(err.to_string()))?;
    for (index, series) in request.timeseries.iter().enumerate() {
        if !series
            .labels
            .iter()
            .any(|label| label.name == "__name__" && !label.value.is_empty())
        {
            return Err(DecodeError::MissingName { index });
        }
        if let Some(bad) = series
            .labels
            .iter()
            .find(|label| !is_valid_label_name(&label.name))
        {
            return Err(DecodeError::BadLabelName {
                index,
                name: bad.name.clone(),
            });
        }
    }
    Ok(request)
}

/// Encodes and snappy-compresses a request, as a remote_write sender does.
pub fn encode(request: &WriteRequest) -> Vec<u8> {
    let raw = request.encode_to_vec();
    // Compressing an in-memory buffer cannot fail except on absurd sizes, which encode never produces.
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, Prometheus' label name rule.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphabetic() || first == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> WriteRequest {
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    Label {
                        name: "job".into(),
                        value: "node".into(),
                    },
                ],
                samples: vec![Sample {
                    value: 1.5,
                    timestamp: 1_700_000_000_000,
                }],
            }],
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let body = encode(&request());
        assert_eq!(decode(&body).unwrap(), request());
    }

    #[test]
    fn truncated_and_garbage_bodies_are_clear_errors() {
        let body = encode(&request());
        let truncated = &body[..body.len() / 2];
        assert!(matches!(decode(truncated), Err(DecodeError::Snappy(_))));
        assert!(matches!(
            decode(b"not snappy at all"),
            Err(DecodeError::Snappy(_))
        ));
        let not_protobuf = snap::raw::Encoder::new()
            .compress_vec(&[0xff, 0xff, 0xff])
            .unwrap();
        assert!(matches!(
            decode(&not_protobuf),
            Err(DecodeError::Protobuf(_))
        ));
    }

    #[test]
    fn series_without_name_is_rejected() {
        let mut bad = request();
        bad.timeseries[0].labels.remove(0);
        let err = decode(&encode(&bad)).unwrap_err();
        assert_eq!(err.to_string(), "timeseries[0] has no __name__ label");
    }

    #[test]
    fn label_names_follow_prometheus_rules() {
        assert!(is_valid_label_name("__name__"));
        assert!(is_valid_label_name("a1_b"));
        assert!(!is_valid_label_name("1a"));
        assert!(!is_valid_label_name("a-b"));
        assert!(!is_valid_label_name(""));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn round_trip_any_samples(values in proptest::collection::vec((proptest::prelude::any::<i64>(), -1e300f64..1e300), 0..50)) {
            let mut req = request();
            req.timeseries[0].samples = values.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect();
            proptest::prop_assert_eq!(decode(&encode(&req)).unwrap(), req);
        }
    }
}
