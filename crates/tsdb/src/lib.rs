//! cloudkeep-tsdb: an embedded time-series engine (wal, head, pco-compressed blocks, downsampled tiers)
//!
//! The engine keeps recent samples in an in-memory head backed by a write-ahead log, seals the head
//! into immutable per-seal raw block files, later downsamples them into 5 minute and 1 hour
//! aggregate tiers (`Tsdb::downsample`) and answers selector-based queries across head, frozen and
//! sealed data. See `NOTES.md` for the on-disk formats.

#![forbid(unsafe_code)]

mod aggregate;
mod block;
mod codec;
mod column;
mod db;
mod error;
mod labels;
mod selector;
mod wal;

pub use db::{AppendStats, DbStats, Options, SeriesPoints, SeriesRef, Tsdb};
pub use error::Error;
pub use labels::{InputSeries, Labels, Sample};
pub use selector::{MatchOp, Matcher, Selector, SelectorError};

/// Storage resolution of data returned by a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Samples exactly as appended.
    Raw,
    /// Per-series aggregates over epoch-aligned 5 minute buckets.
    FiveMinutes,
    /// Per-series aggregates over epoch-aligned 1 hour buckets.
    OneHour,
}

impl Tier {
    /// Bucket width in milliseconds; `None` for raw data.
    pub fn bucket_ms(self) -> Option<i64> {
        match self {
            Tier::Raw => None,
            Tier::FiveMinutes => Some(5 * 60 * 1000),
            Tier::OneHour => Some(60 * 60 * 1000),
        }
    }
}

/// How samples falling into one step bucket are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregation {
    Avg,
    Min,
    Max,
    Count,
    Last,
    Sum,
}
