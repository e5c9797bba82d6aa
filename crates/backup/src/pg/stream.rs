//! The streamed tail of the WAL: the segment PostgreSQL is still writing, as received over the
//! replication protocol (`pg_receivewal` writes it as `<segment>.partial`, zero-padded to a whole
//! segment), uploaded every second or so while it grows. Archiving covers complete segments; a
//! tail covers what was committed since, which brings the RPO from `archive_timeout` down to
//! seconds.
//!
//! Each upload is a new object and receipt under `<platform>/<database>/stream/<segment>.<valid
//! bytes as 8 hex digits>`, so nothing is ever overwritten; shorter tails of the same segment and
//! tails of segments since archived whole are deleted afterwards (receipt first). A restore uses
//! the longest tail of the segment right after the continuous archived WAL, padded with zeros:
//! recovery replays it up to its last complete record.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{DatabaseLayout, PG_FORMAT_VERSION, PgBackupError, WalKind, WalName, WalReceipt};
use crate::{ObjectInfo, Recipient, RepoError, Repository};

/// The receipt of one streamed tail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamReceipt {
    /// Format version ([`PG_FORMAT_VERSION`]).
    pub format: u32,
    /// The platform.
    pub platform: String,
    /// The database (component) name.
    pub database: String,
    /// The segment's WAL file name.
    pub segment_name: String,
    /// Its timeline.
    pub timeline: u32,
    /// Its number within the timeline.
    pub segment: u64,
    /// The cluster's WAL segment size.
    pub segment_size: u64,
    /// Bytes from the segment's start that were streamed (the rest of the segment is zeros).
    pub valid_bytes: u64,
    /// The stored object (the first `valid_bytes` of the segment).
    pub object: ObjectInfo,
    /// When the object was complete in the repository (Unix ms).
    pub uploaded_at_ms: i64,
}

impl StreamReceipt {
    /// The name of the tail in the repository: `<segment>.<valid bytes, 8 hex digits>`.
    pub fn tail_name(&self) -> String {
        tail_name(&self.segment_name, self.valid_bytes)
    }

    /// The tail as a WAL file of the restore plan (written under the segment's name and padded
    /// with zeros to a whole segment).
    pub fn as_wal_receipt(&self) -> WalReceipt {
        WalReceipt {
            format: self.format,
            platform: self.platform.clone(),
            database: self.database.clone(),
            name: self.segment_name.clone(),
            timeline: self.timeline,
            segment: self.segment,
            segment_size: self.segment_size,
            object: self.object.clone(),
            archived_at_ms: self.uploaded_at_ms,
        }
    }

    /// The position (within the timeline) up to which this tail holds WAL.
    pub fn end_position(&self) -> u64 {
        self.segment * self.segment_size + self.valid_bytes
    }
}

/// `<segment>.<valid bytes, 8 hex digits>`.
pub fn tail_name(segment_name: &str, valid_bytes: u64) -> String {
    format!("{segment_name}.{valid_bytes:08x}")
}

/// Splits a tail name into the segment name and the valid bytes.
pub fn parse_tail_name(name: &str) -> Option<(String, u64)> {
    let (segment, bytes) = name.rsplit_once('.')?;
    let wal = WalName::parse(segment)?;
    if wal.kind != WalKind::Segment || bytes.len() != 8 {
        return None;
    }
    Some((segment.to_owned(), u64::from_str_radix(bytes, 16).ok()?))
}

/// Bytes of `data` up to and including its last non-zero byte. WAL is only appended to a
/// segment, and what follows is zeros both in the file and when a restore pads the tail, so equal
/// lengths mean equal content: a tail's name (its length) identifies it.
pub fn valid_prefix(data: &[u8]) -> usize {
    data.iter()
        .rposition(|byte| *byte != 0)
        .map_or(0, |last| last + 1)
}

/// Uploads the streamed tail in `path` (`<segment>.partial`) unless its valid part is empty or
/// is `previous` (the tail name uploaded last). Returns the new receipt, or `None` when there was
/// nothing new.
pub async fn upload_stream_tail(
    repository: &Repository,
    layout: &DatabaseLayout,
    recipients: &[Recipient],
    level: i32,
    path: &Path,
    previous: Option<&str>,
    now_ms: &(dyn Fn() -> i64 + Send + Sync),
) -> Result<Option<StreamReceipt>, PgBackupError> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let segment_name = file_name
        .strip_suffix(".partial")
        .filter(|stem| WalName::parse(stem).is_some_and(|wal| wal.kind == WalKind::Segment))
        .ok_or_else(|| PgBackupError::NotWal {
            name: file_name.clone(),
        })?
        .to_owned();
    let wal = WalName::parse(&segment_name).ok_or_else(|| PgBackupError::NotWal {
        name: segment_name.clone(),
    })?;
    let data = tokio::fs::read(path)
        .await
        .map_err(PgBackupError::io(path))?;
    let segment_size = data.len() as u64;
    let valid = valid_prefix(&data);
    let name = tail_name(&segment_name, valid as u64);
    if valid == 0 || previous == Some(name.as_str()) {
        return Ok(None);
    }
    let key = layout.stream_object(&name)?;
    let bytes = &data[..valid];
    let object = match repository.put_object(&key, bytes, recipients, level).await {
        Err(RepoError::AlreadyExists { .. }) => {
            // An earlier attempt stopped between the object and its receipt, or the receipt
            // exists: either way the same bytes (the name says how many) are stored again.
            if repository
                .get_manifest(&layout.stream_receipt(&name)?)
                .await
                .is_ok()
            {
                return Ok(None);
            }
            repository.delete_object(&key).await?;
            repository
                .put_object(&key, bytes, recipients, level)
                .await?
        }
        other => other?,
    };
    let receipt = StreamReceipt {
        format: PG_FORMAT_VERSION,
        platform: layout.platform().to_owned(),
        database: layout.database().to_owned(),
        segment_name,
        timeline: wal.timeline,
        segment: wal.segment_number(segment_size),
        segment_size,
        valid_bytes: valid as u64,
        object,
        uploaded_at_ms: now_ms(),
    };
    let json = serde_json::to_vec_pretty(&receipt).map_err(|error| PgBackupError::Manifest {
        name: name.clone(),
        message: error.to_string(),
    })?;
    match repository
        .put_manifest(&layout.stream_receipt(&name)?, &json)
        .await
    {
        Ok(()) | Err(RepoError::AlreadyExists { .. }) => Ok(Some(receipt)),
        Err(error) => Err(error.into()),
    }
}

/// The names of the streamed tails in the repository (from the listing alone).
pub async fn list_stream_tails(
    repository: &Repository,
    layout: &DatabaseLayout,
) -> Result<Vec<String>, PgBackupError> {
    let mut names: Vec<String> = repository
        .list_manifests(&layout.stream_folder())
        .await?
        .iter()
        .filter_map(|name| name.as_str().rsplit('/').next().map(str::to_owned))
        .filter(|name| parse_tail_name(name).is_some())
        .collect();
    names.sort();
    Ok(names)
}

/// Every streamed tail's receipt, sorted by segment name then length.
pub async fn read_stream_receipts(
    repository: &Repository,
    layout: &DatabaseLayout,
) -> Result<Vec<StreamReceipt>, PgBackupError> {
    // The agent prunes tails while this runs: one listed but gone by the time it is read is
    // skipped (a longer one replaced it).
    let mut receipts = Vec::new();
    for name in repository.list_manifests(&layout.stream_folder()).await? {
        match repository.get_manifest(&name).await {
            Ok(bytes) => receipts.push(super::parse_manifest::<StreamReceipt>(&name, &bytes)?),
            Err(RepoError::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    receipts.sort_by(|left, right| {
        (&left.segment_name, left.valid_bytes).cmp(&(&right.segment_name, right.valid_bytes))
    });
    Ok(receipts)
}

/// Deletes tails made obsolete (receipt first, then object): shorter tails of a segment that has
/// a longer one among `names`, and tails of segments archived whole. Returns the names kept.
pub async fn prune_stream_tails(
    repository: &Repository,
    layout: &DatabaseLayout,
    names: Vec<String>,
) -> Result<Vec<String>, PgBackupError> {
    let mut parsed: Vec<(String, u64, String)> = names
        .into_iter()
        .filter_map(|name| parse_tail_name(&name).map(|(segment, len)| (segment, len, name)))
        .collect();
    parsed.sort();
    let mut kept = Vec::new();
    for (index, (segment, _, name)) in parsed.iter().enumerate() {
        let longer_exists = parsed
            .get(index + 1)
            .is_some_and(|(next, _, _)| next == segment);
        let obsolete = longer_exists
            || repository
                .get_manifest(&layout.wal_receipt(segment)?)
                .await
                .is_ok();
        if obsolete {
            match repository
                .delete_manifest(&layout.stream_receipt(name)?)
                .await
            {
                Ok(()) | Err(RepoError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            match repository.delete_object(&layout.stream_object(name)?).await {
                Ok(()) | Err(RepoError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        } else {
            kept.push(name.clone());
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_valid_prefix_ends_at_the_last_byte_written() {
        let mut data = vec![0u8; 4 * 8192];
        assert_eq!(valid_prefix(&data), 0);
        data[0] = 1;
        assert_eq!(valid_prefix(&data), 1);
        // A record appended in the same page makes the tail longer, so it gets a new name.
        data[100] = 1;
        assert_eq!(valid_prefix(&data), 101);
        data[4 * 8192 - 1] = 1;
        assert_eq!(valid_prefix(&data), 4 * 8192);
    }

    #[test]
    fn tail_names_round_trip_and_refuse_others() {
        let name = tail_name("000000010000000000000003", 0x1_2000);
        assert_eq!(name, "000000010000000000000003.00012000");
        assert_eq!(
            parse_tail_name(&name),
            Some(("000000010000000000000003".to_owned(), 0x1_2000))
        );
        assert_eq!(parse_tail_name("000000010000000000000003"), None);
        assert_eq!(parse_tail_name("00000002.history.00000010"), None);
        assert_eq!(parse_tail_name("000000010000000000000003.12"), None);
    }
}
