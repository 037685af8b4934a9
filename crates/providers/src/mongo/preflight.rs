//! What preflight checks of a database before anything is injected: every member answers and
//! belongs to the platform's replica set ([`Need::Mongo`](crate::preflight::Need::Mongo)), and
//! every member a kill may hit has a way back ([`Need::MongoKill`](crate::preflight::Need::MongoKill)).

use firedrill_core::diagnostic::{Problem, Problems};
use firedrill_platform::Platform;

use super::{MongoError, Target, kill};

impl Target {
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
}

/// Preflight of one database: every member reachable and in the platform's replica set.
/// Problems are located at `databases.<database>` of the platform file.
pub async fn preflight(database: &str, platform: &Platform, problems: &mut Problems) {
    let at = |key: &str| platform.locate(&format!("databases.{database}{key}"));
    let target = match Target::resolve(platform, database) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem::at(at(".uri"), e.to_string()));
            return;
        }
    };
    if let Err(errors) = target.preflight().await {
        for e in errors {
            let key = match &e {
                MongoError::WrongSet { .. } => ".replica-set",
                _ => ".uri",
            };
            problems.push(Problem::at(at(key), target.clean(&e.to_string())));
        }
    }
}

/// Preflight of a kill: every member of the replica set has a way to be killed and brought
/// back ([`kill::way`]), so whichever is primary when the step runs, its kill can be undone.
/// Problems are located at `databases.<database>.kill`.
pub async fn preflight_kill(database: &str, platform: &Platform, problems: &mut Problems) {
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
            problems.push(Problem::at(at.clone(), target.clean(&e.to_string())));
        }
    }
}
