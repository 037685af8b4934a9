//! Replica-set administration: `replSetGetStatus`, `replSetGetConfig`, `replSetStepDown`,
//! `replSetFreeze`, `replSetReconfig`, `shutdown`.

use super::*;

pub(super) fn repl_set_get_status(shared: &Shared, m: usize) -> Document {
    let now = shared.clock.now();
    let st = shared.lock();
    let me = &st.members[m];
    let (committed, committed_ts, committed_wall) = st.commit_point(m);
    let primary = st.primary_for(m);
    let members: Vec<Document> = (0..st.members.len())
        .map(|o| {
            let mem = &st.members[o];
            let cfg = &st.config.members[o];
            let mut d = doc! {"_id": cfg.id, "name": &cfg.host};
            if st.connected(m, o) {
                let state = mem.state();
                d.insert("health", 1.0);
                d.insert("state", state.code());
                d.insert("stateStr", state.name());
                d.insert(
                    "uptime",
                    i64::try_from(now.saturating_since(mem.started).as_secs()).unwrap_or(0),
                );
                d.insert("optime", optime_doc(mem.last_ts(), mem.last_optime().term));
                d.insert("optimeDate", date(shared, mem.last_wall()));
                d.insert("lastAppliedWallTime", date(shared, mem.last_wall()));
                let sync = if mem.primary {
                    None
                } else {
                    primary.map(|p| st.host(p).to_owned())
                };
                d.insert("syncSourceHost", sync.unwrap_or_default());
                if let (true, Some((at, ts))) = (mem.primary, mem.election_time) {
                    d.insert("electionTime", ts);
                    d.insert("electionDate", date(shared, at));
                }
            } else {
                d.insert("health", 0.0);
                d.insert("state", 8);
                d.insert("stateStr", "(not reachable/healthy)");
                d.insert("uptime", 0);
                d.insert(
                    "optime",
                    doc! {"ts": bson::Timestamp { time: 0, increment: 0 }, "t": -1_i64},
                );
                d.insert(
                    "lastHeartbeatMessage",
                    "Error connecting: Connection refused",
                );
            }
            d.insert("configVersion", st.config.version);
            d.insert("configTerm", me.term);
            if o == m {
                d.insert("self", true);
            }
            d
        })
        .collect();
    let voters = i32::try_from(st.voters()).unwrap_or(0);
    let majority = i32::try_from(st.majority()).unwrap_or(0);
    doc! {
        "set": &st.name,
        "date": date(shared, now),
        "myState": me.state().code(),
        "term": me.term,
        "syncSourceHost": if me.primary { String::new() } else { primary.map(|p| st.host(p).to_owned()).unwrap_or_default() },
        "heartbeatIntervalMillis": 2000_i64,
        "majorityVoteCount": majority,
        "writeMajorityCount": majority,
        "votingMembersCount": voters,
        "writableVotingMembersCount": voters,
        "optimes": {
            "lastCommittedOpTime": optime_doc(committed_ts, committed.term),
            "lastCommittedWallTime": date(shared, committed_wall),
            "appliedOpTime": optime_doc(me.last_ts(), me.last_optime().term),
            "durableOpTime": optime_doc(me.last_ts(), me.last_optime().term),
            "lastAppliedWallTime": date(shared, me.last_wall()),
        },
        "members": members,
        "ok": 1.0,
    }
}

pub(super) fn repl_set_get_config(shared: &Shared) -> Document {
    let st = shared.lock();
    doc! {"config": config_document(&st), "ok": 1.0}
}

/// The replica set configuration, as `replSetGetConfig` and `local.system.replset` show it.
pub(super) fn config_document(st: &SetState) -> Document {
    let term = st.members.iter().map(|m| m.term).max().unwrap_or(0);
    let members: Vec<Document> = st
        .config
        .members
        .iter()
        .map(|c| {
            doc! {
                "_id": c.id,
                "host": &c.host,
                "arbiterOnly": false,
                "buildIndexes": true,
                "hidden": false,
                "priority": c.priority,
                "tags": c.tags.clone(),
                "secondaryDelaySecs": 0_i64,
                "votes": c.votes,
            }
        })
        .collect();
    let timeout_ms = i64::try_from(st.timing.election_timeout.as_millis()).unwrap_or(i64::MAX);
    doc! {
        "_id": &st.name,
        "version": st.config.version,
        "term": term,
        "protocolVersion": 1_i64,
        "writeConcernMajorityJournalDefault": true,
        "members": members,
        "settings": {
            "chainingAllowed": true,
            "heartbeatIntervalMillis": 2000,
            "heartbeatTimeoutSecs": 10,
            "electionTimeoutMillis": timeout_ms,
            "catchUpTimeoutMillis": -1,
            "catchUpTakeoverDelayMillis": 30000,
            "getLastErrorModes": {},
            "getLastErrorDefaults": {"w": 1, "wtimeout": 0},
            "replicaSetId": st.config.replica_set_id,
        },
    }
}

/// Holds writes, waits for a caught-up electable secondary, then steps down and hands off.
pub(super) async fn step_down_and_hand_off(
    shared: &Shared,
    m: usize,
    catch_up: Duration,
    freeze: Duration,
    force: bool,
) -> Result<(), CommandError> {
    {
        let mut st = shared.lock();
        if !st.members[m].primary {
            return Err(CommandError::new(
                10107,
                "NotWritablePrimary",
                "not primary so can't step down",
            ));
        }
        st.members[m].stepping_down = true;
    }
    shared.notify();
    let deadline = shared.clock.now().plus(catch_up);
    let found = shared
        .wait_for(deadline, |st, now| {
            st.caught_up_secondary(m, now).map(|_| ())
        })
        .await;
    let now = shared.clock.now();
    let result = {
        let mut st = shared.lock();
        if !st.members[m].primary {
            st.members[m].stepping_down = false;
            Err(CommandError::new(
                10107,
                "NotWritablePrimary",
                "not primary so can't step down",
            ))
        } else if found.is_some() || force {
            st.step_down(m, now, freeze);
            st.hand_off(m, now);
            Ok(())
        } else {
            st.members[m].stepping_down = false;
            Err(CommandError::new(
                50,
                "ExceededTimeLimit",
                format!(
                    "No electable secondaries caught up as of {}. Please use the replSetStepDown command with the argument {{force: true}} to force node to step down.",
                    date(shared, now)
                        .try_to_rfc3339_string()
                        .unwrap_or_default()
                ),
            ))
        }
    };
    shared.notify();
    result
}

pub(super) async fn repl_set_step_down(
    shared: &Shared,
    m: usize,
    cmd: &Document,
) -> Result<Document, CommandError> {
    let step_down = secs(cmd.get("replSetStepDown"), 60.0);
    let catch_up = secs(cmd.get("secondaryCatchUpPeriodSecs"), 10.0);
    if step_down < catch_up {
        return Err(CommandError::bad_value(
            "stepdown period must be longer than secondaryCatchUpPeriodSecs".to_owned(),
        ));
    }
    let force = cmd.get_bool("force").unwrap_or(false);
    step_down_and_hand_off(shared, m, catch_up, step_down, force).await?;
    Ok(doc! {"ok": 1.0})
}

pub(super) fn repl_set_freeze(
    shared: &Shared,
    m: usize,
    cmd: &Document,
) -> Result<Document, CommandError> {
    let duration = secs(cmd.get("replSetFreeze"), 0.0);
    let now = shared.clock.now();
    let mut st = shared.lock();
    if st.members[m].primary {
        return Err(CommandError::new(
            95,
            "NotSecondary",
            "cannot freeze node when primary or running for election. state: Primary",
        ));
    }
    st.members[m].frozen_until = now.plus(duration);
    drop(st);
    shared.notify();
    Ok(if duration.is_zero() {
        doc! {"info": "unfreezing", "ok": 1.0}
    } else {
        doc! {"ok": 1.0}
    })
}

fn invalid_config(msg: String) -> CommandError {
    CommandError::new(93, "InvalidReplicaSetConfig", msg)
}

pub(super) fn repl_set_reconfig(
    shared: &Shared,
    m: usize,
    cmd: &Document,
) -> Result<Document, CommandError> {
    let config = cmd.get_document("replSetReconfig").map_err(|_| {
        CommandError::type_mismatch("replSetReconfig needs a configuration document".to_owned())
    })?;
    let mut st = shared.lock();
    if !st.members[m].primary && !cmd.get_bool("force").unwrap_or(false) {
        let state = st.members[m].state().name();
        return Err(CommandError::new(
            10107,
            "NotWritablePrimary",
            format!(
                "replSetReconfig should only be run on a writable PRIMARY. Current state {state};"
            ),
        ));
    }
    let name = config.get_str("_id").unwrap_or_default();
    if name != st.name {
        return Err(invalid_config(format!(
            "Attempting to reconfigure a replica set with name {name}, but command line reports {}; rejecting",
            st.name
        )));
    }
    let version = number(config.get("version")).map(|v| v as i64).unwrap_or(0);
    if version <= i64::from(st.config.version) {
        return Err(CommandError::new(
            103,
            "NewReplicaSetConfigurationIncompatible",
            format!(
                "New replica set configuration version must be greater than old, but {version} is not greater than {} for replica set {}",
                st.config.version, st.name
            ),
        ));
    }
    let given = config
        .get_array("members")
        .map_err(|_| invalid_config("members field must be an array".to_owned()))?;
    let mut next: Vec<MemberConfig> = Vec::new();
    for raw in given {
        let Some(d) = raw.as_document() else {
            return Err(invalid_config("each member must be an object".to_owned()));
        };
        let host = d
            .get_str("host")
            .map_err(|_| invalid_config("member needs a host".to_owned()))?;
        let Some(index) = st.config.members.iter().position(|c| c.host == host) else {
            return Err(CommandError::new(
                74,
                "NodeNotFound",
                format!(
                    "Quorum check failed because not enough voting nodes responded; the following nodes did not respond affirmatively: {host} failed with Error connecting to {host} :: caused by :: Connection refused"
                ),
            ));
        };
        let current = &st.config.members[index];
        let id = number(d.get("_id")).map_or(-1, |v| v as i32);
        if id != current.id {
            return Err(CommandError::new(
                103,
                "NewReplicaSetConfigurationIncompatible",
                format!(
                    "New and old configurations both have members with host of {host} but in the new configuration the _id field is {id} and in the old configuration it is {} for replica set {}",
                    current.id, st.name
                ),
            ));
        }
        if next.iter().any(|c| c.host == host) {
            return Err(invalid_config(format!(
                "Found two member configurations with same host field, members.{index}.host == {host}"
            )));
        }
        let priority = number(d.get("priority")).unwrap_or(1.0);
        if !(0.0..=1000.0).contains(&priority) {
            return Err(invalid_config(format!(
                "priority field value of {priority} is out of range"
            )));
        }
        let votes = number(d.get("votes")).map_or(1, |v| v as i32);
        if !(0..=1).contains(&votes) {
            return Err(invalid_config(format!(
                "votes field value is {votes} but must be 0 or 1 for member {host}"
            )));
        }
        if votes == 0 && priority > 0.0 {
            return Err(invalid_config(format!(
                "priority must be 0 when non-voting (votes:0) for member {host}"
            )));
        }
        let tags = d
            .get_document("tags")
            .cloned()
            .unwrap_or_else(|_| current.tags.clone());
        next.push(MemberConfig {
            id,
            host: host.to_owned(),
            priority,
            votes,
            tags,
        });
    }
    if next.len() != st.config.members.len() {
        return Err(CommandError::new(
            103,
            "NewReplicaSetConfigurationIncompatible",
            format!(
                "the embedded replica set {} cannot add or remove members (hint: list every current member)",
                st.name
            ),
        ));
    }
    if next.iter().all(|c| c.priority <= 0.0 || c.votes == 0) {
        return Err(invalid_config(
            "This config has no electable members (hint: give a voting member priority > 0)"
                .to_owned(),
        ));
    }
    next.sort_by_key(|c| c.id);
    st.reconfigure(i32::try_from(version).unwrap_or(i32::MAX), next);
    drop(st);
    shared.notify();
    Ok(doc! {"ok": 1.0})
}

pub(super) async fn shutdown(
    shared: &Shared,
    m: usize,
    cmd: &Document,
) -> Result<(), CommandError> {
    let force = cmd.get_bool("force").unwrap_or(false);
    let primary = shared.lock().members[m].primary;
    if primary {
        let timeout = secs(cmd.get("timeoutSecs"), 15.0);
        step_down_and_hand_off(shared, m, timeout, Duration::from_secs(60), force).await?;
    }
    if let Some(listener) = shared.shut_down_member(m) {
        // This connection belongs to the aborted listener task: awaiting it ends only when the
        // runtime cancels this connection, after the listening socket has been dropped, so the
        // client sees the connection close only once the port is closed.
        let _ = listener.await;
    }
    Ok(())
}
