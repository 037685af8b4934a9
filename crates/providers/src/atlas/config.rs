//! An Atlas-managed database as the platform file describes it, with its credentials read
//! (from the environment or a file) and held as [`Secret`]s.

use std::collections::BTreeMap;
use std::time::Duration;

use firedrill_platform::{Platform, Secret};

use super::error::AtlasError;
use crate::mongo::database_of;

/// How firedrill authenticates to the Administration API.
#[derive(Clone)]
pub enum Credentials {
    /// A programmatic API key: HTTP digest, the public key as user, the private key as password.
    ApiKey {
        /// The public key.
        public: Secret,
        /// The private key.
        private: Secret,
    },
    /// A service account: OAuth 2.0 client credentials, exchanged for a bearer token.
    ServiceAccount {
        /// The client id.
        id: Secret,
        /// The client secret.
        secret: Secret,
    },
}

impl Credentials {
    /// `API key` or `service account`, for messages.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::ApiKey { .. } => "API key",
            Credentials::ServiceAccount { .. } => "service account",
        }
    }

    /// Every secret part, for redaction.
    pub(crate) fn parts(&self) -> [&Secret; 2] {
        match self {
            Credentials::ApiKey { public, private } => [public, private],
            Credentials::ServiceAccount { id, secret } => [id, secret],
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} <redacted>", self.kind())
    }
}

/// One Atlas-managed database of the platform, resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The database (a key of `databases`).
    pub database: String,
    /// The Administration API's base URL, without a trailing `/`.
    pub url: String,
    /// The project (group) id.
    pub project: String,
    /// The cluster's name.
    pub cluster: String,
    /// The cloud provider of its regions.
    pub provider: String,
    /// Platform region → Atlas region name.
    pub regions: BTreeMap<String, String>,
    /// How long a priority change may keep the cluster UPDATING (platform time).
    pub update_within: Duration,
    /// How long a simulation may take to start or to end (platform time).
    pub simulation_within: Duration,
    /// The credentials.
    pub credentials: Credentials,
}

impl Settings {
    /// Resolves `name` (a namespace with a database, or a database) to its Atlas settings,
    /// reading the credentials.
    ///
    /// # Errors
    ///
    /// [`AtlasError::NotAtlas`] when the database has no `atlas:` block, [`AtlasError::Secret`]
    /// when a credential cannot be read.
    pub fn resolve(platform: &Platform, name: &str) -> Result<Self, AtlasError> {
        let not_atlas = || AtlasError::NotAtlas {
            database: name.to_owned(),
        };
        let database = database_of(platform, name).ok_or_else(not_atlas)?;
        let atlas = platform
            .databases
            .get(database)
            .and_then(|d| d.atlas.as_ref())
            .ok_or_else(not_atlas)?;
        let base = platform.base_dir();
        let read = |what: &'static str, secret: &firedrill_platform::SecretRef| {
            secret.resolve(&base).map_err(|source| AtlasError::Secret {
                database: database.to_owned(),
                what,
                source,
            })
        };
        let credentials = match (&atlas.api_key, &atlas.service_account) {
            (Some(key), _) => Credentials::ApiKey {
                public: read("api-key.public-key", &key.public_key)?,
                private: read("api-key.private-key", &key.private_key)?,
            },
            (None, Some(account)) => Credentials::ServiceAccount {
                id: read("service-account.client-id", &account.client_id)?,
                secret: read("service-account.client-secret", &account.client_secret)?,
            },
            (None, None) => {
                return Err(AtlasError::Secret {
                    database: database.to_owned(),
                    what: "credentials",
                    source: firedrill_platform::SecretError::Shape,
                });
            }
        };
        Ok(Self {
            database: database.to_owned(),
            url: atlas.url.trim_end_matches('/').to_owned(),
            project: atlas.project_id.clone(),
            cluster: atlas.cluster.clone(),
            provider: atlas.provider.clone(),
            regions: atlas.regions.clone(),
            update_within: atlas.update_within,
            simulation_within: atlas.simulation_within,
            credentials,
        })
    }

    /// The cluster and its database, for errors.
    #[must_use]
    pub fn on(&self) -> Box<super::error::On> {
        Box::new(super::error::On {
            database: self.database.clone(),
            cluster: self.cluster.clone(),
        })
    }

    /// The Atlas name of platform region `region`.
    ///
    /// # Errors
    ///
    /// [`AtlasError::UnmappedRegion`].
    pub fn atlas_region(&self, region: &str) -> Result<&str, AtlasError> {
        self.regions
            .get(region)
            .map(String::as_str)
            .ok_or_else(|| AtlasError::UnmappedRegion {
                database: self.database.clone(),
                region: region.to_owned(),
            })
    }

    /// The platform region of Atlas region `atlas`, when the platform maps it.
    #[must_use]
    pub fn platform_region(&self, atlas: &str) -> Option<&str> {
        self.regions
            .iter()
            .find(|(_, a)| a.as_str() == atlas)
            .map(|(r, _)| r.as_str())
    }
}
