//! What a replica set is made of (members, priorities, regions) and its timing model.

use std::time::Duration;

use super::error::Error;

/// One replica set to start.
#[derive(Debug, Clone)]
pub struct ReplicaSetSpec {
    /// The replica set name (`setName`, `?replicaSet=` in the URI).
    pub name: String,
    /// The members, in `_id` order.
    pub members: Vec<MemberSpec>,
    /// Seed of every random choice (replication lag, election jitter).
    pub seed: u64,
    /// Modelled durations, in platform time.
    pub timing: Timing,
}

/// One member of a replica set.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// The region tag (`tags: {region: ...}`), e.g. `us-west1`.
    pub region: String,
    /// Election priority, 0..=1000; 0 never becomes primary.
    pub priority: f64,
}

impl MemberSpec {
    /// A member in `region` with `priority`.
    #[must_use]
    pub fn new(region: impl Into<String>, priority: f64) -> Self {
        Self {
            region: region.into(),
            priority,
        }
    }
}

/// Modelled durations of a replica set, all in platform time.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// `settings.electionTimeoutMillis`: how long secondaries wait without a primary before
    /// calling an election (MongoDB default 10 s).
    pub election_timeout: Duration,
    /// Upper bound of the seeded random offset added to each election timeout (MongoDB
    /// randomises by up to 15 % of the timeout).
    pub election_jitter: Duration,
    /// How long one election round (vote requests and replies) takes.
    pub election_round: Duration,
    /// How long a caught-up higher-priority member waits before a priority takeover. MongoDB
    /// schedules it (priority rank + 1) × electionTimeoutMillis after it sees the lower
    /// primary (`ReplSetConfig::getPriorityTakeoverDelay`): 10 s for the highest priority by
    /// default, which is what every member here waits.
    pub priority_takeover_delay: Duration,
    /// Replication lag of a member in the primary's region, before jitter.
    pub replication_lag: Duration,
    /// Upper bound of the seeded extra lag drawn per member.
    pub replication_jitter: Duration,
    /// Extra lag when the member and the primary are in different regions.
    pub cross_region_lag: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            election_timeout: Duration::from_secs(10),
            election_jitter: Duration::from_millis(1_500),
            election_round: Duration::from_millis(300),
            priority_takeover_delay: Duration::from_secs(10),
            replication_lag: Duration::from_millis(5),
            replication_jitter: Duration::from_millis(15),
            cross_region_lag: Duration::from_millis(30),
        }
    }
}

impl ReplicaSetSpec {
    /// Checks the spec without doing any I/O.
    ///
    /// # Errors
    ///
    /// [`Error::NoMembers`], [`Error::TooManyMembers`], [`Error::InvalidPriority`] or
    /// [`Error::NoElectableMember`].
    pub fn validate(&self) -> Result<(), Error> {
        let set = || self.name.clone();
        if self.members.is_empty() {
            return Err(Error::NoMembers { set: set() });
        }
        if self.members.len() > 7 {
            return Err(Error::TooManyMembers {
                set: set(),
                count: self.members.len(),
            });
        }
        for (index, m) in self.members.iter().enumerate() {
            if !(0.0..=1000.0).contains(&m.priority) {
                return Err(Error::InvalidPriority {
                    set: set(),
                    index,
                    priority: m.priority,
                });
            }
        }
        if self.members.iter().all(|m| m.priority <= 0.0) {
            return Err(Error::NoElectableMember { set: set() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_sets_that_can_never_elect() {
        let mut spec = ReplicaSetSpec {
            name: "rs0".into(),
            members: vec![MemberSpec::new("us-west1", 0.0)],
            seed: 1,
            timing: Timing::default(),
        };
        assert!(matches!(
            spec.validate(),
            Err(Error::NoElectableMember { .. })
        ));
        spec.members[0].priority = 1001.0;
        assert!(matches!(
            spec.validate(),
            Err(Error::InvalidPriority { index: 0, .. })
        ));
        spec.members.clear();
        assert!(matches!(spec.validate(), Err(Error::NoMembers { .. })));
    }
}
