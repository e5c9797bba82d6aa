//! collectd's types.db: the data sources (name, kind, bounds) of every value-list type, parsed from text or embedded.
//!
//! Format, one type per line: `name  ds_name:KIND:min:max, ds_name:KIND:min:max, ...` where KIND
//! is GAUGE, DERIVE, COUNTER or ABSOLUTE (any case) and min/max are numbers or `U` (unbounded).
//! Fields are separated by blanks; a comma may end a data-source field. `#` starts a comment.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::{CollectdError, DataSourceType};

/// A copy of Debian's /usr/share/collectd/types.db (collectd 5.12, package collectd-core; collectd's MIT-licensed data).
const BUILTIN_TYPES_DB: &str = include_str!("types.db");

// The embedded file is fixed at build time and a unit test parses it, so the fallback to an empty
// database is unreachable in a tested build; it only keeps this panic-free.
static BUILTIN: LazyLock<TypesDb> =
    LazyLock::new(|| TypesDb::parse(BUILTIN_TYPES_DB).unwrap_or_default());

/// One data source of a type: one value of every value list of that type.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSource {
    /// The data-source name (`value`, `rx`, `shortterm`, ...).
    pub name: String,
    /// How the value is typed and whether it is cumulative.
    pub kind: DataSourceType,
    /// The lowest sane value; `None` for `U`.
    pub min: Option<f64>,
    /// The highest sane value; `None` for `U`.
    pub max: Option<f64>,
}

/// A set of type definitions (collectd's `TypesDB`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypesDb {
    types: BTreeMap<String, Vec<DataSource>>,
}

impl TypesDb {
    /// Parses types.db text; errors name the 1-based line.
    ///
    /// A type defined twice in the same text is an error (use [`TypesDb::merge`] to override
    /// types from another file, as collectd does with several `TypesDB` files).
    pub fn parse(text: &str) -> Result<TypesDb, CollectdError> {
        let mut types = BTreeMap::new();
        let mut defined_on_line = BTreeMap::new();
        for (index, raw_line) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw_line.split('#').next().unwrap_or_default();
            let mut fields = content.split_whitespace();
            let Some(type_name) = fields.next() else {
                continue;
            };
            let error = |detail: String| CollectdError::TypesDb { line, detail };
            let data_sources = fields
                .map(|field| parse_data_source(field.strip_suffix(',').unwrap_or(field)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|detail| error(format!("type {type_name:?}: {detail}")))?;
            if data_sources.is_empty() {
                return Err(error(format!("type {type_name:?} has no data sources")));
            }
            if let Some(first) = defined_on_line.insert(type_name.to_owned(), line) {
                return Err(error(format!(
                    "type {type_name:?} is already defined on line {first}"
                )));
            }
            types.insert(type_name.to_owned(), data_sources);
        }
        Ok(TypesDb { types })
    }

    /// The types.db of Debian's collectd 5.12, embedded at build time (parsed once).
    pub fn builtin() -> &'static TypesDb {
        &BUILTIN
    }

    /// The data sources of `type_name`, if defined.
    pub fn get(&self, type_name: &str) -> Option<&[DataSource]> {
        self.types.get(type_name).map(Vec::as_slice)
    }

    /// Adds `other`'s types, replacing same-named ones (collectd's rule for later `TypesDB` files).
    pub fn merge(&mut self, other: TypesDb) {
        self.types.extend(other.types);
    }

    /// How many types are defined.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether no type is defined.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The type names and their data sources, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[DataSource])> {
        self.types
            .iter()
            .map(|(name, sources)| (name.as_str(), sources.as_slice()))
    }
}

/// `name:KIND:min:max` → a data source; the error says what is wrong with the field.
fn parse_data_source(field: &str) -> Result<DataSource, String> {
    let parts: Vec<&str> = field.split(':').collect();
    let [name, kind, min, max] = parts.as_slice() else {
        return Err(format!(
            "data source {field:?} has {} colon-separated fields, expected name:type:min:max",
            parts.len()
        ));
    };
    if name.is_empty() {
        return Err(format!("data source {field:?} has an empty name"));
    }
    let kind = match kind.to_ascii_uppercase().as_str() {
        "GAUGE" => DataSourceType::Gauge,
        "DERIVE" => DataSourceType::Derive,
        "COUNTER" => DataSourceType::Counter,
        "ABSOLUTE" => DataSourceType::Absolute,
        _ => {
            return Err(format!(
                "data source {name:?} has type {kind:?}, expected GAUGE, DERIVE, COUNTER or ABSOLUTE"
            ));
        }
    };
    Ok(DataSource {
        name: (*name).to_owned(),
        kind,
        min: parse_bound(name, "min", min)?,
        max: parse_bound(name, "max", max)?,
    })
}

fn parse_bound(name: &str, which: &str, text: &str) -> Result<Option<f64>, String> {
    if text.eq_ignore_ascii_case("U") {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(bound) if !bound.is_nan() => Ok(Some(bound)),
        _ => Err(format!(
            "data source {name:?} has {which} {text:?}, expected a number or U"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_knows_the_common_types() {
        // Parse directly too: `builtin()` would hide a parse error behind an empty database.
        let parsed = TypesDb::parse(BUILTIN_TYPES_DB).unwrap();
        assert_eq!(&parsed, TypesDb::builtin());
        assert!(parsed.len() > 300, "only {} types", parsed.len());

        let load = parsed.get("load").unwrap();
        let names: Vec<&str> = load.iter().map(|source| source.name.as_str()).collect();
        assert_eq!(names, ["shortterm", "midterm", "longterm"]);
        assert_eq!(load[0].kind, DataSourceType::Gauge);
        assert_eq!(load[0].min, Some(0.0));
        assert_eq!(load[0].max, Some(5000.0));

        let cpu = parsed.get("cpu").unwrap();
        assert_eq!(cpu.len(), 1);
        assert_eq!(cpu[0].kind, DataSourceType::Derive);
        assert_eq!(cpu[0].max, None);

        let octets = parsed.get("if_octets").unwrap();
        assert_eq!(octets[1].name, "tx");
        assert!(parsed.get("no_such_type").is_none());
    }

    #[test]
    fn parses_comments_blank_lines_commas_and_case() {
        let text = "# header\n\n  mytype  a:gauge:U:10, b:Derive:0:U # trailing\nother x:ABSOLUTE:-1.5:2e3\n";
        let types_db = TypesDb::parse(text).unwrap();
        assert_eq!(types_db.len(), 2);
        let mytype = types_db.get("mytype").unwrap();
        assert_eq!(mytype.len(), 2);
        assert_eq!(mytype[0].kind, DataSourceType::Gauge);
        assert_eq!(mytype[0].min, None);
        assert_eq!(mytype[0].max, Some(10.0));
        assert_eq!(mytype[1].kind, DataSourceType::Derive);
        let other = types_db.get("other").unwrap();
        assert_eq!(other[0].kind, DataSourceType::Absolute);
        assert_eq!(other[0].min, Some(-1.5));
        assert_eq!(other[0].max, Some(2000.0));
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let cases = [
            (
                "ok value:GAUGE:0:U\nbad value:GAUGE:0\n",
                "types.db line 2: type \"bad\": data source \"value:GAUGE:0\" has 3 colon-separated fields, expected name:type:min:max",
            ),
            (
                "bad value:FLOAT:0:U",
                "types.db line 1: type \"bad\": data source \"value\" has type \"FLOAT\", expected GAUGE, DERIVE, COUNTER or ABSOLUTE",
            ),
            (
                "\n\nbad value:GAUGE:zero:U",
                "types.db line 3: type \"bad\": data source \"value\" has min \"zero\", expected a number or U",
            ),
            (
                "bad value:GAUGE:0:NaN",
                "types.db line 1: type \"bad\": data source \"value\" has max \"NaN\", expected a number or U",
            ),
            (
                "lonely\n",
                "types.db line 1: type \"lonely\" has no data sources",
            ),
            (
                "bad :GAUGE:0:U",
                "types.db line 1: type \"bad\": data source \":GAUGE:0:U\" has an empty name",
            ),
            (
                "twice value:GAUGE:0:U\n# gap\ntwice value:DERIVE:0:U\n",
                "types.db line 3: type \"twice\" is already defined on line 1",
            ),
        ];
        for (text, expected) in cases {
            let error = TypesDb::parse(text).unwrap_err();
            assert_eq!(error.to_string(), expected, "for {text:?}");
        }
    }

    #[test]
    fn merge_overrides_same_named_types() {
        let mut base = TypesDb::parse("a value:GAUGE:0:U\nb value:GAUGE:0:U").unwrap();
        base.merge(TypesDb::parse("b value:DERIVE:0:U\nc value:COUNTER:0:U").unwrap());
        assert_eq!(base.len(), 3);
        assert_eq!(base.get("b").unwrap()[0].kind, DataSourceType::Derive);
        assert_eq!(
            base.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert!(!base.is_empty());
        assert!(TypesDb::default().is_empty());
    }
}
