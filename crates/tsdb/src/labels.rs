//! Samples, label sets (series identity) and the append input type

use std::collections::BTreeMap;
use std::fmt;

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
        let map: BTreeMap<String, String> =
            pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        Labels(map.into_iter().collect())
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
}
