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

/// Decompresses a snappy block-compressed body, refusing sizes above the limit before allocating.
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let length =
        snap::raw::decompress_len(body).map_err(|err| DecodeError::Snappy(err.to_string()))?;
    if length > MAX_DECOMPRESSED_BYTES {
        return Err(DecodeError::TooLarge(length));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|err| DecodeError::Snappy(err.to_string()))
}

/// A decoded WriteRequest that borrows its strings from the decompressed buffer: the ingest hot path
/// allocates three vectors per request, not two strings per label.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BorrowedWrite<'a> {
    /// Every series' labels, back to back; `series[i].labels` indexes into it.
    pub labels: Vec<(&'a str, &'a str)>,
    /// Every series' samples as (timestamp ms, value), back to back.
    pub samples: Vec<(i64, f64)>,
    pub series: Vec<SeriesSpan>,
}

/// Where one series' labels and samples are in a `BorrowedWrite`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesSpan {
    pub labels: std::ops::Range<usize>,
    pub samples: std::ops::Range<usize>,
}

/// Decodes an uncompressed WriteRequest without copying strings, with the same checks as `decode`.
pub fn decode_borrowed(raw: &[u8]) -> Result<BorrowedWrite<'_>, DecodeError> {
    let mut out = BorrowedWrite::default();
    let mut request = wire::Reader::new(raw);
    while let Some((field, value)) = request.field()? {
        if let (1, wire::Value::Bytes(series_bytes)) = (field, value) {
            let index = out.series.len();
            let labels_start = out.labels.len();
            let samples_start = out.samples.len();
            let mut series = wire::Reader::new(series_bytes);
            while let Some((series_field, series_value)) = series.field()? {
                match (series_field, series_value) {
                    (1, wire::Value::Bytes(label_bytes)) => {
                        let (mut name, mut value) = ("", "");
                        let mut label = wire::Reader::new(label_bytes);
                        while let Some((label_field, label_value)) = label.field()? {
                            match (label_field, label_value) {
                                (1, wire::Value::Bytes(bytes)) => name = wire::utf8(bytes)?,
                                (2, wire::Value::Bytes(bytes)) => value = wire::utf8(bytes)?,
                                _ => {}
                            }
                        }
                        if !is_valid_label_name(name) {
                            return Err(DecodeError::BadLabelName {
                                index,
                                name: name.to_owned(),
                            });
                        }
                        out.labels.push((name, value));
                    }
                    (2, wire::Value::Bytes(sample_bytes)) => {
                        let (mut timestamp, mut value) = (0i64, 0f64);
                        let mut sample = wire::Reader::new(sample_bytes);
                        while let Some((sample_field, sample_value)) = sample.field()? {
                            match (sample_field, sample_value) {
                                (1, wire::Value::Fixed64(bits)) => value = f64::from_bits(bits),
                                // int64 is a two's-complement varint: the cast is the protobuf rule.
                                (2, wire::Value::Varint(raw_value)) => timestamp = raw_value as i64,
                                _ => {}
                            }
                        }
                        out.samples.push((timestamp, value));
                    }
                    _ => {}
                }
            }
            let labels = labels_start..out.labels.len();
            if !out.labels[labels.clone()]
                .iter()
                .any(|(name, value)| *name == "__name__" && !value.is_empty())
            {
                return Err(DecodeError::MissingName { index });
            }
            out.series.push(SeriesSpan {
                labels,
                samples: samples_start..out.samples.len(),
            });
        }
    }
    Ok(out)
}

mod wire {
    //! The few protobuf wire-format rules remote_write needs, over a byte slice, never panicking.

    use super::DecodeError;

    pub(super) enum Value<'a> {
        Varint(u64),
        Fixed64(u64),
        Bytes(&'a [u8]),
        Fixed32,
    }

    pub(super) struct Reader<'a> {
        bytes: &'a [u8],
        position: usize,
    }

    fn malformed(what: &str) -> DecodeError {
        DecodeError::Protobuf(what.to_owned())
    }

    pub(super) fn utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
        std::str::from_utf8(bytes).map_err(|_| malformed("string field is not valid UTF-8"))
    }

    impl<'a> Reader<'a> {
        pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
            Reader { bytes, position: 0 }
        }

        fn varint(&mut self) -> Result<u64, DecodeError> {
            let mut value: u64 = 0;
            for shift in (0..64).step_by(7) {
                let byte = *self
                    .bytes
                    .get(self.position)
                    .ok_or_else(|| malformed("truncated varint"))?;
                self.position += 1;
                value |= u64::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return Ok(value);
                }
            }
            Err(malformed("varint longer than 10 bytes"))
        }

        fn take(&mut self, length: usize) -> Result<&'a [u8], DecodeError> {
            let end = self
                .position
                .checked_add(length)
                .ok_or_else(|| malformed("length overflows"))?;
            let slice = self
                .bytes
                .get(self.position..end)
                .ok_or_else(|| malformed("field runs past the end of its message"))?;
            self.position = end;
            Ok(slice)
        }

        /// The next field number and value, or `None` at the end of the message.
        pub(super) fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, DecodeError> {
            if self.position >= self.bytes.len() {
                return Ok(None);
            }
            let key = self.varint()?;
            let field = key >> 3;
            if field == 0 {
                return Err(malformed("field number 0"));
            }
            let value = match key & 7 {
                0 => Value::Varint(self.varint()?),
                1 => {
                    let bytes = self.take(8)?;
                    let mut array = [0u8; 8];
                    array.copy_from_slice(bytes);
                    Value::Fixed64(u64::from_le_bytes(array))
                }
                2 => {
                    let length = usize::try_from(self.varint()?)
                        .map_err(|_| malformed("length does not fit memory"))?;
                    Value::Bytes(self.take(length)?)
                }
                5 => {
                    self.take(4)?;
                    Value::Fixed32
                }
                other => return Err(malformed(&format!("unsupported wire type {other}"))),
            };
            Ok(Some((field, value)))
        }
    }
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
        fn borrowed_decoder_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode_borrowed(&bytes);
        }

        #[test]
        fn borrowed_decoder_agrees_with_prost(
            series in proptest::collection::vec(
                (proptest::collection::vec(("[a-z_][a-z0-9_]{0,8}", "\\PC{0,12}"), 0..4),
                 proptest::collection::vec((proptest::prelude::any::<i64>(), proptest::prelude::any::<f64>()), 0..4)),
                0..6)
        ) {
            let request = WriteRequest {
                timeseries: series.iter().map(|(labels, samples)| {
                    let mut labels: Vec<Label> = labels.iter().map(|(name, value)| Label { name: name.clone(), value: value.clone() }).collect();
                    labels.push(Label { name: "__name__".into(), value: "m".into() });
                    TimeSeries { labels, samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect() }
                }).collect(),
            };
            let raw = request.encode_to_vec();
            // Compare with what prost itself reads back (proto3 drops -0.0 as a default value).
            let request = WriteRequest::decode(raw.as_slice()).unwrap();
            let borrowed = decode_borrowed(&raw).unwrap();
            proptest::prop_assert_eq!(borrowed.series.len(), request.timeseries.len());
            for (span, series) in borrowed.series.iter().zip(&request.timeseries) {
                let labels: Vec<(String, String)> = borrowed.labels[span.labels.clone()].iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
                let expected: Vec<(String, String)> = series.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                proptest::prop_assert_eq!(labels, expected);
                let samples = &borrowed.samples[span.samples.clone()];
                proptest::prop_assert_eq!(samples.len(), series.samples.len());
                for (got, want) in samples.iter().zip(&series.samples) {
                    proptest::prop_assert_eq!(got.0, want.timestamp);
                    proptest::prop_assert_eq!(got.1.to_bits(), want.value.to_bits());
                }
            }
        }

        #[test]
        fn round_trip_any_samples(values in proptest::collection::vec((proptest::prelude::any::<i64>(), -1e300f64..1e300), 0..50)) {
            let mut req = request();
            req.timeseries[0].samples = values.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect();
            proptest::prop_assert_eq!(decode(&encode(&req)).unwrap(), req);
        }
    }
}
