//! The client side of a replica set: driver options from the connection string, a client of
//! the set or of one member, admin commands with a deadline, `hello`, and reading the replica
//! set config (its members, their priorities and regions).

use std::time::Duration;

use bson::{Bson, Document, doc};
use mongodb::Client;
use mongodb::options::{ClientOptions, ServerAddress};

use super::{MongoError, Target, describe};

/// How long (wall time) one command to a member may take before it counts as unreachable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A member of the replica set with its region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// `host:port` as the replica set config names it.
    pub host: String,
    /// Its region (platform `members:` map first, then the member's `tags.region`; on Atlas,
    /// which tags members with its own region names, translated by `databases.<db>.atlas.regions`).
    pub region: Option<String>,
}

impl Target {
    pub(super) async fn options(&self) -> Result<ClientOptions, MongoError> {
        let mut options = ClientOptions::parse(&self.uri)
            .await
            .map_err(|e| MongoError::Uri {
                database: self.database.clone(),
                message: self.clean(&describe(&e)),
            })?;
        // The URI's own timeouts win; otherwise fail within COMMAND_TIMEOUT.
        options.server_selection_timeout =
            options.server_selection_timeout.or(Some(COMMAND_TIMEOUT));
        options.connect_timeout = options.connect_timeout.or(Some(COMMAND_TIMEOUT));
        options.app_name = Some("firedrill".to_owned());
        Ok(options)
    }

    /// The seed hosts of the URI.
    ///
    /// # Errors
    ///
    /// [`MongoError::Uri`].
    pub async fn seeds(&self) -> Result<Vec<String>, MongoError> {
        Ok(self
            .options()
            .await?
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect())
    }

    /// A client of the whole replica set (writes go to the primary).
    ///
    /// # Errors
    ///
    /// [`MongoError::Uri`].
    pub async fn client(&self) -> Result<Client, MongoError> {
        let options = self.options().await?;
        Client::with_options(options).map_err(|e| MongoError::Uri {
            database: self.database.clone(),
            message: self.clean(&describe(&e)),
        })
    }

    /// A client of one member only (`directConnection=true`), with the URI's credentials.
    ///
    /// # Errors
    ///
    /// [`MongoError::Uri`].
    pub async fn direct(&self, host: &str) -> Result<Client, MongoError> {
        let mut options = self.options().await?;
        let uri_err = |message: String| MongoError::Uri {
            database: self.database.clone(),
            message,
        };
        options.hosts = vec![ServerAddress::parse(host).map_err(|e| uri_err(describe(&e)))?];
        options.direct_connection = Some(true);
        options.repl_set_name = None;
        Client::with_options(options).map_err(|e| uri_err(self.clean(&describe(&e))))
    }

    /// Runs an admin command on one member.
    ///
    /// # Errors
    ///
    /// [`MongoError::Unreachable`] when it cannot be reached, [`MongoError::Command`] when it
    /// refuses.
    pub async fn command(
        &self,
        host: &str,
        name: &'static str,
        command: Document,
    ) -> Result<Document, MongoError> {
        let client = self.direct(host).await?;
        let result = tokio::time::timeout(
            COMMAND_TIMEOUT,
            client.database("admin").run_command(command),
        )
        .await;
        match result {
            Ok(Ok(doc)) => Ok(doc),
            Ok(Err(e)) if matches!(*e.kind, mongodb::error::ErrorKind::Command(_)) => {
                Err(MongoError::Command {
                    database: self.database.clone(),
                    command: name,
                    host: host.to_owned(),
                    message: self.clean(&describe(&e)),
                })
            }
            Ok(Err(e)) => Err(MongoError::Unreachable {
                database: self.database.clone(),
                host: host.to_owned(),
                message: self.clean(&describe(&e)),
            }),
            Err(_) => Err(MongoError::Unreachable {
                database: self.database.clone(),
                host: host.to_owned(),
                message: format!("no answer within {}s", COMMAND_TIMEOUT.as_secs()),
            }),
        }
    }

    /// `hello` on one member.
    ///
    /// # Errors
    ///
    /// As [`Target::command`].
    pub async fn hello(&self, host: &str) -> Result<Hello, MongoError> {
        let doc = self.command(host, "hello", doc! {"hello": 1}).await?;
        Ok(Hello::from_doc(&doc))
    }
    /// The current primary, asking the members directly.
    ///
    /// # Errors
    ///
    /// [`MongoError::NoPrimary`] when no reachable member is primary.
    pub async fn primary(&self) -> Result<String, MongoError> {
        use futures::StreamExt as _;
        let mut hosts = self.seeds().await?;
        hosts.extend(self.regions.keys().cloned());
        let mut seen = std::collections::HashSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        // Every member at once: a member cut off (an outage simulation, a partition) answers
        // nothing until the command timeout, and asking one after another would wait that
        // long for each before reaching one that answers.
        let mut answers: futures::stream::FuturesUnordered<_> = hosts
            .into_iter()
            .map(|host| async move {
                let hello = self.hello(&host).await;
                (host, hello)
            })
            .collect();
        while let Some((host, hello)) = answers.next().await {
            let Ok(hello) = hello else { continue };
            if hello.is_primary {
                return Ok(host);
            }
            if let Some(p) = hello.primary
                && let Ok(h) = self.hello(&p).await
                && h.is_primary
            {
                return Ok(p);
            }
        }
        Err(MongoError::NoPrimary {
            database: self.database.clone(),
        })
    }

    /// The replica set config (`replSetGetConfig` on the primary).
    ///
    /// # Errors
    ///
    /// [`MongoError`] when no primary answers.
    pub async fn config(&self) -> Result<Document, MongoError> {
        let primary = self.primary().await?;
        let reply = self
            .command(&primary, "replSetGetConfig", doc! {"replSetGetConfig": 1})
            .await?;
        reply
            .get_document("config")
            .cloned()
            .map_err(|e| MongoError::Command {
                database: self.database.clone(),
                command: "replSetGetConfig",
                host: primary,
                message: e.to_string(),
            })
    }

    /// The members with their regions: the platform's `members:` map, else `tags.region`.
    ///
    /// # Errors
    ///
    /// As [`Target::config`].
    pub async fn members(&self) -> Result<Vec<Member>, MongoError> {
        Ok(config_members(&self.config().await?)
            .into_iter()
            .map(|(host, _, tag)| Member {
                region: self
                    .regions
                    .get(&host)
                    .cloned()
                    .or_else(|| tag.map(|t| self.tag_regions.get(&t).cloned().unwrap_or(t))),
                host,
            })
            .collect())
    }

    /// The region of `host`, from the platform map or the config's tags.
    pub fn region_in(&self, members: &[Member], host: &str) -> Option<String> {
        self.regions.get(host).cloned().or_else(|| {
            members
                .iter()
                .find(|m| m.host == host)
                .and_then(|m| m.region.clone())
        })
    }
}

pub(super) fn config_version(config: &Document) -> i64 {
    match config.get("version") {
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Double(v)) => *v as i64,
        _ => 1,
    }
}

pub(super) fn config_members(config: &Document) -> Vec<(String, f64, Option<String>)> {
    config
        .get_array("members")
        .map(|ms| {
            ms.iter()
                .filter_map(Bson::as_document)
                .map(|m| {
                    let priority = match m.get("priority") {
                        Some(Bson::Double(p)) => *p,
                        Some(Bson::Int32(p)) => f64::from(*p),
                        Some(Bson::Int64(p)) => *p as f64,
                        _ => 1.0,
                    };
                    let region = m
                        .get_document("tags")
                        .ok()
                        .and_then(|t| t.get_str("region").ok())
                        .map(str::to_owned);
                    (
                        m.get_str("host").unwrap_or_default().to_owned(),
                        priority,
                        region,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a member says of itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hello {
    /// `isWritablePrimary`.
    pub is_primary: bool,
    /// `setName`.
    pub set_name: Option<String>,
    /// `primary`: who it believes is primary.
    pub primary: Option<String>,
    /// `hosts` and `passives`.
    pub hosts: Vec<String>,
}

impl Hello {
    pub(super) fn from_doc(doc: &Document) -> Self {
        let list = |key: &str| -> Vec<String> {
            doc.get_array(key)
                .map(|a| {
                    a.iter()
                        .filter_map(|h| h.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut hosts = list("hosts");
        hosts.extend(list("passives"));
        Self {
            is_primary: doc
                .get_bool("isWritablePrimary")
                .or_else(|_| doc.get_bool("ismaster"))
                .unwrap_or(false),
            set_name: doc.get_str("setName").ok().map(str::to_owned),
            primary: doc.get_str("primary").ok().map(str::to_owned),
            hosts,
        }
    }
}
