//! What the Mongo provider reads from the platform file, resolved: which database a step
//! names, its replica set, the regions of its members, and its connection string read from
//! its secret (the environment or a file) — held, never printed.

use std::collections::BTreeMap;

use firedrill_platform::Platform;

use super::{MongoError, Redactor};

/// One database of the platform, resolved and ready to connect.
#[derive(Clone)]
pub struct Target {
    /// The database's name (a key of `databases`).
    pub database: String,
    /// The expected replica set name.
    pub replica_set: String,
    /// Member `host:port` → region from the platform.
    pub regions: BTreeMap<String, String>,
    /// A `tags.region` value → platform region: Atlas's region names (`WESTERN_US`) of an
    /// Atlas-managed database.
    pub tag_regions: BTreeMap<String, String>,
    /// The connection string: never printed, never stored in the ledger.
    pub(super) uri: String,
    pub(super) redactor: Redactor,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("database", &self.database)
            .field("replica_set", &self.replica_set)
            .field("uri", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The database a step names: a namespace with `database:`, or a database by name.
#[must_use]
pub fn database_of<'p>(platform: &'p Platform, name: &str) -> Option<&'p str> {
    platform
        .namespaces
        .get(name)
        .and_then(|ns| ns.database.as_deref())
        .or_else(|| {
            platform
                .databases
                .get_key_value(name)
                .map(|(k, _)| k.as_str())
        })
}

impl Target {
    /// Resolves `name` (namespace or database) against the platform, reading the URI secret.
    ///
    /// # Errors
    ///
    /// [`MongoError::UnknownDatabase`] or [`MongoError::Secret`].
    pub fn resolve(platform: &Platform, name: &str) -> Result<Self, MongoError> {
        let database = database_of(platform, name).ok_or_else(|| MongoError::UnknownDatabase {
            name: name.to_owned(),
        })?;
        let db = platform
            .databases
            .get(database)
            .ok_or_else(|| MongoError::UnknownDatabase {
                name: name.to_owned(),
            })?;
        let uri = match db.uri.resolve(&platform.base_dir()) {
            Ok(uri) => uri.expose().to_owned(),
            Err(source) => {
                return Err(MongoError::Secret {
                    database: database.to_owned(),
                    source,
                });
            }
        };
        let mut target = Self::new(database, &db.replica_set, &uri, db.members.clone());
        if let Some(atlas) = &db.atlas {
            target.tag_regions = atlas
                .regions
                .iter()
                .map(|(region, name)| (name.clone(), region.clone()))
                .collect();
        }
        Ok(target)
    }

    /// A target from its parts (tests, and callers that hold the URI already).
    #[must_use]
    pub fn new(
        database: &str,
        replica_set: &str,
        uri: &str,
        regions: BTreeMap<String, String>,
    ) -> Self {
        Self {
            database: database.to_owned(),
            replica_set: replica_set.to_owned(),
            regions,
            tag_regions: BTreeMap::new(),
            redactor: Redactor::new(uri),
            uri: uri.to_owned(),
        }
    }

    /// Redacts `text` (an error message) of this target's URI.
    #[must_use]
    pub fn clean(&self, text: &str) -> String {
        self.redactor.clean(text)
    }
}
