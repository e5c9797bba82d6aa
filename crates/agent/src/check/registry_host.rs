//! Building the host checks (`process`, `postgres`) from a monitor's kind and options.

use std::path::Path;

use crate::check::postgres::PostgresCheck;
use crate::check::process::ProcessCheck;
use crate::check::{Check, CheckConfigError};

/// Builds the check for `kind` when it is one of the host checks (`process`, `postgres`);
/// `None` for any other kind, which another registry owns. `proc_root` is where the proc
/// filesystem is mounted (normally `/proc`).
pub fn build_host_check(
    kind: &str,
    options: &serde_json::Map<String, serde_json::Value>,
    proc_root: &Path,
) -> Option<Result<Box<dyn Check>, CheckConfigError>> {
    match kind {
        "process" => Some(
            ProcessCheck::from_options(options, proc_root.to_owned())
                .map(|check| Box::new(check) as Box<dyn Check>),
        ),
        "postgres" => Some(
            PostgresCheck::from_options(options).map(|check| Box::new(check) as Box<dyn Check>),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn builds_owned_kinds_and_leaves_the_others() {
        let proc_root = Path::new("/proc");
        let process = build_host_check(
            "process",
            &options(serde_json::json!({"name": "init"})),
            proc_root,
        )
        .unwrap()
        .unwrap();
        assert_eq!(process.kind(), "process");
        let postgres = build_host_check("postgres", &serde_json::Map::new(), proc_root)
            .unwrap()
            .unwrap();
        assert_eq!(postgres.kind(), "postgres");
        let error = build_host_check(
            "postgres",
            &options(serde_json::json!({"port": 0})),
            proc_root,
        )
        .unwrap()
        .err()
        .unwrap();
        assert_eq!(error.path, ".port");
        assert!(build_host_check("http", &serde_json::Map::new(), proc_root).is_none());
        assert!(build_host_check("cpu", &serde_json::Map::new(), proc_root).is_none());
    }
}
