//! Tests of `load_spec_path` on files and directory trees built in temporary directories.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use cloudkeep_model::{SpecError, load_spec_path};
use expect_test::{Expect, expect};

fn spec(platform: &str) -> String {
    format!(
        r#"{{
  "version": 1,
  "platform": "{platform}",
  "isv": "acme",
  "tenant": "globex",
  "cloud": "gc-uk1",
  "hosts": [{{ "name": "app1" }}]
}}
"#
    )
}

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Errors with the temporary directory replaced by `$DIR`, one per line.
fn render_errors(root: &Path, errors: &[SpecError]) -> String {
    let root = root.display().to_string();
    errors
        .iter()
        .map(|e| format!("{}\n", e.to_string().replace(&root, "$DIR")))
        .collect()
}

fn check_err(
    root: &Path,
    loaded: Result<Vec<(std::path::PathBuf, cloudkeep_model::PlatformSpec)>, Vec<SpecError>>,
    expected: Expect,
) {
    match loaded {
        Ok(specs) => panic!("expected errors, loaded {} specs", specs.len()),
        Err(errors) => expected.assert_eq(&render_errors(root, &errors)),
    }
}

#[test]
fn loads_a_directory_recursively_sorted_ignoring_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "b.json", &spec("beta"));
    write(root, "a.json", &spec("alpha"));
    write(root, "nested/deeper/c.json", &spec("gamma"));
    write(root, "README.md", "not a spec");
    write(root, "notes.json.bak", "{ broken");
    write(root, ".hidden.json", "{ broken");
    write(root, ".git/config.json", "{ broken");
    let specs = load_spec_path(root).unwrap();
    let loaded: Vec<String> = specs
        .iter()
        .map(|(path, spec)| {
            format!(
                "{} {}",
                path.strip_prefix(root).unwrap().display(),
                spec.platform
            )
        })
        .collect();
    assert_eq!(
        loaded,
        ["a.json alpha", "b.json beta", "nested/deeper/c.json gamma"]
    );
}

#[test]
fn loads_a_single_file() {
    let specs = load_spec_path("examples/acme-prod.json").unwrap();
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].0, Path::new("examples/acme-prod.json"));
    assert_eq!(specs[0].1.platform, "acme-prod");
}

#[test]
fn duplicate_platform_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.json", &spec("acme-prod"));
    write(root, "sub/b.json", &spec("acme-prod"));
    write(root, "c.json", &spec("acme-prod"));
    check_err(
        root,
        load_spec_path(root),
        expect![[r#"
            $DIR/c.json:3:15: platform: duplicate platform "acme-prod" (first defined in $DIR/a.json)
            $DIR/sub/b.json:3:15: platform: duplicate platform "acme-prod" (first defined in $DIR/a.json)
        "#]],
    );
}

#[test]
fn errors_of_every_file_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "good.json", &spec("good"));
    write(root, "bad1.json", "{");
    write(root, "bad2.json", &spec("Bad"));
    check_err(
        root,
        load_spec_path(root),
        expect![[r#"
            $DIR/bad1.json:1:1: EOF while parsing an object
            $DIR/bad2.json:3:19: platform: invalid platform name "Bad": character 'B' is not allowed; use lowercase letters, digits and '-'
        "#]],
    );
}

#[test]
fn empty_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    check_err(
        root,
        load_spec_path(root),
        expect![[r#"
            $DIR: no *.json spec files found in directory
        "#]],
    );
    // a directory with only other files counts as empty
    write(root, "sub/readme.txt", "hello");
    check_err(
        root,
        load_spec_path(root),
        expect![[r#"
            $DIR: no *.json spec files found in directory
        "#]],
    );
}

#[test]
fn missing_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    check_err(
        root,
        load_spec_path(root.join("nope")),
        expect![[r#"
            $DIR/nope: cannot read: no such file or directory
        "#]],
    );
}

#[test]
fn non_utf8_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("x.json"), [0xff, 0xfe, b'{', b'}']).unwrap();
    check_err(
        root,
        load_spec_path(root),
        expect![[r#"
            $DIR/x.json: cannot read: file is not valid utf-8
        "#]],
    );
}
