//! The `[backup]` section of the server's config file: where each ISV's backups live. A default
//! repository (the server appends `isv/<isv>` to its prefix) and per-ISV repositories used as given,
//! checked at load without contacting any store. `Debug` never shows a secret key.

use std::collections::BTreeMap;

use cloudkeep_backup::{ObjectKey, RepoError, RepoLocation, Repository};
use serde::Deserialize;

/// `[backup]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackupSection {
    /// The repository of every ISV without its own, e.g. `{ kind = "s3", bucket = "backups", … }`;
    /// each ISV's backups go below `<prefix>/isv/<isv>`.
    pub repository: Option<RepoLocation>,
    /// Repositories of single ISVs, `[backup.isv.acme]`, used as given (prefix included).
    #[serde(default)]
    pub isv: BTreeMap<String, RawIsvBackup>,
}

/// `[backup.isv.<name>]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIsvBackup {
    /// This ISV's repository, used as given.
    pub repository: RepoLocation,
}

/// The validated `[backup]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupConfig {
    /// The default repository, as configured (without any ISV's part of the prefix).
    pub default_repository: Option<RepoLocation>,
    /// Repositories of single ISVs, used as given.
    pub isv_repositories: BTreeMap<String, RepoLocation>,
}

impl BackupConfig {
    /// A config whose only repository is the default one.
    pub fn with_default(repository: RepoLocation) -> BackupConfig {
        BackupConfig {
            default_repository: Some(repository),
            isv_repositories: BTreeMap::new(),
        }
    }

    /// Where `isv`'s backups live: its own repository, else the default one narrowed to
    /// `<prefix>/isv/<isv>`; `None` when neither is configured.
    pub fn repository_for(&self, isv: &str) -> Option<RepoLocation> {
        if let Some(own) = self.isv_repositories.get(isv) {
            return Some(own.clone());
        }
        let mut location = self.default_repository.clone()?;
        let isv_part = format!("isv/{isv}");
        let prefix = match &mut location {
            RepoLocation::Local { prefix, .. } | RepoLocation::S3 { prefix, .. } => prefix,
        };
        let base = prefix.trim_matches('/');
        *prefix = if base.is_empty() {
            isv_part
        } else {
            format!("{base}/{isv_part}")
        };
        Some(location)
    }
}

impl RawBackupSection {
    /// Checks every repository; each problem names its place, e.g.
    /// `backup.isv.acme.repository.bucket: empty`.
    pub fn validate(self) -> Result<BackupConfig, Vec<String>> {
        let mut problems = Vec::new();
        if let Some(repository) = &self.repository
            && let Err(problem) = check_location("backup", repository)
        {
            problems.push(problem);
        }
        let mut isv_repositories = BTreeMap::new();
        for (isv, raw) in self.isv {
            let section = format!("backup.isv.{isv}");
            if cloudkeep_model::IsvName::new(&isv).is_err() {
                problems.push(format!(
                    "{section}: {isv:?} is not an isv name (lowercase letters, digits and '-')"
                ));
                continue;
            }
            match check_location(&section, &raw.repository) {
                Ok(()) => {
                    isv_repositories.insert(isv, raw.repository);
                }
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() {
            Ok(BackupConfig {
                default_repository: self.repository,
                isv_repositories,
            })
        } else {
            Err(problems)
        }
    }
}

/// Checks a location the way opening it would, without touching it: a local path is on the agents'
/// hosts, and an S3 store is only contacted by them.
fn check_location(section: &str, location: &RepoLocation) -> Result<(), String> {
    let prefix = location.prefix().trim_matches('/');
    if !prefix.is_empty()
        && let Err(err) = ObjectKey::new(prefix)
    {
        return Err(format!("{section}.repository.prefix: {err}"));
    }
    match location {
        RepoLocation::Local { path, .. } => {
            if path.is_absolute() {
                Ok(())
            } else {
                Err(format!(
                    "{section}.repository.path: {} is not an absolute path",
                    path.display()
                ))
            }
        }
        // Opening an S3 location checks its fields and builds a client; nothing is contacted.
        RepoLocation::S3 { .. } => match Repository::open(location) {
            Ok(_) => Ok(()),
            Err(RepoError::Config { field, message }) => {
                Err(format!("{section}.{field}: {message}"))
            }
            Err(err) => Err(format!("{section}.repository: {err}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BackupConfig, Vec<String>> {
        #[derive(Deserialize)]
        struct File {
            backup: RawBackupSection,
        }
        let file: File = toml::from_str(text).map_err(|err| vec![err.to_string()])?;
        file.backup.validate()
    }

    #[test]
    fn default_repository_is_narrowed_per_isv_and_isv_repositories_are_used_as_given() {
        let config = parse(
            r#"
[backup]
repository = { kind = "s3", endpoint = "https://s3.example.net", bucket = "backups", access_key_id = "AKIA", secret_access_key = "very-secret", prefix = "/cloudkeep/" }
[backup.isv.globex.repository]
kind = "local"
path = "/srv/globex"
prefix = "mine"
"#,
        )
        .unwrap();
        let acme = config.repository_for("acme").unwrap();
        assert_eq!(acme.prefix(), "cloudkeep/isv/acme");
        assert!(matches!(&acme, RepoLocation::S3 { bucket, .. } if bucket == "backups"));
        assert_eq!(
            config.repository_for("globex"),
            Some(RepoLocation::Local {
                path: "/srv/globex".into(),
                prefix: "mine".into()
            })
        );
        assert!(!format!("{config:?}").contains("very-secret"));

        let local = BackupConfig::with_default(RepoLocation::Local {
            path: "/data/backups".into(),
            prefix: String::new(),
        });
        assert_eq!(local.repository_for("acme").unwrap().prefix(), "isv/acme");
        assert_eq!(BackupConfig::default().repository_for("acme"), None);
    }

    #[test]
    fn every_problem_names_its_place() {
        let problems = parse(
            r#"
[backup]
repository = { kind = "local", path = "relative/dir" }
[backup.isv.acme.repository]
kind = "s3"
bucket = ""
access_key_id = "AKIA"
secret_access_key = "very-secret"
[backup.isv.globex.repository]
kind = "s3"
endpoint = "http://minio.internal:9000"
bucket = "b"
access_key_id = "AKIA"
secret_access_key = "very-secret"
[backup.isv.initech.repository]
kind = "local"
path = "/srv"
prefix = "a/../b"
[backup.isv.Bad.repository]
kind = "local"
path = "/srv"
"#,
        )
        .unwrap_err();
        assert_eq!(
            problems,
            [
                "backup.repository.path: relative/dir is not an absolute path",
                "backup.isv.Bad: \"Bad\" is not an isv name (lowercase letters, digits and '-')",
                "backup.isv.acme.repository.bucket: empty",
                "backup.isv.globex.repository.endpoint: \"http://minio.internal:9000\" is plain http: use https, or set allow_http: true for a trusted network",
                "backup.isv.initech.repository.prefix: object key \"a/../b\": path segment \"..\" is not allowed",
            ]
        );
        assert!(!problems.concat().contains("very-secret"));
        let unknown =
            parse("[backup]\nrepository = { kind = \"local\", path = \"/srv\", bukket = \"x\" }\n")
                .unwrap_err();
        assert!(unknown[0].contains("unknown field `bukket`"), "{unknown:?}");
    }
}
