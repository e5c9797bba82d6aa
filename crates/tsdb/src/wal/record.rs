//! Wal record payload codec: series definitions followed by delta-encoded samples
//!
//! Payload: `[version u8 = 2][n_symbols uvarint]{[len uvarint][utf-8]}[n_defs uvarint]{[id delta
//! ivarint][n labels uvarint]{[name symbol uvarint][value symbol uvarint]}}[n_entries uvarint]`, then
//! if entries follow `[base_ts ivarint]{[id delta ivarint][n uvarint][ts0 - base ivarint]
//! [first delta, then delta-of-delta ivarint]*(n-1) [f64 le]*n}`. Each label string is stored once
//! per record (series snapshots repeat names and values a lot). Version 1 records (labels inline
//! as `[n uvarint]{[len][name][len][value]}`, absolute ids) are still read. Definitions come first
//! so one record is self-contained.

use std::collections::HashMap;

use crate::codec::{DecodeError, Reader, put_bytes, put_ivarint, put_uvarint};
use crate::labels::{Labels, Sample};

const VERSION: u8 = 2;
const VERSION_1: u8 = 1;

pub(crate) fn encode(defs: &[(u64, &Labels)], entries: &[(u64, &[Sample])], out: &mut Vec<u8>) {
    out.push(VERSION);
    let mut symbols: HashMap<&str, u64> = HashMap::new();
    let mut table = Vec::new();
    let mut body = Vec::new();
    put_uvarint(&mut body, defs.len() as u64);
    let mut prev_id = 0u64;
    for (id, labels) in defs {
        put_ivarint(&mut body, id.wrapping_sub(prev_id) as i64);
        prev_id = *id;
        put_uvarint(&mut body, labels.len() as u64);
        for (name, value) in labels.iter() {
            for text in [name, value] {
                let next = symbols.len() as u64;
                let sym = *symbols.entry(text).or_insert_with(|| {
                    put_bytes(&mut table, text.as_bytes());
                    next
                });
                put_uvarint(&mut body, sym);
            }
        }
    }
    put_uvarint(out, symbols.len() as u64);
    out.extend_from_slice(&table);
    out.extend_from_slice(&body);
    let entries: Vec<_> = entries.iter().filter(|(_, s)| !s.is_empty()).collect();
    put_uvarint(out, entries.len() as u64);
    let Some(first) = entries.first() else { return };
    let base = first.1[0].timestamp_ms;
    put_ivarint(out, base);
    let mut prev_id = 0u64;
    for (id, samples) in entries {
        // wrapping arithmetic everywhere: encode and decode agree for any i64, without overflow panics
        put_ivarint(out, id.wrapping_sub(prev_id) as i64);
        prev_id = *id;
        put_uvarint(out, samples.len() as u64);
        put_ivarint(out, samples[0].timestamp_ms.wrapping_sub(base));
        let mut prev_ts = samples[0].timestamp_ms;
        let mut prev_delta = 0i64;
        for s in &samples[1..] {
            let delta = s.timestamp_ms.wrapping_sub(prev_ts);
            put_ivarint(out, delta.wrapping_sub(prev_delta));
            prev_delta = delta;
            prev_ts = s.timestamp_ms;
        }
        for s in samples.iter() {
            out.extend_from_slice(&s.value.to_bits().to_le_bytes());
        }
    }
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct Decoded {
    pub defs: Vec<(u64, Labels)>,
    pub entries: Vec<(u64, Vec<Sample>)>,
}

pub(crate) fn decode(payload: &[u8]) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(payload);
    let version = r.u8()?;
    let mut out = Decoded::default();
    match version {
        VERSION_1 => {
            let n_defs = r.len(2)?;
            for _ in 0..n_defs {
                let id = r.uvarint()?;
                let labels = r.labels()?;
                out.defs.push((id, labels));
            }
        }
        VERSION => {
            let n_symbols = r.len(1)?;
            let mut symbols = Vec::with_capacity(n_symbols);
            for _ in 0..n_symbols {
                let b = r.len_prefixed()?;
                symbols
                    .push(std::str::from_utf8(b).map_err(|_| DecodeError("string is not utf-8"))?);
            }
            let n_defs = r.len(2)?;
            let mut prev_id = 0u64;
            for _ in 0..n_defs {
                let id = prev_id.wrapping_add(r.ivarint()? as u64);
                prev_id = id;
                let n = r.len(2)?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let mut sym = || -> Result<String, DecodeError> {
                        let i = usize::try_from(r.uvarint()?)
                            .map_err(|_| DecodeError("symbol index overflows"))?;
                        symbols
                            .get(i)
                            .map(|s| s.to_string())
                            .ok_or(DecodeError("symbol index out of range"))
                    };
                    let name = sym()?;
                    let value = sym()?;
                    pairs.push((name, value));
                }
                let labels = Labels::new(pairs);
                if labels.len() != n {
                    return Err(DecodeError("label set is not canonical"));
                }
                out.defs.push((id, labels));
            }
        }
        _ => return Err(DecodeError("unknown record version")),
    }
    let n_entries = r.len(11)?;
    if n_entries == 0 {
        return finish(&r, out);
    }
    let base = r.ivarint()?;
    let mut prev_id = 0u64;
    for _ in 0..n_entries {
        let id = prev_id.wrapping_add(r.ivarint()? as u64);
        prev_id = id;
        // each sample costs at least one timestamp byte and eight value bytes
        let n = r.len(9)?;
        if n == 0 {
            return Err(DecodeError("empty sample entry"));
        }
        let mut timestamps = Vec::with_capacity(n);
        let mut ts = base.wrapping_add(r.ivarint()?);
        timestamps.push(ts);
        let mut delta = 0i64;
        for _ in 1..n {
            delta = delta.wrapping_add(r.ivarint()?);
            ts = ts.wrapping_add(delta);
            timestamps.push(ts);
        }
        let mut samples = Vec::with_capacity(n);
        for timestamp_ms in timestamps {
            samples.push(Sample {
                timestamp_ms,
                value: r.f64_le()?,
            });
        }
        out.entries.push((id, samples));
    }
    finish(&r, out)
}

fn finish(r: &Reader<'_>, out: Decoded) -> Result<Decoded, DecodeError> {
    if r.remaining() != 0 {
        return Err(DecodeError("trailing bytes after record"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_defs_and_samples() {
        let a = Labels::new(vec![
            ("__name__".into(), "a".into()),
            ("x".into(), "1".into()),
        ]);
        let b = Labels::new(vec![("__name__".into(), "b".into())]);
        let s1 = vec![
            Sample {
                timestamp_ms: 1_700_000_000_000,
                value: 1.5,
            },
            Sample {
                timestamp_ms: 1_700_000_010_000,
                value: f64::NAN,
            },
            Sample {
                timestamp_ms: 1_700_000_020_001,
                value: -3.0,
            },
        ];
        let s2 = vec![
            Sample {
                timestamp_ms: i64::MIN,
                value: 0.0,
            },
            Sample {
                timestamp_ms: i64::MAX,
                value: 1.0,
            },
        ];
        let mut buf = Vec::new();
        encode(
            &[(0, &a), (7, &b)],
            &[(7, &s2), (0, &s1), (3, &[])],
            &mut buf,
        );
        let d = decode(&buf).unwrap();
        assert_eq!(d.defs, vec![(0, a), (7, b)]);
        assert_eq!(d.entries.len(), 2);
        assert_eq!(d.entries[0], (7, s2));
        assert_eq!(d.entries[1].0, 0);
        let got = &d.entries[1].1;
        assert_eq!(got[0], s1[0]);
        assert!(got[1].value.is_nan());
        assert_eq!(got[2], s1[2]);
    }

    #[test]
    fn version_1_records_are_still_read() {
        let a = Labels::new(vec![("__name__".into(), "a".into())]);
        let mut buf = vec![VERSION_1, 1, 5];
        crate::codec::put_labels(&mut buf, &a);
        buf.push(0);
        let d = decode(&buf).unwrap();
        assert_eq!(d.defs, vec![(5, a)]);
        assert!(d.entries.is_empty());
    }

    #[test]
    fn a_snapshot_stores_each_label_string_once() {
        let labels: Vec<Labels> = (0..1000)
            .map(|i| {
                Labels::new(vec![
                    ("__name__".into(), format!("metric_{}", i % 10)),
                    ("instance".into(), format!("host-{}", i / 10)),
                    ("env".into(), "production".into()),
                ])
            })
            .collect();
        let defs: Vec<(u64, &Labels)> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i as u64, l))
            .collect();
        let mut buf = Vec::new();
        encode(&defs, &[], &mut buf);
        assert!(buf.len() < 1000 * 10, "{} bytes", buf.len());
        let d = decode(&buf).unwrap();
        assert_eq!(d.defs.len(), 1000);
        assert_eq!(d.defs[999], (999, labels[999].clone()));
    }

    #[test]
    fn a_scrape_sample_costs_about_eleven_bytes() {
        let series: Vec<Vec<Sample>> = (0..100)
            .map(|i| {
                vec![Sample {
                    timestamp_ms: 1_700_000_000_000,
                    value: i as f64,
                }]
            })
            .collect();
        let entries: Vec<(u64, &[Sample])> = series
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u64, s.as_slice()))
            .collect();
        let mut buf = Vec::new();
        encode(&[], &entries, &mut buf);
        assert!(buf.len() <= 100 * 11 + 16, "{} bytes", buf.len());
    }

    #[test]
    fn garbage_is_rejected_not_panicking() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[2]).is_err());
        assert!(decode(&[3, 0, 0, 0]).is_err());
        // a symbol reference past the table
        assert!(decode(&[2, 0, 1, 0, 1, 0, 0, 0]).is_err());
        assert!(decode(&[1, 0, 5, 0]).is_err());
        assert!(decode(&[1, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
