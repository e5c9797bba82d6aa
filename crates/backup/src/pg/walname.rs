//! PostgreSQL's WAL file names: segments (`TTTTTTTTLLLLLLLLSSSSSSSS`), partial segments, timeline
//! history files and backup history files.

/// PostgreSQL's default WAL segment size.
pub const DEFAULT_SEGMENT_SIZE: u64 = 16 << 20;

/// What kind of file a WAL name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalKind {
    /// A complete segment.
    Segment,
    /// A segment cut short at a promotion (`.partial`).
    Partial,
    /// A timeline history file (`TTTTTTTT.history`).
    History,
    /// A backup history file (`<segment>.<offset>.backup`).
    Backup,
}

/// A parsed WAL file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalName {
    /// The name as PostgreSQL wrote it.
    pub name: String,
    /// Its kind.
    pub kind: WalKind,
    /// Timeline.
    pub timeline: u32,
    /// The "log" half of the segment number (0 for history files).
    pub log: u32,
    /// The "seg" half of the segment number (0 for history files).
    pub seg: u32,
}

fn hex8(text: &str) -> Option<u32> {
    (text.len() == 8 && text.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(text, 16).ok())
        .flatten()
}

impl WalName {
    /// Parses a WAL file name; `None` for anything else.
    pub fn parse(name: &str) -> Option<WalName> {
        let (kind, stem) = if let Some(stem) = name.strip_suffix(".history") {
            (WalKind::History, stem)
        } else if let Some(stem) = name.strip_suffix(".partial") {
            (WalKind::Partial, stem)
        } else if let Some(stem) = name.strip_suffix(".backup") {
            let (segment, offset) = stem.split_once('.')?;
            hex8(offset)?;
            (WalKind::Backup, segment)
        } else {
            (WalKind::Segment, name)
        };
        if kind == WalKind::History {
            return Some(WalName {
                name: name.to_owned(),
                kind,
                timeline: hex8(stem)?,
                log: 0,
                seg: 0,
            });
        }
        if stem.len() != 24 {
            return None;
        }
        let timeline = hex8(stem.get(0..8)?)?;
        let log = hex8(stem.get(8..16)?)?;
        let seg = hex8(stem.get(16..24)?)?;
        Some(WalName {
            name: name.to_owned(),
            kind,
            timeline,
            log,
            seg,
        })
    }

    /// Segments per "log" for `segment_size` (256 for 16 MiB segments).
    fn segments_per_log(segment_size: u64) -> u64 {
        (0x1_0000_0000_u64 / segment_size.max(1)).max(1)
    }

    /// The segment number within the timeline, for segments of `segment_size` bytes.
    pub fn segment_number(&self, segment_size: u64) -> u64 {
        u64::from(self.log) * Self::segments_per_log(segment_size) + u64::from(self.seg)
    }

    /// The name of segment `number` on `timeline`.
    pub fn segment_name(timeline: u32, number: u64, segment_size: u64) -> String {
        let per_log = Self::segments_per_log(segment_size);
        format!(
            "{timeline:08X}{:08X}{:08X}",
            number / per_log,
            number % per_log
        )
    }

    /// The segment holding `lsn` (PostgreSQL's `X/Y` text form) on `timeline`.
    pub fn segment_of_lsn(timeline: u32, lsn: &str, segment_size: u64) -> Option<String> {
        let position = parse_lsn(lsn)?;
        Some(Self::segment_name(
            timeline,
            position / segment_size.max(1),
            segment_size,
        ))
    }
}

/// Parses an LSN written as `X/Y` (hex halves).
pub fn parse_lsn(lsn: &str) -> Option<u64> {
    let (high, low) = lsn.trim().split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    (high <= u64::from(u32::MAX) && low <= u64::from(u32::MAX)).then_some((high << 32) | low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        let segment = WalName::parse("00000002000000010000000A").unwrap();
        assert_eq!(
            (segment.kind, segment.timeline, segment.log, segment.seg),
            (WalKind::Segment, 2, 1, 10)
        );
        assert_eq!(segment.segment_number(DEFAULT_SEGMENT_SIZE), 256 + 10);
        assert_eq!(
            WalName::parse("00000002.history").unwrap().kind,
            WalKind::History
        );
        assert_eq!(
            WalName::parse("000000010000000000000002.00000028.backup")
                .unwrap()
                .kind,
            WalKind::Backup
        );
        assert_eq!(
            WalName::parse("000000010000000000000002.partial")
                .unwrap()
                .kind,
            WalKind::Partial
        );
        for bad in [
            "",
            "archive_status",
            "00000001000000000000000",
            "0000000100000000000000zz",
            "x.history",
            "000000010000000000000002.backup",
        ] {
            assert!(WalName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn segment_numbers_and_names_round_trip() {
        for number in [0_u64, 1, 255, 256, 257, 70_000] {
            let name = WalName::segment_name(1, number, DEFAULT_SEGMENT_SIZE);
            let parsed = WalName::parse(&name).unwrap();
            assert_eq!(parsed.segment_number(DEFAULT_SEGMENT_SIZE), number);
        }
        assert_eq!(
            WalName::segment_name(1, 256, DEFAULT_SEGMENT_SIZE),
            "000000010000000100000000"
        );
        assert_eq!(
            WalName::segment_of_lsn(1, "1/2000028", DEFAULT_SEGMENT_SIZE).unwrap(),
            "000000010000000100000002"
        );
        assert_eq!(parse_lsn("0/16B3748"), Some(0x16B_3748));
        assert_eq!(parse_lsn("nonsense"), None);
    }
}
