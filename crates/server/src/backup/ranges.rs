//! Folding a database's archived WAL files into contiguous runs per timeline: what point-in-time
//! recovery can reach, and where the gaps are. Pure: rows in, views out.

use cloudkeep_protocol::backup::WalRangeView;
use cloudkeep_store::WalFileRecord;

/// Length of a WAL segment file name: timeline, log and segment as 8 hex digits each.
const SEGMENT_NAME_LEN: usize = 24;

/// Whether `name` is a WAL segment (`000000010000000000000003`), not a `.history`, `.backup` or
/// `.partial` file.
pub(crate) fn is_segment_name(name: &str) -> bool {
    name.len() == SEGMENT_NAME_LEN && name.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The runs of consecutive segment numbers of one database's WAL files, per timeline, oldest first
/// (by timeline, then segment). Other files neither form nor break runs.
pub(crate) fn fold_wal_ranges(files: &[WalFileRecord]) -> Vec<WalRangeView> {
    let mut segments: Vec<&WalFileRecord> = files
        .iter()
        .filter(|file| is_segment_name(&file.name))
        .collect();
    segments
        .sort_by(|a, b| (a.timeline, a.segment, &a.name).cmp(&(b.timeline, b.segment, &b.name)));
    let mut ranges: Vec<(i64, i64, WalRangeView)> = Vec::new();
    for file in segments {
        if let Some((timeline, last_segment, range)) = ranges.last_mut()
            && *timeline == file.timeline
            && file.segment <= *last_segment + 1
        {
            // A segment number seen twice (a malformed report) is counted once.
            if file.segment == *last_segment + 1 {
                *last_segment = file.segment;
                range.last = file.name.clone();
                range.segments += 1;
                range.plain_bytes += to_u64(file.plain_bytes);
                range.stored_bytes += to_u64(file.stored_bytes);
                range.first_archived_at_ms = range.first_archived_at_ms.min(file.archived_at_ms);
                range.last_archived_at_ms = range.last_archived_at_ms.max(file.archived_at_ms);
            }
            continue;
        }
        ranges.push((
            file.timeline,
            file.segment,
            WalRangeView {
                timeline: u32::try_from(file.timeline).unwrap_or(0),
                first: file.name.clone(),
                last: file.name.clone(),
                segments: 1,
                plain_bytes: to_u64(file.plain_bytes),
                stored_bytes: to_u64(file.stored_bytes),
                first_archived_at_ms: file.archived_at_ms,
                last_archived_at_ms: file.archived_at_ms,
            },
        ));
    }
    ranges.into_iter().map(|(_, _, range)| range).collect()
}

/// A stored count back to its unsigned form (it was stored from one).
pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal(timeline: i64, segment: i64, archived_at_ms: i64) -> WalFileRecord {
        WalFileRecord {
            platform: "shop".into(),
            database: "db".into(),
            name: format!("{timeline:08X}{:08X}{:08X}", segment >> 8, segment & 0xff),
            timeline,
            segment,
            plain_bytes: 16,
            stored_bytes: 2,
            archived_at_ms,
            upload_ms: 1,
            reported_at_ms: archived_at_ms,
        }
    }

    fn other(name: &str, timeline: i64, archived_at_ms: i64) -> WalFileRecord {
        WalFileRecord {
            name: name.into(),
            segment: 0,
            ..wal(timeline, 0, archived_at_ms)
        }
    }

    fn summary(ranges: &[WalRangeView]) -> Vec<String> {
        ranges
            .iter()
            .map(|range| {
                format!(
                    "tl{} {}..{} n={} plain={} stored={} at={}..{}",
                    range.timeline,
                    range.first,
                    range.last,
                    range.segments,
                    range.plain_bytes,
                    range.stored_bytes,
                    range.first_archived_at_ms,
                    range.last_archived_at_ms
                )
            })
            .collect()
    }

    #[test]
    fn consecutive_segments_form_one_range_and_gaps_split_it() {
        let files = vec![
            wal(1, 5, 50),
            wal(1, 3, 30),
            wal(1, 4, 40),
            wal(1, 7, 70),
            wal(1, 0xff, 80),
            wal(1, 0x100, 90),
        ];
        assert_eq!(
            summary(&fold_wal_ranges(&files)),
            [
                "tl1 000000010000000000000003..000000010000000000000005 n=3 plain=48 stored=6 at=30..50",
                "tl1 000000010000000000000007..000000010000000000000007 n=1 plain=16 stored=2 at=70..70",
                "tl1 0000000100000000000000FF..000000010000000100000000 n=2 plain=32 stored=4 at=80..90",
            ]
        );
    }

    #[test]
    fn timelines_are_separate_and_other_files_neither_form_nor_break_ranges() {
        let files = vec![
            wal(1, 2, 20),
            other("00000002.history", 2, 25),
            other("000000010000000000000002.00000028.backup", 1, 26),
            wal(1, 3, 30),
            wal(2, 3, 31),
            other("000000020000000000000004.partial", 2, 32),
            wal(2, 4, 40),
        ];
        assert_eq!(
            summary(&fold_wal_ranges(&files)),
            [
                "tl1 000000010000000000000002..000000010000000000000003 n=2 plain=32 stored=4 at=20..30",
                "tl2 000000020000000000000003..000000020000000000000004 n=2 plain=32 stored=4 at=31..40",
            ]
        );
        assert!(fold_wal_ranges(&[other("00000002.history", 2, 1)]).is_empty());
        assert!(fold_wal_ranges(&[]).is_empty());
    }

    #[test]
    fn archive_times_are_the_range_extremes_whatever_the_upload_order() {
        // Parallel uploads finish out of order.
        let files = vec![wal(1, 1, 300), wal(1, 2, 100), wal(1, 3, 200)];
        assert_eq!(
            summary(&fold_wal_ranges(&files)),
            [
                "tl1 000000010000000000000001..000000010000000000000003 n=3 plain=48 stored=6 at=100..300"
            ]
        );
    }

    #[test]
    fn segment_names_are_recognised() {
        assert!(is_segment_name("000000010000000000000003"));
        assert!(is_segment_name("0000000A00000001000000FF"));
        assert!(!is_segment_name("00000002.history"));
        assert!(!is_segment_name("000000010000000000000002.00000028.backup"));
        assert!(!is_segment_name("00000001000000000000000G"));
    }
}
