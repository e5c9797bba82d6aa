//! The `State` of a monitor, rule, host or platform, ordered so that the worst state wins.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Health state of a monitor, rule, host or platform.
///
/// States are totally ordered by *badness*, so combining several states is a
/// plain `max` (worst wins):
///
/// `ok` < `unknown` < `warning` < `critical`
///
/// `unknown` ranks above `ok` because a thing we cannot observe must not make
/// an aggregate look healthy, and below `warning` because "no data" is less
/// actionable than a threshold that is known to be crossed. A platform with
/// one `unknown` host and otherwise `ok` hosts is therefore `unknown`; one
/// `warning` host makes it `warning` regardless of unknowns.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Everything within thresholds.
    #[default]
    Ok,
    /// No (recent) data: the monitor did not report, or its value could not be evaluated.
    Unknown,
    /// A warning threshold is crossed.
    Warning,
    /// A critical threshold is crossed.
    Critical,
}

impl State {
    /// Every state, from best to worst.
    pub const ALL: [State; 4] = [State::Ok, State::Unknown, State::Warning, State::Critical];

    /// The lowercase name used in JSON and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Unknown => "unknown",
            State::Warning => "warning",
            State::Critical => "critical",
        }
    }

    /// The worse of two states.
    #[must_use]
    pub fn worst_of(self, other: State) -> State {
        self.max(other)
    }

    /// The worst state of an iterator; `ok` when it is empty (nothing is wrong).
    pub fn worst(states: impl IntoIterator<Item = State>) -> State {
        states.into_iter().max().unwrap_or(State::Ok)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when parsing a [`State`] from a string fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid state {0:?}: use ok, warning, critical or unknown")]
pub struct StateParseError(String);

impl FromStr for State {
    type Err = StateParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| StateParseError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_is_total_and_worst_wins() {
        let rank = |s: State| match s {
            State::Ok => 0,
            State::Unknown => 1,
            State::Warning => 2,
            State::Critical => 3,
        };
        for a in State::ALL {
            for b in State::ALL {
                // totality and consistency with the documented rank
                assert_eq!(a.cmp(&b), rank(a).cmp(&rank(b)), "{a} vs {b}");
                assert_eq!(a == b, rank(a) == rank(b));
                // worst wins, commutative
                let w = a.worst_of(b);
                assert_eq!(w, b.worst_of(a));
                assert!(w >= a && w >= b);
                assert!(w == a || w == b);
                for c in State::ALL {
                    // transitivity and associativity
                    if a <= b && b <= c {
                        assert!(a <= c);
                    }
                    assert_eq!(a.worst_of(b).worst_of(c), a.worst_of(b.worst_of(c)));
                    assert_eq!(State::worst([a, b, c]), a.worst_of(b).worst_of(c));
                }
            }
        }
        assert_eq!(State::worst([]), State::Ok);
        assert_eq!(State::worst([State::Ok, State::Unknown]), State::Unknown);
        assert_eq!(
            State::worst([State::Unknown, State::Warning]),
            State::Warning
        );
        assert_eq!(
            State::worst([State::Critical, State::Unknown, State::Ok]),
            State::Critical
        );
    }

    #[test]
    fn serde_and_from_str_use_lowercase_names() {
        for s in State::ALL {
            let json = serde_json::to_string(&s).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            let back: State = serde_json::from_str(&json).unwrap_or(State::Critical);
            assert_eq!(back, s);
            assert_eq!(s.as_str().parse::<State>(), Ok(s));
        }
        assert_eq!(
            "OK".parse::<State>().map_err(|e| e.to_string()),
            Err("invalid state \"OK\": use ok, warning, critical or unknown".to_owned())
        );
        assert!(serde_json::from_str::<State>("\"Critical\"").is_err());
    }
}
