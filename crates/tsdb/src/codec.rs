//! Varint/zigzag encoding and a bounds-checked byte reader shared by the wal and block formats

use crate::labels::Labels;

/// A decoding failure; callers attach the file path and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(crate) fn put_ivarint(buf: &mut Vec<u8>, v: i64) {
    // zigzag so that small negative deltas stay small
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

pub(crate) fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

#[cfg(test)]
pub(crate) fn put_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for (name, value) in labels.iter() {
        put_bytes(buf, name.as_bytes());
        put_bytes(buf, value.as_bytes());
    }
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError("unexpected end of data"))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(DecodeError("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError("varint too long"));
            }
        }
    }

    pub(crate) fn ivarint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A length read from data, checked against what is left so corrupt input cannot force huge allocations.
    pub(crate) fn len(&mut self, unit_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| DecodeError("length does not fit in memory"))?;
        if n.saturating_mul(unit_bytes.max(1)) > self.remaining() {
            return Err(DecodeError("length exceeds remaining data"));
        }
        Ok(n)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError("unexpected end of data"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn len_prefixed(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len(1)?;
        self.bytes(n)
    }

    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.len_prefixed()?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError("string is not utf-8"))
    }

    pub(crate) fn u32_le(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn f64_le(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(self.u64_le()?))
    }

    pub(crate) fn labels(&mut self) -> Result<Labels, DecodeError> {
        // each label needs at least two length bytes
        let n = self.len(2)?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let value = self.string()?;
            pairs.push((name, value));
        }
        let labels = Labels::new(pairs);
        if labels.len() != n {
            return Err(DecodeError("label set is not canonical"));
        }
        Ok(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_including_extremes() {
        let values = [0i64, 1, -1, 63, -64, 64, 1 << 40, i64::MIN, i64::MAX];
        let mut buf = Vec::new();
        for v in values {
            put_ivarint(&mut buf, v);
        }
        put_uvarint(&mut buf, u64::MAX);
        let mut r = Reader::new(&buf);
        for v in values {
            assert_eq!(r.ivarint(), Ok(v));
        }
        assert_eq!(r.uvarint(), Ok(u64::MAX));
        assert_eq!(r.remaining(), 0);
        assert!(r.u8().is_err());
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let buf = [0xffu8; 11];
        assert!(Reader::new(&buf).uvarint().is_err());
    }
}
