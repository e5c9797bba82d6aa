//! Parsing and validating spec texts (`parse_spec`), and loading spec files and directories (`load_spec_path`).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{JsonPath, SpecError};
use crate::locate::locate;
use crate::spec::{PlatformSpec, SUPPORTED_SPEC_VERSIONS, validate};

/// Parses and validates one spec text.
///
/// `source_name` is only used in errors (usually the file path). A structural
/// error (bad JSON, wrong type, unknown or missing field) stops parsing, so it
/// is reported alone; otherwise every semantic error is reported, in document
/// order of their position. An unsupported `version` is reported alone, since the rest of the
/// document may follow another format.
pub fn parse_spec(source_name: &str, text: &str) -> Result<PlatformSpec, Vec<SpecError>> {
    // A first, untyped pass catches what the typed parse would get wrong: an
    // unsupported version (the rest may follow another format) and arrays in
    // place of objects (serde would read them as positional structs). Syntax
    // errors are left to the typed parse, which reports them with a path.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(error) = check_version(source_name, text, &value) {
            return Err(vec![error]);
        }
        let mut errors: Vec<SpecError> = find_array_structs(&value)
            .into_iter()
            .map(|path| {
                SpecError::new(
                    source_name,
                    path.to_string(),
                    "invalid type: array, expected an object",
                )
                .at(locate(text, &path))
            })
            .collect();
        if !errors.is_empty() {
            errors.sort_by_key(|e| (e.line, e.column));
            return Err(errors);
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let spec: PlatformSpec = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(spec) => spec,
        Err(error) => return Err(vec![structural_error(source_name, error)]),
    };
    if let Err(error) = deserializer.end() {
        return Err(vec![json_error(source_name, JsonPath::root(), &error)]);
    }
    let problems = validate(&spec);
    if problems.is_empty() {
        Ok(spec)
    } else {
        let mut errors: Vec<SpecError> = problems
            .into_iter()
            .map(|(path, message)| {
                SpecError::new(source_name, path.to_string(), message).at(locate(text, &path))
            })
            .collect();
        // document order; errors without a position (none expected) last, in check order
        errors.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
        Err(errors)
    }
}

/// The "unsupported version" error, when the document is an object whose `version` is a number other than 1.
fn check_version(source_name: &str, text: &str, document: &serde_json::Value) -> Option<SpecError> {
    let version = document.get("version")?;
    if !version.is_number() {
        return None; // reported as a type error by the full parse
    }
    if version
        .as_u64()
        .is_some_and(|v| SUPPORTED_SPEC_VERSIONS.contains(&v))
    {
        return None;
    }
    let supported = SUPPORTED_SPEC_VERSIONS
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let path = JsonPath::root().key("version");
    Some(
        SpecError::new(
            source_name,
            path.to_string(),
            format!("unsupported spec version {version}; supported versions: {supported}"),
        )
        .at(locate(text, &path)),
    )
}

/// The paths of arrays standing where the spec format expects an object.
fn find_array_structs(document: &serde_json::Value) -> Vec<JsonPath> {
    use serde_json::Value;

    /// Elements of the array member `key` of `object` that are arrays.
    fn array_items<'a>(
        object: &'a Value,
        path: &JsonPath,
        key: &str,
    ) -> Vec<(JsonPath, &'a Value)> {
        match object.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (path.key(key).index(i), item))
                .collect(),
            _ => Vec::new(),
        }
    }

    let root = JsonPath::root();
    if document.is_array() {
        return vec![root];
    }
    let mut objects = Vec::new();
    for (key, nested) in [("hosts", true), ("monitors", false), ("rules", false)] {
        for (path, item) in array_items(document, &root, key) {
            objects.push((path.clone(), item));
            if nested {
                for (path, item) in array_items(item, &path, "components") {
                    objects.push((path.clone(), item));
                    objects.extend(array_items(item, &path, "monitors"));
                    if let Some(backup) = item.get("backup") {
                        let backup_path = path.key("backup");
                        if let Some(drill) = backup.get("drill") {
                            objects.push((backup_path.key("drill"), drill));
                        }
                        objects.push((backup_path, backup));
                    }
                }
                objects.extend(array_items(item, &path, "monitors"));
            }
        }
    }
    objects
        .into_iter()
        .filter(|(_, value)| value.is_array())
        .map(|(path, _)| path)
        .collect()
}

fn structural_error(
    source_name: &str,
    error: serde_path_to_error::Error<serde_json::Error>,
) -> SpecError {
    let mut path = JsonPath::root();
    for segment in error.path().iter() {
        path = match segment {
            serde_path_to_error::Segment::Seq { index } => path.index(*index),
            serde_path_to_error::Segment::Map { key } => path.key(key),
            serde_path_to_error::Segment::Enum { variant } => path.key(variant),
            serde_path_to_error::Segment::Unknown => path,
        };
    }
    json_error(source_name, path, error.inner())
}

/// A `serde_json` error as a [`SpecError`], with its " at line L column C" suffix moved into the fields.
fn json_error(source_name: &str, path: JsonPath, error: &serde_json::Error) -> SpecError {
    let mut message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    if let Some(stripped) = message.strip_suffix(&suffix) {
        message = stripped.to_owned();
    }
    let position = (error.line() > 0).then(|| (error.line(), error.column().max(1)));
    SpecError::new(source_name, path.to_string(), message).at(position)
}

/// Reads one spec file as UTF-8 text. The only place this crate touches the file system for contents.
pub fn read_spec_file(path: &Path) -> Result<String, SpecError> {
    std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(
            path.display().to_string(),
            "",
            io_message("cannot read", &e),
        )
    })
}

fn io_message(action: &str, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => format!("{action}: no such file or directory"),
        io::ErrorKind::PermissionDenied => format!("{action}: permission denied"),
        io::ErrorKind::InvalidData => format!("{action}: file is not valid utf-8"),
        _ => {
            let text = error.to_string();
            let mut chars = text.chars();
            let lowered: String = match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            };
            format!("{action}: {lowered}")
        }
    }
}

/// Loads and validates a spec file, or every `*.json` file under a directory
/// (recursively, sorted by path; hidden files and directories, whose names
/// start with `.`, are skipped, and symbolic links to directories are not
/// followed).
///
/// Errors of all files are reported together. A platform name declared by more
/// than one file is an error on every file after the first, and a directory
/// without any spec file is an error.
pub fn load_spec_path(
    path: impl AsRef<Path>,
) -> Result<Vec<(PathBuf, PlatformSpec)>, Vec<SpecError>> {
    let path = path.as_ref();
    let mut errors = Vec::new();
    let files = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let mut files = Vec::new();
            collect_json_files(path, &mut files, &mut errors);
            files.sort();
            if files.is_empty() && errors.is_empty() {
                errors.push(SpecError::new(
                    path.display().to_string(),
                    "",
                    "no *.json spec files found in directory",
                ));
            }
            files
        }
        Ok(_) => vec![path.to_path_buf()],
        Err(e) => {
            return Err(vec![SpecError::new(
                path.display().to_string(),
                "",
                io_message("cannot read", &e),
            )]);
        }
    };

    let mut specs = Vec::new();
    let mut first_file: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let name = file.display().to_string();
        let text = match read_spec_file(&file) {
            Ok(text) => text,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        match parse_spec(&name, &text) {
            Ok(spec) => {
                let platform = spec.platform.as_str().to_owned();
                if let Some(first) = first_file.get(&platform) {
                    let path = JsonPath::root().key("platform");
                    errors.push(
                        SpecError::new(
                            &name,
                            path.to_string(),
                            format!(
                                "duplicate platform {platform:?} (first defined in {})",
                                first.display()
                            ),
                        )
                        .at(locate(&text, &path)),
                    );
                } else {
                    first_file.insert(platform, file.clone());
                    specs.push((file, spec));
                }
            }
            Err(mut file_errors) => errors.append(&mut file_errors),
        }
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

fn collect_json_files(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<SpecError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(SpecError::new(
                dir.display().to_string(),
                "",
                io_message("cannot list directory", &e),
            ));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.push(SpecError::new(
                    dir.display().to_string(),
                    "",
                    io_message("cannot list directory", &e),
                ));
                continue;
            }
        };
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            collect_json_files(&path, files, errors);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            // plain files and symbolic links to files (a dangling link is reported when read)
            let is_dir_link = file_type.is_symlink() && path.is_dir();
            if !is_dir_link {
                files.push(path);
            }
        }
    }
}
