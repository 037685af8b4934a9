//! MongoDB replica sets through the `mongodb` driver: connecting from the platform file (the
//! URI is a [`Secret`](firedrill_platform::Secret) and never printed), preflight, the actions drills take (step-down,
//! freeze, kill, a priority flip to another region) with their undos, the topology
//! [`observer`] and the [`checker`] that measures lost writes.
//!
//! Every error that could carry the connection string goes through [`Redactor`], so neither the
//! URI nor its password reaches a log, a report or the terminal.

pub mod checker;
pub mod kill;
pub mod observer;

use std::collections::BTreeMap;
use std::time::Duration;

use bson::{Bson, Document, doc};
use mongodb::Client;
use mongodb::options::{ClientOptions, ServerAddress};
use serde::{Deserialize, Serialize};

use firedrill_core::clock::Clock;
use firedrill_platform::{Platform, SecretError};

/// How long (wall time) one command to a member may take before it counts as unreachable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A failure talking to a replica set. Messages never contain the URI or its password.
#[derive(Debug, thiserror::Error)]
pub enum MongoError {
    /// The namespace or database is not in the platform.
    #[error(
        "\"{name}\" is neither a namespace with a database nor a database of the platform (hint: set namespaces.{name}.database or define databases.{name})"
    )]
    UnknownDatabase {
        /// What the step named.
        name: String,
    },
    /// The URI secret cannot be read.
    #[error("database \"{database}\": {source}")]
    Secret {
        /// The database.
        database: String,
        /// Why.
        source: SecretError,
    },
    /// The URI does not parse (its text is not shown: it may hold a password).
    #[error(
        "database \"{database}\": the connection string is not valid: {message} (hint: check the value of the secret; it is not printed because it may hold a password)"
    )]
    Uri {
        /// The database.
        database: String,
        /// The driver's complaint, redacted.
        message: String,
    },
    /// A member did not answer.
    #[error(
        "database \"{database}\": member {host} is unreachable: {message} (hint: is it up and reachable from here? Nothing was changed)"
    )]
    Unreachable {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The driver's error, redacted.
        message: String,
    },
    /// The member belongs to another replica set.
    #[error(
        "database \"{database}\": member {host} belongs to replica set \"{found}\", but the platform says \"{expected}\" (hint: fix databases.{database}.replica-set or the URI)"
    )]
    WrongSet {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The platform's replica-set.
        expected: String,
        /// What the member reports.
        found: String,
    },
    /// No member reports itself primary.
    #[error(
        "database \"{database}\": no member is primary (hint: wait for the election, or check the replica set)"
    )]
    NoPrimary {
        /// The database.
        database: String,
    },
    /// A command was refused.
    #[error("database \"{database}\": {command} on {host} failed: {message}")]
    Command {
        /// The database.
        database: String,
        /// The command.
        command: &'static str,
        /// Where it ran.
        host: String,
        /// The server's answer, redacted.
        message: String,
    },
    /// No member in the region.
    #[error(
        "database \"{database}\": no member of replica set is in region \"{region}\" (members: {members}) (hint: tag the members with `region` or map them under databases.{database}.members)"
    )]
    NoMemberInRegion {
        /// The database.
        database: String,
        /// The region.
        region: String,
        /// Every member with its region.
        members: String,
    },
    /// The primary did not move in time.
    #[error(
        "database \"{database}\": the primary did not move to \"{region}\" within {within} (last primary: {last}) (hint: check the members' priorities and replication lag)"
    )]
    NotMoved {
        /// The database.
        database: String,
        /// The target region.
        region: String,
        /// The deadline.
        within: String,
        /// The last primary seen.
        last: String,
    },
    /// A kill of this member would have no way back.
    #[error(
        "database \"{database}\": member {host} cannot be killed, there is no way to bring it back; nothing was injected (hint: set databases.{database}.kill: `links` (its Toxiproxy link), `pods` (its StatefulSet pod) or `restart` (a command that starts it again))"
    )]
    NoWayBack {
        /// The database.
        database: String,
        /// The member.
        host: String,
    },
    /// The member's Toxiproxy link could not be cut.
    #[error(
        "database \"{database}\": cutting the link of member {host} (proxy \"{proxy}\"): {source}"
    )]
    Toxiproxy {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The proxy.
        proxy: String,
        /// Why (boxed: the Toxiproxy error is large and this one is rare).
        source: Box<crate::toxiproxy::Error>,
    },
    /// The member's pod could not be read or deleted.
    #[error(
        "database \"{database}\": pod {pod} in context \"{context}\": {message} (hint: check databases.{database}.kill.pods and that the context may delete pods there)"
    )]
    Pod {
        /// The database.
        database: String,
        /// `namespace/pod`.
        pod: String,
        /// The kube context.
        context: String,
        /// The API's answer.
        message: String,
    },
    /// The restart command failed.
    #[error(
        "database \"{database}\": restarting member {host} with command \"{command}\" failed: {message}"
    )]
    Restart {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The command (a key of `commands`).
        command: String,
        /// Why.
        message: String,
    },
    /// The platform maps a member the replica set does not have.
    #[error(
        "database \"{database}\": member {host} of the platform is not in the replica set's config (members: {members}) (hint: fix databases.{database}.members; nothing was changed)"
    )]
    NotInConfig {
        /// The database.
        database: String,
        /// The member the platform names.
        host: String,
        /// The members the set reports.
        members: String,
    },
    /// A killed member did not come back.
    #[error(
        "database \"{database}\": member {host} was not back within {within} (last seen: {last}) (hint: bring it back by hand, then run `firedrill recover` again)"
    )]
    NotBack {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The deadline.
        within: String,
        /// The last state seen.
        last: String,
    },
}

impl MongoError {
    /// Whether this error is about `host` (so a second one about it is not reported).
    #[must_use]
    pub fn names_host(&self, host: &str) -> bool {
        match self {
            MongoError::Unreachable { host: h, .. }
            | MongoError::WrongSet { host: h, .. }
            | MongoError::Command { host: h, .. }
            | MongoError::NoWayBack { host: h, .. }
            | MongoError::Toxiproxy { host: h, .. }
            | MongoError::Restart { host: h, .. }
            | MongoError::NotInConfig { host: h, .. }
            | MongoError::NotBack { host: h, .. } => h == host,
            _ => false,
        }
    }
}

/// Removes a connection string and its password from any text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for `uri`: hides the whole URI, its userinfo and its password.
    #[must_use]
    pub fn new(uri: &str) -> Self {
        let mut needles = vec![uri.to_owned()];
        if let Some(rest) = uri.split_once("://").map(|(_, r)| r)
            && let Some((userinfo, _)) = rest.rsplit_once('@')
        {
            needles.push(userinfo.to_owned());
            if let Some((_, password)) = userinfo.split_once(':')
                && !password.is_empty()
            {
                needles.push(password.to_owned());
                if let Ok(decoded) = percent_decode(password) {
                    needles.push(decoded);
                }
            }
        }
        needles.retain(|n| !n.is_empty());
        // Longest first, so the whole URI is replaced before its parts.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self { needles }
    }

    /// `text` with every secret part replaced by `<redacted>`.
    #[must_use]
    pub fn clean(&self, text: &str) -> String {
        self.needles
            .iter()
            .fold(text.to_owned(), |t, n| t.replace(n.as_str(), "<redacted>"))
    }
}

/// A driver error as an operator reads it.
///
/// The driver's own `Display` is close to its `Debug` form (`Kind: …, labels: {}, source: None,
/// server response: None`, a refused write as a Rust struct); this says what the server said,
/// with its code name, and the error labels that matter (`RetryableWriteError`).
#[must_use]
pub fn describe(error: &mongodb::error::Error) -> String {
    use mongodb::error::{ErrorKind, WriteFailure};
    let mut text = match &*error.kind {
        ErrorKind::Command(e) => server_error(&e.code_name, e.code, &e.message),
        ErrorKind::Write(WriteFailure::WriteError(e)) => format!(
            "write refused: {}",
            server_error(
                e.code_name.as_deref().unwrap_or_default(),
                e.code,
                &e.message
            )
        ),
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => format!(
            "write concern not satisfied: {}",
            server_error(&e.code_name, e.code, &e.message)
        ),
        ErrorKind::InsertMany(e) => {
            let mut parts: Vec<String> = e
                .write_errors
                .iter()
                .flatten()
                .map(|w| {
                    format!(
                        "document {}: {}",
                        w.index,
                        server_error(
                            w.code_name.as_deref().unwrap_or_default(),
                            w.code,
                            &w.message
                        )
                    )
                })
                .collect();
            if let Some(w) = &e.write_concern_error {
                parts.push(format!(
                    "write concern not satisfied: {}",
                    server_error(&w.code_name, w.code, &w.message)
                ));
            }
            format!("insert refused: {}", parts.join("; "))
        }
        other => tidy(&other.to_string()),
    };
    let mut labels: Vec<&str> = error.labels().iter().map(String::as_str).collect();
    if !labels.is_empty() {
        labels.sort_unstable();
        text.push_str(&format!(" (labels: {})", labels.join(", ")));
    }
    text
}

fn server_error(code_name: &str, code: i32, message: &str) -> String {
    match (code_name.is_empty(), message.is_empty()) {
        (false, false) => format!("{message} ({code_name}, code {code})"),
        (false, true) => format!("{code_name} (code {code})"),
        (true, false) => format!("{message} (code {code})"),
        (true, true) => format!("error code {code}"),
    }
}

/// Drops the `Debug`-flavoured parts the driver nests into its messages (a server selection
/// error lists each server's last error in the driver's full form).
fn tidy(text: &str) -> String {
    let mut out = match &*NESTED_LABELS {
        Some(labels) => labels.replace_all(text, "").into_owned(),
        None => text.to_owned(),
    };
    for noise in [", source: None", ", server response: None", "Kind: "] {
        out = out.replace(noise, "");
    }
    out
}

/// `, labels: {"RetryableError", …}` of an error nested in a driver message (a `HashSet`'s
/// `Debug`, in no stable order).
static NESTED_LABELS: std::sync::LazyLock<Option<regex::Regex>> =
    std::sync::LazyLock::new(|| regex::Regex::new(r", labels: \{[^{}]*\}").ok());

fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
}

/// A member of the replica set with its region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// `host:port` as the replica set config names it.
    pub host: String,
    /// Its region (platform `members:` map first, then the member's `tags.region`).
    pub region: Option<String>,
}

/// One database of the platform, resolved and ready to connect.
#[derive(Clone)]
pub struct Target {
    /// The database's name (a key of `databases`).
    pub database: String,
    /// The expected replica set name.
    pub replica_set: String,
    /// Member `host:port` → region from the platform.
    pub regions: BTreeMap<String, String>,
    uri: String,
    redactor: Redactor,
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
        Ok(Self::new(
            database,
            &db.replica_set,
            &uri,
            db.members.clone(),
        ))
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
            redactor: Redactor::new(uri),
            uri: uri.to_owned(),
        }
    }

    /// Redacts `text` (an error message) of this target's URI.
    #[must_use]
    pub fn clean(&self, text: &str) -> String {
        self.redactor.clean(text)
    }

    async fn options(&self) -> Result<ClientOptions, MongoError> {
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

    /// Connects to every member (the URI's seeds and every host they report), checks each
    /// belongs to the platform's replica set, and returns the members. Used by preflight.
    ///
    /// # Errors
    ///
    /// Every problem found: unreachable members, a wrong set name.
    pub async fn preflight(&self) -> Result<Vec<String>, Vec<MongoError>> {
        let mut problems = Vec::new();
        let seeds = self.seeds().await.map_err(|e| vec![e])?;
        let mut hosts: Vec<String> = seeds;
        hosts.extend(self.regions.keys().cloned());
        let mut checked = Vec::new();
        // Every host a member reports as part of the set.
        let mut reported: Vec<String> = Vec::new();
        let mut i = 0;
        while i < hosts.len() {
            let host = hosts[i].clone();
            i += 1;
            if checked.contains(&host) {
                continue;
            }
            checked.push(host.clone());
            match self.hello(&host).await {
                Ok(hello) => {
                    if hello.set_name.as_deref() != Some(self.replica_set.as_str()) {
                        problems.push(MongoError::WrongSet {
                            database: self.database.clone(),
                            host: host.clone(),
                            expected: self.replica_set.clone(),
                            found: hello
                                .set_name
                                .clone()
                                .unwrap_or_else(|| "none (not a replica set member)".into()),
                        });
                    }
                    for h in hello.hosts {
                        if !reported.contains(&h) {
                            reported.push(h.clone());
                        }
                        if !hosts.contains(&h) {
                            hosts.push(h);
                        }
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        // A member the platform maps (for its region) that the replica set does not list is
        // a typo or a member removed since: every step would misplace it.
        let listed: Vec<&String> = reported.iter().collect();
        if !listed.is_empty() {
            for host in self.regions.keys() {
                if !reported.contains(host) && !problems.iter().any(|p| p.names_host(host)) {
                    problems.push(MongoError::NotInConfig {
                        database: self.database.clone(),
                        host: host.clone(),
                        members: listed
                            .iter()
                            .map(|h| h.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(checked)
        } else {
            Err(problems)
        }
    }

    /// The current primary, asking the members directly.
    ///
    /// # Errors
    ///
    /// [`MongoError::NoPrimary`] when no reachable member is primary.
    pub async fn primary(&self) -> Result<String, MongoError> {
        let mut hosts = self.seeds().await?;
        hosts.extend(self.regions.keys().cloned());
        let mut seen = Vec::new();
        for host in hosts {
            if seen.contains(&host) {
                continue;
            }
            seen.push(host.clone());
            if let Ok(hello) = self.hello(&host).await {
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
                region: self.regions.get(&host).cloned().or(tag),
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

    /// `replSetStepDown` on `primary` (from [`Target::primary`]).
    ///
    /// # Errors
    ///
    /// [`MongoError`] when it is not primary any more or refuses.
    pub async fn step_down(
        &self,
        primary: &str,
        step_down_secs: u64,
        catch_up_secs: u64,
    ) -> Result<(), MongoError> {
        match self
            .command(
                primary,
                "replSetStepDown",
                doc! {"replSetStepDown": step_down_secs as i64, "secondaryCatchUpPeriodSecs": catch_up_secs as i64},
            )
            .await
        {
            // A member may close connections as it steps down; that is success.
            Ok(_) | Err(MongoError::Unreachable { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `replSetFreeze` on `host` (0 unfreezes).
    ///
    /// # Errors
    ///
    /// [`MongoError`] when it refuses (a primary cannot be frozen) or is unreachable.
    pub async fn freeze(&self, host: &str, secs: u64) -> Result<(), MongoError> {
        self.command(host, "replSetFreeze", doc! {"replSetFreeze": secs as i64})
            .await
            .map(|_| ())
    }

    /// `shutdown` (forced) on `host`; the closed connection is the expected answer.
    ///
    /// # Errors
    ///
    /// [`MongoError::Command`] when the member refuses.
    pub async fn shutdown(&self, host: &str) -> Result<(), MongoError> {
        match self
            .command(host, "shutdown", doc! {"shutdown": 1, "force": true})
            .await
        {
            Ok(_) | Err(MongoError::Unreachable { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The members' priorities and the config version, for the ledger before a flip.
    ///
    /// # Errors
    ///
    /// As [`Target::config`].
    pub async fn priorities(&self) -> Result<SavedConfig, MongoError> {
        let config = self.config().await?;
        Ok(SavedConfig {
            version: config_version(&config),
            priorities: config_members(&config)
                .into_iter()
                .map(|(host, priority, _)| (host, priority))
                .collect(),
        })
    }

    /// Reconfigures with new priorities (`host` → priority; others unchanged) at the current
    /// version + 1.
    ///
    /// # Errors
    ///
    /// [`MongoError::Command`] when the reconfig is rejected (nothing changes then).
    pub async fn set_priorities(
        &self,
        priorities: &BTreeMap<String, f64>,
    ) -> Result<(), MongoError> {
        let primary = self.primary().await?;
        let reply = self
            .command(&primary, "replSetGetConfig", doc! {"replSetGetConfig": 1})
            .await?;
        let mut config = reply.get_document("config").cloned().unwrap_or_default();
        let version = config_version(&config);
        let members: Vec<Bson> = config
            .get_array("members")
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|m| match m {
                Bson::Document(mut m) => {
                    let host = m.get_str("host").unwrap_or_default().to_owned();
                    if let Some(p) = priorities.get(&host) {
                        m.insert("priority", *p);
                    }
                    Bson::Document(m)
                }
                other => other,
            })
            .collect();
        config.insert("members", members);
        config.insert("version", version + 1);
        self.command(
            &primary,
            "replSetReconfig",
            doc! {"replSetReconfig": config},
        )
        .await
        .map(|_| ())
    }

    /// The priorities that move the primary to `region`: its members above every other.
    ///
    /// # Errors
    ///
    /// [`MongoError::NoMemberInRegion`].
    pub fn flip_priorities(
        &self,
        members: &[Member],
        saved: &SavedConfig,
        region: &str,
    ) -> Result<BTreeMap<String, f64>, MongoError> {
        let top = saved
            .priorities
            .iter()
            .map(|(_, p)| *p)
            .fold(1.0_f64, f64::max);
        let mut out = BTreeMap::new();
        let mut any = false;
        for (host, priority) in &saved.priorities {
            let in_region = self.region_in(members, host).as_deref() == Some(region);
            if *priority <= 0.0 {
                continue; // non-electable members stay so
            }
            if in_region {
                any = true;
                out.insert(host.clone(), (top + 1.0).min(1000.0));
            } else {
                // Lowered but still electable, so losing the region elects someone.
                out.insert(host.clone(), (priority / 2.0).max(0.5));
            }
        }
        if !any {
            return Err(MongoError::NoMemberInRegion {
                database: self.database.clone(),
                region: region.to_owned(),
                members: members
                    .iter()
                    .map(|m| {
                        format!(
                            "{} in {}",
                            m.host,
                            m.region.as_deref().unwrap_or("no region")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(out)
    }

    /// Waits until the primary is a member of `region`, within `within` platform time.
    ///
    /// # Errors
    ///
    /// [`MongoError::NotMoved`].
    pub async fn wait_primary_in(
        &self,
        members: &[Member],
        region: &str,
        within: Duration,
        clock: &Clock,
    ) -> Result<String, MongoError> {
        let deadline = clock.now().plus(within);
        let mut ticks = clock.interval(Duration::from_millis(500));
        let mut last = "none".to_owned();
        loop {
            ticks.tick().await;
            if let Ok(p) = self.primary().await {
                if self.region_in(members, &p).as_deref() == Some(region) {
                    return Ok(p);
                }
                last = p;
            }
            if clock.now() >= deadline {
                return Err(MongoError::NotMoved {
                    database: self.database.clone(),
                    region: region.to_owned(),
                    within: firedrill_core::clock::format_duration(within),
                    last,
                });
            }
        }
    }
}

/// The members' priorities and config version saved before a flip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedConfig {
    /// The config version before the change.
    pub version: i64,
    /// `host:port` → priority before the change.
    pub priorities: Vec<(String, f64)>,
}

fn config_version(config: &Document) -> i64 {
    match config.get("version") {
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Double(v)) => *v as i64,
        _ => 1,
    }
}

fn config_members(config: &Document) -> Vec<(String, f64, Option<String>)> {
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
    fn from_doc(doc: &Document) -> Self {
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

/// How to take back a MongoDB action; stored in the ledger by database name, so `recover`
/// reads the URI from the platform again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum MongoUndo {
    /// `replSetFreeze 0` on a member (a freeze, or the step-down's ineligibility period).
    Unfreeze {
        /// The database.
        database: String,
        /// The member.
        host: String,
    },
    /// Run the platform's restart command for a member killed with `shutdown`, then wait until
    /// it answers.
    RestartByCommand {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The command (a key of `commands`).
        command: String,
    },
    /// Wait until the StatefulSet has re-created the deleted pod of a member and it is Ready.
    PodBack {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The kube context.
        context: String,
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// The uid of the deleted pod, to tell the re-created one from it.
        deleted_uid: String,
    },
    /// Put the saved priorities back (at a new config version).
    RestoreConfig {
        /// The database.
        database: String,
        /// The config before the flip.
        saved: SavedConfig,
    },
}

impl Eq for MongoUndo {}

impl MongoUndo {
    /// One line for plans and reports.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            MongoUndo::Unfreeze { database, host } => {
                format!("replSetFreeze 0 on {host} of database {database}")
            }
            MongoUndo::RestartByCommand {
                database,
                host,
                command,
            } => format!(
                "run command \"{command}\" to restart member {host} of database {database}, then wait until it answers"
            ),
            MongoUndo::PodBack {
                database,
                host,
                context,
                namespace,
                pod,
                ..
            } => format!(
                "wait until pod {namespace}/{pod} (member {host} of database {database}, context \"{context}\") is re-created and Ready"
            ),
            MongoUndo::RestoreConfig { database, saved } => format!(
                "restore the priorities of database {database} as of config version {} ({})",
                saved.version,
                saved
                    .priorities
                    .iter()
                    .map(|(h, p)| format!("{h}={p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Applies the undo. Idempotent. Restoring a config waits (2m platform) until the primary
    /// is back in the region of the member with the highest saved priority.
    ///
    /// # Errors
    ///
    /// [`MongoError`] naming the database and member.
    pub async fn apply(&self, platform: &Platform, clock: &Clock) -> Result<(), MongoError> {
        match self {
            MongoUndo::Unfreeze { database, host } => {
                let target = Target::resolve(platform, database)?;
                match target.freeze(host, 0).await {
                    // A primary cannot be frozen or unfrozen; nothing to undo then.
                    Ok(()) | Err(MongoError::Command { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            MongoUndo::RestartByCommand {
                database,
                host,
                command,
            } => kill::restart_by_command(platform, database, host, command, clock).await,
            MongoUndo::PodBack {
                database,
                host,
                context,
                namespace,
                pod,
                deleted_uid,
            } => {
                kill::wait_pod_back(
                    platform,
                    database,
                    host,
                    (context, namespace, pod),
                    deleted_uid,
                    clock,
                )
                .await
            }
            MongoUndo::RestoreConfig { database, saved } => {
                let target = Target::resolve(platform, database)?;
                let current = target.priorities().await?;
                let wanted: BTreeMap<String, f64> = saved.priorities.iter().cloned().collect();
                let same = current
                    .priorities
                    .iter()
                    .all(|(h, p)| wanted.get(h).is_none_or(|w| (w - p).abs() < f64::EPSILON));
                if !same {
                    target.set_priorities(&wanted).await?;
                }
                let members = target.members().await?;
                let home = saved
                    .priorities
                    .iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .and_then(|(h, _)| target.region_in(&members, h));
                if let Some(home) = home {
                    target
                        .wait_primary_in(&members, &home, Duration::from_secs(120), clock)
                        .await?;
                }
                Ok(())
            }
        }
    }
}

/// Preflight of one database: every member reachable and in the platform's replica set.
/// Problems are located at `databases.<database>` of the platform file.
pub async fn preflight(
    database: &str,
    platform: &Platform,
    problems: &mut firedrill_core::diagnostic::Problems,
) {
    let at = |key: &str| platform.locate(&format!("databases.{database}{key}"));
    let target = match Target::resolve(platform, database) {
        Ok(t) => t,
        Err(e) => {
            problems.push(firedrill_core::diagnostic::Problem::at(
                at(".uri"),
                e.to_string(),
            ));
            return;
        }
    };
    if let Err(errors) = target.preflight().await {
        for e in errors {
            let key = match &e {
                MongoError::WrongSet { .. } => ".replica-set",
                _ => ".uri",
            };
            problems.push(firedrill_core::diagnostic::Problem::at(
                at(key),
                target.clean(&e.to_string()),
            ));
        }
    }
}

/// Preflight of a kill: every member of the replica set has a way to be killed and brought
/// back ([`kill::way`]), so whichever is primary when the step runs, its kill can be undone.
/// Problems are located at `databases.<database>.kill`.
pub async fn preflight_kill(
    database: &str,
    platform: &Platform,
    problems: &mut firedrill_core::diagnostic::Problems,
) {
    let at = platform.locate(&format!("databases.{database}.kill"));
    let Ok(target) = Target::resolve(platform, database) else {
        return; // the Mongo preflight reports it
    };
    let hosts = match target.members().await {
        Ok(members) => members.into_iter().map(|m| m.host).collect::<Vec<_>>(),
        Err(_) => return, // the Mongo preflight reports it
    };
    for host in hosts {
        if let Err(e) = kill::way(platform, database, &host) {
            problems.push(firedrill_core::diagnostic::Problem::at(
                at.clone(),
                target.clean(&e.to_string()),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redactor_hides_the_uri_its_userinfo_and_its_password() {
        let r = Redactor::new("mongodb://admin:s3cr%21t@db1:27017/?replicaSet=rs0");
        let text = "failed mongodb://admin:s3cr%21t@db1:27017/?replicaSet=rs0 with admin:s3cr%21t and s3cr!t";
        let clean = r.clean(text);
        assert!(!clean.contains("s3cr"), "{clean}");
        assert!(clean.contains("<redacted>"), "{clean}");
    }

    #[test]
    fn driver_errors_read_as_what_the_server_said_not_as_rust_structs() {
        use mongodb::error::{CommandError, Error, ErrorKind, WriteError, WriteFailure};
        let command: CommandError = bson::from_document(doc! {
            "code": 10107, "codeName": "NotWritablePrimary", "errmsg": "not primary"
        })
        .expect("command error");
        let e = Error::from(ErrorKind::Command(command));
        assert_eq!(describe(&e), "not primary (NotWritablePrimary, code 10107)");

        let write: WriteError = bson::from_document(doc! {
            "code": 11000, "codeName": "DuplicateKey", "errmsg": "E11000 duplicate key"
        })
        .expect("write error");
        let e = Error::from(ErrorKind::Write(WriteFailure::WriteError(write)));
        let text = describe(&e);
        assert_eq!(
            text,
            "write refused: E11000 duplicate key (DuplicateKey, code 11000)"
        );

        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = Error::from(ErrorKind::Io(std::sync::Arc::new(io)));
        let text = describe(&e);
        assert_eq!(text, "I/O error: connection refused");
        // What the driver's Display gives, for comparison: the Debug-flavoured form.
        assert!(e.to_string().contains("labels: {}"), "{e}");

        let nested = "Server selection timeout: No available servers. Topology: { Type: ReplicaSetNoPrimary, Servers: [ { Address: h:1, Type: Unknown, Error: Kind: I/O error: Connection refused (os error 111), labels: {\"RetryableError\", \"SystemOverloadedError\"}, source: None, server response: None } ] }";
        let tidied = tidy(nested);
        for debug in ["Kind:", "labels:", "source: None", "server response"] {
            assert!(!tidied.contains(debug), "{tidied}");
        }
        assert!(
            tidied.contains("Error: I/O error: Connection refused (os error 111) }"),
            "{tidied}"
        );
    }

    #[test]
    fn undos_round_trip_through_json() {
        let undo = MongoUndo::RestoreConfig {
            database: "prod-1".into(),
            saved: SavedConfig {
                version: 3,
                priorities: vec![("h:1".into(), 2.0), ("h:2".into(), 0.5)],
            },
        };
        let json = serde_json::to_string(&undo).expect("json");
        assert_eq!(
            serde_json::from_str::<MongoUndo>(&json).expect("back"),
            undo
        );
    }
}
