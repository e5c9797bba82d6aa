//! Column codecs for block chunks: pco, or a compact varint form for short or very regular columns
//!
//! pcodec spends 25-50 bytes of header per array, which dominates short arrays (tier buckets,
//! sparse series); every column is encoded both ways and the smaller wins.
//! Column: `[tag u8][len uvarint][bytes]`; tag 0 = pco standalone, 1 = run-length coded
//! delta-of-delta integers, 2 = xor-with-previous floats (`[trailing zeros + 1 u8][xor >> tz uvarint]`,
//! or a single 0 byte when equal to the previous value).

use pco::ChunkConfig;
use pco::data_types::Number;

use crate::codec::{DecodeError, Reader, put_bytes, put_ivarint, put_uvarint};
use crate::error::Error;

const TAG_PCO: u8 = 0;
const TAG_DOD_RLE: u8 = 1;
const TAG_XOR: u8 = 2;

fn pco_bytes<T: Number>(values: &[T]) -> Result<Vec<u8>, Error> {
    pco::standalone::simple_compress(values, &ChunkConfig::default())
        .map_err(|e| Error::Compression(e.to_string()))
}

fn put_smaller(out: &mut Vec<u8>, pco: Vec<u8>, tag: u8, alt: Vec<u8>) {
    if alt.len() < pco.len() {
        out.push(tag);
        put_bytes(out, &alt);
    } else {
        out.push(TAG_PCO);
        put_bytes(out, &pco);
    }
}

fn dod_rle(values: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(&first) = values.first() else {
        return out;
    };
    put_ivarint(&mut out, first);
    let mut prev = first;
    let mut prev_delta = 0i64;
    let mut run: Option<(i64, u64)> = None;
    for &v in &values[1..] {
        let delta = v.wrapping_sub(prev);
        let dod = delta.wrapping_sub(prev_delta);
        prev = v;
        prev_delta = delta;
        run = match run {
            Some((d, n)) if d == dod => Some((d, n + 1)),
            Some((d, n)) => {
                put_ivarint(&mut out, d);
                put_uvarint(&mut out, n);
                Some((dod, 1))
            }
            None => Some((dod, 1)),
        };
    }
    if let Some((d, n)) = run {
        put_ivarint(&mut out, d);
        put_uvarint(&mut out, n);
    }
    out
}

fn xor_floats(values: &[f64]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = 0u64;
    for v in values {
        let bits = v.to_bits();
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            out.push(0);
        } else {
            let tz = x.trailing_zeros();
            out.push(tz as u8 + 1);
            put_uvarint(&mut out, x >> tz);
        }
    }
    out
}

pub(crate) fn put_i64s(out: &mut Vec<u8>, values: &[i64]) -> Result<(), Error> {
    put_smaller(out, pco_bytes(values)?, TAG_DOD_RLE, dod_rle(values));
    Ok(())
}

pub(crate) fn put_u64s(out: &mut Vec<u8>, values: &[u64]) -> Result<(), Error> {
    // counts are small, so reinterpreting them as i64 for the delta form is lossless
    let as_i64: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    put_smaller(out, pco_bytes(values)?, TAG_DOD_RLE, dod_rle(&as_i64));
    Ok(())
}

pub(crate) fn put_f64s(out: &mut Vec<u8>, values: &[f64]) -> Result<(), Error> {
    put_smaller(out, pco_bytes(values)?, TAG_XOR, xor_floats(values));
    Ok(())
}

fn get_pco<T: Number>(bytes: &[u8], n: usize) -> Result<Vec<T>, String> {
    let values = pco::standalone::simple_decompress::<T>(bytes).map_err(|e| format!("pco: {e}"))?;
    if values.len() != n {
        return Err(format!("expected {n} values, found {}", values.len()));
    }
    Ok(values)
}

fn get_dod_rle(bytes: &[u8], n: usize) -> Result<Vec<i64>, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::with_capacity(n.min(bytes.len().saturating_mul(64)));
    if n == 0 {
        return Ok(out);
    }
    let mut v = r.ivarint()?;
    out.push(v);
    let mut delta = 0i64;
    while out.len() < n {
        let dod = r.ivarint()?;
        let run = r.uvarint()?;
        if run == 0 || run > (n - out.len()) as u64 {
            return Err(DecodeError("run length does not match value count"));
        }
        for _ in 0..run {
            delta = delta.wrapping_add(dod);
            v = v.wrapping_add(delta);
            out.push(v);
        }
    }
    if r.remaining() != 0 {
        return Err(DecodeError("trailing bytes in column"));
    }
    Ok(out)
}

fn get_xor(bytes: &[u8], n: usize) -> Result<Vec<f64>, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::with_capacity(n.min(bytes.len()));
    let mut prev = 0u64;
    for _ in 0..n {
        let h = r.u8()?;
        if h != 0 {
            if h > 64 {
                return Err(DecodeError("bad xor header"));
            }
            prev ^= r.uvarint()? << (h - 1);
        }
        out.push(f64::from_bits(prev));
    }
    if r.remaining() != 0 {
        return Err(DecodeError("trailing bytes in column"));
    }
    Ok(out)
}

fn column<'a>(r: &mut Reader<'a>) -> Result<(u8, &'a [u8]), String> {
    let tag = r.u8().map_err(|e| e.to_string())?;
    let bytes = r.len_prefixed().map_err(|e| e.to_string())?;
    Ok((tag, bytes))
}

pub(crate) fn get_i64s(r: &mut Reader<'_>, n: usize) -> Result<Vec<i64>, String> {
    match column(r)? {
        (TAG_PCO, b) => get_pco(b, n),
        (TAG_DOD_RLE, b) => get_dod_rle(b, n).map_err(|e| e.to_string()),
        (tag, _) => Err(format!("unknown integer column tag {tag}")),
    }
}

pub(crate) fn get_u64s(r: &mut Reader<'_>, n: usize) -> Result<Vec<u64>, String> {
    match column(r)? {
        (TAG_PCO, b) => get_pco(b, n),
        (TAG_DOD_RLE, b) => Ok(get_dod_rle(b, n)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|v| v as u64)
            .collect()),
        (tag, _) => Err(format!("unknown count column tag {tag}")),
    }
}

pub(crate) fn get_f64s(r: &mut Reader<'_>, n: usize) -> Result<Vec<f64>, String> {
    match column(r)? {
        (TAG_PCO, b) => get_pco(b, n),
        (TAG_XOR, b) => get_xor(b, n).map_err(|e| e.to_string()),
        (tag, _) => Err(format!("unknown float column tag {tag}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn regular_timestamps_take_a_few_bytes() {
        let ts: Vec<i64> = (0..360).map(|i| 1_700_000_000_000 + i * 10_000).collect();
        let mut out = Vec::new();
        put_i64s(&mut out, &ts).unwrap();
        assert!(out.len() < 16, "{} bytes", out.len());
        assert_eq!(get_i64s(&mut Reader::new(&out), 360).unwrap(), ts);
        assert!(get_i64s(&mut Reader::new(&out), 361).is_err());
    }

    proptest! {
        #[test]
        fn columns_round_trip(ints in prop::collection::vec(any::<i64>(), 0..50),
                              small in prop::collection::vec(0i64..3, 0..50),
                              floats in prop::collection::vec(any::<f64>(), 0..50)) {
            for values in [&ints, &small] {
                let mut out = Vec::new();
                put_i64s(&mut out, values).unwrap();
                prop_assert_eq!(&get_i64s(&mut Reader::new(&out), values.len()).unwrap(), values);
            }
            let counts: Vec<u64> = small.iter().map(|&v| v as u64).collect();
            let mut out = Vec::new();
            put_u64s(&mut out, &counts).unwrap();
            prop_assert_eq!(get_u64s(&mut Reader::new(&out), counts.len()).unwrap(), counts);
            let mut out = Vec::new();
            put_f64s(&mut out, &floats).unwrap();
            let back = get_f64s(&mut Reader::new(&out), floats.len()).unwrap();
            prop_assert_eq!(back.iter().map(|f| f.to_bits()).collect::<Vec<_>>(), floats.iter().map(|f| f.to_bits()).collect::<Vec<_>>());
        }
    }
}
