//! Wal record payload codec: series definitions followed by delta-encoded samples
//!
//! Payload: `[version u8 = 1][n_defs uvarint]{[id uvarint][labels]}[n_entries uvarint]`, then if
//! entries follow `[base_ts ivarint]{[id delta ivarint][n uvarint][ts0 - base ivarint]
//! [first delta, then delta-of-delta ivarint]*(n-1) [f64 le]*n}`. Labels are
//! `[n uvarint]{[len][name][len][value]}`. Definitions come first so one record is self-contained.

use crate::codec::{DecodeError, Reader, put_ivarint, put_labels, put_uvarint};
use crate::labels::{Labels, Sample};

const VERSION: u8 = 1;

pub(crate) fn encode(defs: &[(u64, &Labels)], entries: &[(u64, &[Sample])], out: &mut Vec<u8>) {
    out.push(VERSION);
    put_uvarint(out, defs.len() as u64);
    for (id, labels) in defs {
        put_uvarint(out, *id);
        put_labels(out, labels);
    }
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
    if r.u8()? != VERSION {
        return Err(DecodeError("unknown record version"));
    }
    let mut out = Decoded::default();
    let n_defs = r.len(2)?;
    for _ in 0..n_defs {
        let id = r.uvarint()?;
        let labels = r.labels()?;
        out.defs.push((id, labels));
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
        assert!(decode(&[1, 0, 5, 0]).is_err());
        assert!(decode(&[1, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
