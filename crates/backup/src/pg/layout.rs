//! Where one database's objects and manifests live inside the ISV's repository.

use crate::{ManifestName, ObjectKey, RepoError};

/// The names of one database's things: `<platform>/<database>/wal/<file>` for WAL (object and
/// receipt) and `<platform>/<database>/base/<id>[/<unit>]` for base backups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseLayout {
    platform: String,
    database: String,
}

impl DatabaseLayout {
    /// Checks that both names are usable in object keys.
    pub fn new(platform: &str, database: &str) -> Result<DatabaseLayout, RepoError> {
        ObjectKey::new(format!("{platform}/{database}"))?;
        if platform.contains('/') || database.contains('/') {
            return Err(RepoError::InvalidName {
                what: "platform or database".to_owned(),
                name: format!("{platform}/{database}"),
                reason: "must not contain \"/\"".to_owned(),
            });
        }
        Ok(DatabaseLayout {
            platform: platform.to_owned(),
            database: database.to_owned(),
        })
    }

    /// The platform's name.
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// The database's name.
    pub fn database(&self) -> &str {
        &self.database
    }

    fn root(&self) -> String {
        format!("{}/{}", self.platform, self.database)
    }

    /// The folder of WAL objects and receipts.
    pub fn wal_folder(&self) -> String {
        format!("{}/wal", self.root())
    }

    /// The folder of streamed WAL tails (objects and receipts).
    pub fn stream_folder(&self) -> String {
        format!("{}/stream", self.root())
    }

    /// The object of streamed tail `name` (`<segment>.<valid bytes, 8 hex digits>`).
    pub fn stream_object(&self, name: &str) -> Result<ObjectKey, RepoError> {
        ObjectKey::new(format!("{}/{name}", self.stream_folder()))
    }

    /// The receipt of streamed tail `name`.
    pub fn stream_receipt(&self, name: &str) -> Result<ManifestName, RepoError> {
        ManifestName::new(format!("{}/{name}", self.stream_folder()))
    }

    /// The folder of base backup objects and manifests.
    pub fn base_folder(&self) -> String {
        format!("{}/base", self.root())
    }

    /// The object holding WAL file `name`.
    pub fn wal_object(&self, name: &str) -> Result<ObjectKey, RepoError> {
        ObjectKey::new(format!("{}/{name}", self.wal_folder()))
    }

    /// The receipt of WAL file `name`.
    pub fn wal_receipt(&self, name: &str) -> Result<ManifestName, RepoError> {
        ManifestName::new(format!("{}/{name}", self.wal_folder()))
    }

    /// The manifest of base backup `id`.
    pub fn base_manifest(&self, id: &str) -> Result<ManifestName, RepoError> {
        ManifestName::new(format!("{}/{id}", self.base_folder()))
    }

    /// The folder of base backup `id`'s objects.
    pub fn base_objects(&self, id: &str) -> String {
        format!("{}/{id}", self.base_folder())
    }

    /// Object number `unit` of base backup `id`.
    pub fn base_object(&self, id: &str, unit: usize) -> Result<ObjectKey, RepoError> {
        ObjectKey::new(format!("{}/{unit}", self.base_objects(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_below_platform_and_database() {
        let layout = DatabaseLayout::new("acme-prod", "db").unwrap();
        assert_eq!(
            layout
                .wal_object("000000010000000000000003")
                .unwrap()
                .as_str(),
            "acme-prod/db/wal/000000010000000000000003"
        );
        assert_eq!(
            layout
                .base_manifest("20261122T101500Z-ab12")
                .unwrap()
                .as_str(),
            "acme-prod/db/base/20261122T101500Z-ab12"
        );
        assert_eq!(
            layout.base_object("x", 7).unwrap().as_str(),
            "acme-prod/db/base/x/7"
        );
    }

    #[test]
    fn unusable_names_are_refused() {
        assert!(DatabaseLayout::new("acme prod", "db").is_err());
        assert!(DatabaseLayout::new("", "db").is_err());
        assert!(DatabaseLayout::new("manifests", "db").is_err());
    }
}
