//! Samples, label sets (series identity) and the append input type

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};

/// One timestamped value. NaN values are stored as-is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A canonical label set: sorted by name, one value per name, no empty values.
///
/// The metric name is the `__name__` label. Empty values are dropped because, as in Prometheus,
/// a label with an empty value is indistinguishable from an absent label when matching.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds a canonical label set; when a name repeats, the last value wins.
    pub fn new(pairs: Vec<(String, String)>) -> Labels {
        let mut pairs: Vec<(String, String)> =
            pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        // reversed, then stably sorted: the last value given for a name comes first and is kept
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, kept| later.0 == kept.0);
        Labels(pairs)
    }

    /// The canonical label set of borrowed pairs ordered by `canonical_order`.
    pub(crate) fn from_order(pairs: &[(&str, &str)], order: &[usize]) -> Labels {
        Labels(
            order
                .iter()
                .map(|&i| (pairs[i].0.to_string(), pairs[i].1.to_string()))
                .collect(),
        )
    }

    /// Whether this set equals the canonical set of borrowed pairs ordered by `canonical_order`.
    pub(crate) fn eq_order(&self, pairs: &[(&str, &str)], order: &[usize]) -> bool {
        self.0.len() == order.len()
            && self
                .0
                .iter()
                .zip(order)
                .all(|((n, v), &i)| n == pairs[i].0 && v == pairs[i].1)
    }

    /// The 64-bit identity hash of this set; equals `hash_order` of any borrowed form of it.
    pub(crate) fn identity_hash(&self) -> u64 {
        hash_pairs(self.iter())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The metric name (`__name__`).
    pub fn name(&self) -> Option<&str> {
        self.get("__name__")
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

const HASH_SEED: u64 = 0x6b65_6570_7473_6462;

fn hash_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(HASH_SEED).build_hasher();
    for (name, value) in pairs {
        // `str` hashing is prefix-free (it appends a terminator), so pairs cannot run together
        name.hash(&mut h);
        value.hash(&mut h);
    }
    h.finish()
}

/// The identity hash of borrowed pairs ordered by `canonical_order`.
pub(crate) fn hash_order(pairs: &[(&str, &str)], order: &[usize]) -> u64 {
    hash_pairs(order.iter().map(|&i| pairs[i]))
}

/// Fills `order` with the positions of the pairs forming the canonical label set: sorted by name,
/// the last value of a repeated name wins, empty values dropped. Only indexes are moved.
pub(crate) fn canonical_order(pairs: &[(&str, &str)], order: &mut Vec<usize>) {
    order.clear();
    order.extend((0..pairs.len()).rev().filter(|&i| !pairs[i].1.is_empty()));
    // reversed input order plus a stable sort puts the last value of each name first
    order.sort_by(|&a, &b| pairs[a].0.cmp(pairs[b].0));
    order.dedup_by(|later, kept| pairs[*later].0 == pairs[*kept].0);
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// One series in an append batch; labels may be in any order.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSeries {
    pub labels: Vec<(String, String)>,
    pub samples: Vec<Sample>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn labels_are_sorted_deduped_and_drop_empty_values() {
        let l = Labels::new(vec![
            s("z", "1"),
            s("__name__", "up"),
            s("a", "x"),
            s("a", "y"),
            s("e", ""),
        ]);
        let got: Vec<_> = l.iter().collect();
        assert_eq!(got, vec![("__name__", "up"), ("a", "y"), ("z", "1")]);
        assert_eq!(l.name(), Some("up"));
        assert_eq!(l.get("e"), None);
        assert_eq!(l.get("z"), Some("1"));
        assert_eq!(
            l,
            Labels::new(vec![s("a", "y"), s("z", "1"), s("__name__", "up")])
        );
    }

    #[test]
    fn borrowed_order_matches_owned_canonical_form() {
        let pairs = [
            ("z", "1"),
            ("__name__", "up"),
            ("a", "x"),
            ("e", ""),
            ("a", "y"),
            ("a", ""),
        ];
        let mut order = Vec::new();
        canonical_order(&pairs, &mut order);
        let owned = Labels::new(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        );
        assert_eq!(Labels::from_order(&pairs, &order), owned);
        assert!(owned.eq_order(&pairs, &order));
        assert_eq!(hash_order(&pairs, &order), owned.identity_hash());
        assert_ne!(
            Labels::new(vec![s("ab", "c")]).identity_hash(),
            Labels::new(vec![s("a", "bc")]).identity_hash()
        );
    }
}
