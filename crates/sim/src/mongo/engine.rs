//! The replica set's state machine: per-member oplogs and data, replication with modelled lag,
//! the majority commit rule, elections (timeout, priority takeover, step-down handoff) and
//! rollback. Pure logic over a platform instant `now`: no I/O, no sleeping; the server drives
//! it with [`SetState::tick`] and wakes waiters when it reports a change.

use std::collections::HashMap;
use std::time::Duration;

use bson::oid::ObjectId;
use bson::{Bson, Document, Timestamp};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub(crate) use super::catalog::Op;
use super::catalog::{self, Catalog};
use super::error::CommandError;
use super::spec::{ReplicaSetSpec, Timing};
use super::txn::{TRANSACTION_LIFETIME, Transaction, TxnState};
use firedrill_core::clock::PlatformTime;

/// A position in an oplog. Ordered by term, then by the set-wide sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct OpTime {
    pub term: i64,
    pub seq: u64,
}

/// The result of one write statement, kept so a retried statement answers the same.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct StmtResult {
    pub n: i64,
    pub n_modified: i64,
    pub upserted: Option<Bson>,
    /// The document a findAndModify returned.
    pub value: Option<Document>,
}

/// Marks an oplog entry as statement `stmt` of retryable write (lsid, txnNumber).
#[derive(Debug, Clone)]
pub(crate) struct TxnStmt {
    pub lsid: Vec<u8>,
    pub txn_number: i64,
    pub stmt: i32,
    pub result: StmtResult,
}

/// One oplog entry: the ops of one write statement (or one committed transaction), applied
/// atomically.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub optime: OpTime,
    pub ts: Timestamp,
    pub wall: PlatformTime,
    pub ops: Vec<Op>,
    pub txn: Option<TxnStmt>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TxnRecord {
    pub txn_number: i64,
    pub stmts: HashMap<i32, StmtResult>,
}

/// A member's data, always the result of applying its oplog in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    pub collections: Catalog,
    pub txns: HashMap<Vec<u8>, TxnRecord>,
}

impl Store {
    fn apply(&mut self, entry: &Entry) {
        for op in &entry.ops {
            catalog::apply(&mut self.collections, op, entry.optime.seq);
        }
        if let Some(t) = &entry.txn {
            let rec = self.txns.entry(t.lsid.clone()).or_default();
            if t.txn_number > rec.txn_number {
                *rec = TxnRecord {
                    txn_number: t.txn_number,
                    stmts: HashMap::new(),
                };
            }
            if t.txn_number == rec.txn_number {
                rec.stmts.insert(t.stmt, t.result.clone());
            }
        }
    }

    fn rebuild(oplog: &[Entry]) -> Self {
        let mut store = Store::default();
        for e in oplog {
            store.apply(e);
        }
        store
    }
}

/// A member's replica-set state as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Accepts writes.
    Primary,
    /// Replicates from the primary.
    Secondary,
    /// Shut down: its port is closed.
    Down,
}

impl MemberState {
    /// The `myState` / `state` number of replSetGetStatus.
    #[must_use]
    pub fn code(self) -> i32 {
        match self {
            Self::Primary => 1,
            Self::Secondary => 2,
            Self::Down => 8,
        }
    }

    /// The `stateStr` of replSetGetStatus.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Primary => "PRIMARY",
            Self::Secondary => "SECONDARY",
            Self::Down => "(not reachable/healthy)",
        }
    }
}

/// Why an election happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionReason {
    /// The set was just initiated.
    Initiate,
    /// Secondaries heard from no primary for electionTimeoutMillis.
    Timeout,
    /// A caught-up member with a higher priority than the primary's took over.
    PriorityTakeover,
    /// The primary stepped down and handed off to a caught-up secondary.
    StepDownHandoff,
}

/// Ground truth: one won election.
#[derive(Debug, Clone, PartialEq)]
pub struct Election {
    /// The term the winner starts.
    pub term: i64,
    /// The winner's `host:port`.
    pub host: String,
    /// The winner's region tag.
    pub region: String,
    /// When the winner became primary, on the platform timeline.
    pub at: PlatformTime,
    /// What triggered it.
    pub reason: ElectionReason,
}

/// Ground truth: writes a member discarded when it rejoined after diverging.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollback {
    /// The member that rolled back.
    pub host: String,
    /// When, on the platform timeline.
    pub at: PlatformTime,
    /// The documents inserted by the discarded writes, with their namespace (`db.coll`).
    pub inserted: Vec<(String, Document)>,
    /// How many oplog entries (write statements) were discarded.
    pub entries: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct MemberConfig {
    pub id: i32,
    pub host: String,
    pub priority: f64,
    pub votes: i32,
    pub tags: Document,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub version: i32,
    pub members: Vec<MemberConfig>,
    pub replica_set_id: ObjectId,
}

#[derive(Debug)]
pub(crate) struct Member {
    pub up: bool,
    pub partitioned: bool,
    /// The other members' heartbeats to this member's advertised address fail (a proxy in
    /// front of it cut the link): to them it is as good as partitioned.
    pub link_down: bool,
    pub primary: bool,
    /// This member's view of the current term.
    pub term: i64,
    pub oplog: Vec<Entry>,
    pub store: Store,
    pub last_contact: PlatformTime,
    pub jitter: Duration,
    pub lag: Duration,
    pub frozen_until: PlatformTime,
    /// Writes are held while a step-down or takeover is in progress.
    pub stepping_down: bool,
    pub lost_majority_since: Option<PlatformTime>,
    pub takeover_since: Option<PlatformTime>,
    /// When the member came back on the network after a cut (see [`SetState::rejoin_settle`]).
    pub back_at: Option<PlatformTime>,
    pub process_id: ObjectId,
    pub topology_counter: i64,
    /// The primary this member last reported in hello, to detect changes.
    pub seen_primary: Option<usize>,
    pub started: PlatformTime,
    pub election_time: Option<(PlatformTime, Timestamp)>,
    /// Multi-document transactions open on this member (while it is primary), by session.
    pub transactions: HashMap<Vec<u8>, Transaction>,
    /// The newest majority commit point this member has learned; it stays when the member is
    /// cut off from the majority, as the server's `lastCommittedOpTime` does.
    pub commit_known: OpTime,
}

impl Member {
    pub(crate) fn last_optime(&self) -> OpTime {
        self.oplog.last().map(|e| e.optime).unwrap_or_default()
    }

    pub(crate) fn last_ts(&self) -> Timestamp {
        self.oplog.last().map(|e| e.ts).unwrap_or(Timestamp {
            time: 0,
            increment: 0,
        })
    }

    pub(crate) fn last_wall(&self) -> PlatformTime {
        self.oplog.last().map(|e| e.wall).unwrap_or_default()
    }

    pub(crate) fn has(&self, optime: OpTime) -> bool {
        self.oplog
            .binary_search_by(|e| e.optime.cmp(&optime))
            .is_ok()
    }

    pub(crate) fn state(&self) -> MemberState {
        if !self.up {
            MemberState::Down
        } else if self.primary {
            MemberState::Primary
        } else {
            MemberState::Secondary
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PendingElection {
    candidate: usize,
    at: PlatformTime,
    reason: ElectionReason,
}

/// The whole replica set: configuration, members and ground-truth records.
#[derive(Debug)]
pub(crate) struct SetState {
    pub name: String,
    pub config: Config,
    pub members: Vec<Member>,
    pub timing: Timing,
    pub elections: Vec<Election>,
    pub rollbacks: Vec<Rollback>,
    pub deduplicated: u64,
    pub regions: Vec<String>,
    /// Unix seconds of the platform origin, for oplog timestamps and dates.
    pub wall_origin_secs: u64,
    /// How long a member back from a cut waits at least before a priority takeover: the
    /// drivers see a member come back only at their next check of it, at most every
    /// minHeartbeatFrequencyMS (500 ms of *wall* time, fixed by the SDAM spec). On a
    /// compressed clock that is minutes of platform time (100 s at 200×), far more than the
    /// 10 s a takeover waits, so a member would take over before any client knew it was
    /// back, and the clients, not the database, would be the outage. The server sets it to
    /// 600 ms of wall time in platform time; zero here, as on the real clock it is noise.
    pub rejoin_settle: Duration,
    next_seq: u64,
    rng: ChaCha8Rng,
    pending: Option<PendingElection>,
}

impl SetState {
    /// A set whose members are reached at `hosts` (index = member `_id`), all secondaries with an
    /// initiating election scheduled for the highest-priority member.
    pub(crate) fn new(
        spec: &ReplicaSetSpec,
        hosts: &[String],
        now: PlatformTime,
        wall_origin_secs: u64,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let timing = spec.timing.clone();
        let members_cfg: Vec<MemberConfig> = spec
            .members
            .iter()
            .zip(hosts)
            .enumerate()
            .map(|(i, (m, host))| MemberConfig {
                id: i32::try_from(i).unwrap_or(i32::MAX),
                host: host.clone(),
                priority: m.priority,
                votes: 1,
                tags: bson::doc! {"region": m.region.clone()},
            })
            .collect();
        let members = (0..members_cfg.len())
            .map(|_| Member {
                up: true,
                partitioned: false,
                link_down: false,
                primary: false,
                term: 0,
                oplog: Vec::new(),
                store: Store::default(),
                last_contact: now,
                jitter: draw(&mut rng, timing.election_jitter),
                lag: timing.replication_lag + draw(&mut rng, timing.replication_jitter),
                frozen_until: PlatformTime::ZERO,
                stepping_down: false,
                lost_majority_since: None,
                takeover_since: None,
                back_at: None,
                process_id: ObjectId::new(),
                topology_counter: 0,
                seen_primary: None,
                started: now,
                election_time: None,
                transactions: HashMap::new(),
                commit_known: OpTime::default(),
            })
            .collect();
        let mut state = Self {
            name: spec.name.clone(),
            config: Config {
                version: 1,
                members: members_cfg,
                replica_set_id: ObjectId::new(),
            },
            members,
            timing,
            elections: Vec::new(),
            rollbacks: Vec::new(),
            deduplicated: 0,
            regions: spec.members.iter().map(|m| m.region.clone()).collect(),
            wall_origin_secs,
            rejoin_settle: Duration::ZERO,
            next_seq: 1,
            rng,
            pending: None,
        };
        if let Some(first) = state.best_candidate(0, now, |_| true) {
            state.pending = Some(PendingElection {
                candidate: first,
                at: now.plus(state.timing.election_round),
                reason: ElectionReason::Initiate,
            });
        }
        state
    }

    pub(crate) fn host(&self, m: usize) -> &str {
        &self.config.members[m].host
    }

    pub(crate) fn priority(&self, m: usize) -> f64 {
        self.config.members[m].priority
    }

    /// Whether `a` and `b` can exchange heartbeats and oplog entries.
    pub(crate) fn connected(&self, a: usize, b: usize) -> bool {
        let (ma, mb) = (&self.members[a], &self.members[b]);
        a == b
            || (ma.up
                && mb.up
                && !ma.partitioned
                && !mb.partitioned
                && !ma.link_down
                && !mb.link_down)
    }

    pub(crate) fn voters(&self) -> usize {
        self.config.members.iter().filter(|c| c.votes > 0).count()
    }

    pub(crate) fn majority(&self) -> usize {
        self.voters() / 2 + 1
    }

    fn reachable_voters(&self, m: usize) -> usize {
        (0..self.members.len())
            .filter(|&o| self.config.members[o].votes > 0 && self.connected(m, o))
            .count()
    }

    /// The primary `m` sees: the highest-term primary it can reach (itself included).
    pub(crate) fn primary_for(&self, m: usize) -> Option<usize> {
        if !self.members[m].up {
            return None;
        }
        (0..self.members.len())
            .filter(|&o| self.members[o].primary && self.connected(m, o))
            .max_by_key(|&o| self.members[o].term)
    }

    /// The set's current primary as ground truth: the highest-term primary that is up.
    pub(crate) fn true_primary(&self) -> Option<usize> {
        (0..self.members.len())
            .filter(|&o| self.members[o].up && self.members[o].primary)
            .max_by_key(|&o| self.members[o].term)
    }

    fn electable(&self, m: usize, now: PlatformTime) -> bool {
        let mem = &self.members[m];
        mem.up
            && self.config.members[m].priority > 0.0
            && self.config.members[m].votes > 0
            && mem.frozen_until <= now
    }

    /// Among electable secondaries reachable from `from` and accepted by `filter`: the
    /// freshest oplog, then the highest priority, then the lowest `_id`.
    fn best_candidate(
        &self,
        from: usize,
        now: PlatformTime,
        filter: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        (0..self.members.len())
            .filter(|&c| {
                self.connected(from, c)
                    && self.electable(c, now)
                    && !self.members[c].primary
                    && filter(c)
            })
            .max_by(|&a, &b| {
                let (ma, mb) = (&self.members[a], &self.members[b]);
                ma.last_optime()
                    .cmp(&mb.last_optime())
                    .then(self.priority(a).total_cmp(&self.priority(b)))
                    .then(b.cmp(&a))
            })
    }

    fn bump(&mut self, m: usize) {
        self.members[m].topology_counter += 1;
    }

    pub(crate) fn bump_all(&mut self) {
        for m in 0..self.members.len() {
            self.bump(m);
        }
    }

    pub(crate) fn timestamp(&self, now: PlatformTime, seq: u64) -> Timestamp {
        let time = self.wall_origin_secs + now.offset().as_secs();
        Timestamp {
            time: u32::try_from(time).unwrap_or(u32::MAX),
            increment: u32::try_from(seq % u64::from(u32::MAX)).unwrap_or(0),
        }
    }

    /// Appends one write statement to primary `m`'s oplog and applies it.
    pub(crate) fn append(
        &mut self,
        m: usize,
        now: PlatformTime,
        ops: Vec<Op>,
        txn: Option<TxnStmt>,
    ) -> OpTime {
        let seq = self.next_seq;
        self.next_seq += 1;
        let optime = OpTime {
            term: self.members[m].term,
            seq,
        };
        let entry = Entry {
            optime,
            ts: self.timestamp(now, seq),
            wall: now,
            ops,
            txn,
        };
        let member = &mut self.members[m];
        member.store.apply(&entry);
        member.oplog.push(entry);
        optime
    }

    /// Whether the write at `optime` made on member `m` is majority committed.
    ///
    /// # Errors
    ///
    /// `PrimarySteppedDown` when `m` lost primary state before the write committed, and
    /// `InterruptedDueToReplStateChange` when the write was rolled back on `m`; both carry
    /// the RetryableWriteError label like the real server's.
    pub(crate) fn is_committed(&self, m: usize, optime: OpTime) -> Result<bool, CommandError> {
        if !self.members[m].has(optime) {
            return Err(CommandError::new(
                11602,
                "InterruptedDueToReplStateChange",
                "operation was interrupted because the write was rolled back",
            )
            .with_label("RetryableWriteError"));
        }
        let holders = (0..self.members.len())
            .filter(|&o| {
                self.config.members[o].votes > 0
                    && self.connected(m, o)
                    && self.members[o].has(optime)
            })
            .count();
        if holders >= self.majority() {
            return Ok(true);
        }
        if !self.members[m].primary || !self.members[m].up {
            return Err(CommandError::new(
                189,
                "PrimarySteppedDown",
                "Primary stepped down while waiting for replication",
            )
            .with_label("RetryableWriteError"));
        }
        Ok(false)
    }

    /// The majority commit point as member `m` knows it: optime, timestamp and wall instant
    /// of the newest entry a majority of voters holds.
    pub(crate) fn commit_point(&self, m: usize) -> (OpTime, Timestamp, PlatformTime) {
        let mut known: Vec<(OpTime, Timestamp, PlatformTime)> = (0..self.members.len())
            .filter(|&o| self.config.members[o].votes > 0 && self.connected(m, o))
            .map(|o| {
                let mem = &self.members[o];
                (mem.last_optime(), mem.last_ts(), mem.last_wall())
            })
            .collect();
        known.sort_by_key(|k| std::cmp::Reverse(k.0));
        known
            .get(self.majority().saturating_sub(1))
            .copied()
            .unwrap_or((
                OpTime::default(),
                Timestamp {
                    time: 0,
                    increment: 0,
                },
                PlatformTime::ZERO,
            ))
    }

    /// Member `m`'s data as of its majority commit point, when it holds writes past it (`None`
    /// when all of its data is majority committed), with the sequence number of that point:
    /// what a `readConcern: majority` read sees.
    pub(crate) fn committed_catalog(&self, m: usize) -> Option<(Catalog, u64)> {
        let mem = &self.members[m];
        let committed = self.commit_point(m).0.max(mem.commit_known);
        if mem.last_optime() <= committed {
            return None;
        }
        let k = mem.oplog.partition_point(|e| e.optime <= committed);
        Some((Store::rebuild(&mem.oplog[..k]).collections, committed.seq))
    }

    /// The timestamp of member `m`'s majority commit point (the newest it has learned).
    pub(crate) fn committed_ts(&self, m: usize) -> Timestamp {
        let mem = &self.members[m];
        let committed = self.commit_point(m).0.max(mem.commit_known);
        let k = mem.oplog.partition_point(|e| e.optime <= committed);
        k.checked_sub(1).map_or(
            Timestamp {
                time: 0,
                increment: 0,
            },
            |i| mem.oplog[i].ts,
        )
    }

    /// Member `m`'s data as of the cluster time `at` (every entry up to it applied): what a
    /// snapshot read at `at` sees. `None` when that is all of its data.
    pub(crate) fn catalog_at(&self, m: usize, at: Timestamp) -> Option<Catalog> {
        let mem = &self.members[m];
        let key = |t: Timestamp| (t.time, t.increment);
        if key(mem.last_ts()) <= key(at) {
            return None;
        }
        let k = mem.oplog.partition_point(|e| key(e.ts) <= key(at));
        Some(Store::rebuild(&mem.oplog[..k]).collections)
    }

    /// Steps primary `m` down and keeps it from standing for `freeze`.
    pub(crate) fn step_down(&mut self, m: usize, now: PlatformTime, freeze: Duration) {
        let member = &mut self.members[m];
        member.primary = false;
        member.stepping_down = false;
        member.lost_majority_since = None;
        member.frozen_until = member.frozen_until.max(now.plus(freeze));
        member.last_contact = now;
        self.bump(m);
    }

    /// Schedules the handoff election after a step-down: the highest-priority caught-up
    /// electable secondary stands at once instead of waiting for the election timeout.
    pub(crate) fn hand_off(&mut self, from: usize, now: PlatformTime) {
        let target = self.members[from].last_optime();
        let candidate = (0..self.members.len())
            .filter(|&c| {
                c != from
                    && self.connected(from, c)
                    && self.electable(c, now)
                    && self.members[c].last_optime() >= target
            })
            .max_by(|&a, &b| {
                self.priority(a)
                    .total_cmp(&self.priority(b))
                    .then(b.cmp(&a))
            });
        if let Some(candidate) = candidate {
            self.pending = Some(PendingElection {
                candidate,
                at: now.plus(self.timing.election_round),
                reason: ElectionReason::StepDownHandoff,
            });
        }
    }

    /// A caught-up electable secondary for a step-down, if any.
    pub(crate) fn caught_up_secondary(&self, from: usize, now: PlatformTime) -> Option<usize> {
        let target = self.members[from].last_optime();
        (0..self.members.len()).find(|&c| {
            c != from
                && self.connected(from, c)
                && self.electable(c, now)
                && self.members[c].last_optime() >= target
        })
    }

    pub(crate) fn kill(&mut self, m: usize, now: PlatformTime) {
        let member = &mut self.members[m];
        member.up = false;
        member.primary = false;
        member.stepping_down = false;
        member.last_contact = now;
        if self.pending.is_some_and(|p| p.candidate == m) {
            self.pending = None;
        }
        self.bump_all();
    }

    pub(crate) fn restart(&mut self, m: usize, now: PlatformTime) {
        let jitter = draw(&mut self.rng, self.timing.election_jitter);
        let member = &mut self.members[m];
        member.up = true;
        member.primary = false;
        member.process_id = ObjectId::new();
        member.topology_counter = 0;
        member.last_contact = now;
        member.jitter = jitter;
        member.started = now;
        member.lost_majority_since = None;
        member.takeover_since = None;
        self.bump_all();
    }

    /// Advances the model to `now`: stale primaries step down, secondaries replicate (and
    /// roll back when they diverged), elections start and complete. Returns whether anything
    /// changed and the next instant something is due.
    pub(crate) fn tick(&mut self, now: PlatformTime) -> (bool, Option<PlatformTime>) {
        let before: Vec<(bool, i64, usize, usize)> = self
            .members
            .iter()
            .map(|m| {
                (
                    m.primary,
                    m.term,
                    m.oplog.len(),
                    m.topology_counter as usize,
                )
            })
            .collect();
        let mut next: Option<PlatformTime> = None;
        let mut due = |t: PlatformTime| next = Some(next.map_or(t, |n: PlatformTime| n.min(t)));

        self.check_primaries(now, &mut due);
        self.replicate(now, &mut due);
        self.complete_election(now, &mut due);
        self.start_elections(now, &mut due);

        for m in 0..self.members.len() {
            let (committed, _, _) = self.commit_point(m);
            let mem = &mut self.members[m];
            mem.commit_known = mem.commit_known.max(committed);
        }
        for mem in &mut self.members {
            if !mem.primary || !mem.up {
                // A step-down or shutdown aborts every open transaction, as on the server.
                mem.transactions.clear();
            }
            for t in mem.transactions.values_mut() {
                if t.state == TxnState::Active {
                    let expires = t.started.plus(TRANSACTION_LIFETIME);
                    if now >= expires {
                        t.abort();
                    } else {
                        due(expires);
                    }
                }
            }
        }
        for m in 0..self.members.len() {
            let seen = self.primary_for(m);
            if seen != self.members[m].seen_primary {
                self.members[m].seen_primary = seen;
                self.bump(m);
            }
        }
        let after: Vec<(bool, i64, usize, usize)> = self
            .members
            .iter()
            .map(|m| {
                (
                    m.primary,
                    m.term,
                    m.oplog.len(),
                    m.topology_counter as usize,
                )
            })
            .collect();
        (before != after, next)
    }

    fn check_primaries(&mut self, now: PlatformTime, due: &mut impl FnMut(PlatformTime)) {
        for m in 0..self.members.len() {
            if !self.members[m].up || !self.members[m].primary {
                continue;
            }
            let term = self.members[m].term;
            let newer = (0..self.members.len())
                .any(|o| self.connected(m, o) && self.members[o].term > term);
            if newer || self.priority(m) <= 0.0 {
                self.step_down(m, now, Duration::ZERO);
                continue;
            }
            if self.reachable_voters(m) < self.majority() {
                let since = *self.members[m].lost_majority_since.get_or_insert(now);
                let at = since.plus(self.timing.election_timeout);
                if now >= at {
                    self.step_down(m, now, Duration::ZERO);
                } else {
                    due(at);
                }
            } else {
                self.members[m].lost_majority_since = None;
            }
        }
    }

    /// Without a primary, a secondary still pulls from a reachable member whose oplog extends
    /// its own (a stepped-down primary holding the newest writes, for one).
    fn fresher_source(&self, s: usize) -> Option<usize> {
        let mine = &self.members[s].oplog;
        (0..self.members.len())
            .filter(|&o| {
                o != s
                    && self.connected(s, o)
                    && self.members[o].oplog.len() > mine.len()
                    && common_prefix(mine, &self.members[o].oplog) == mine.len()
            })
            .max_by_key(|&o| self.members[o].oplog.len())
    }

    fn replicate(&mut self, now: PlatformTime, due: &mut impl FnMut(PlatformTime)) {
        for s in 0..self.members.len() {
            if !self.members[s].up || self.members[s].primary {
                continue;
            }
            let source = match self.primary_for(s) {
                Some(p) => {
                    let p_term = self.members[p].term;
                    let sec = &mut self.members[s];
                    sec.last_contact = now;
                    sec.term = sec.term.max(p_term);
                    let common = common_prefix(&self.members[s].oplog, &self.members[p].oplog);
                    if common < self.members[s].oplog.len() {
                        self.roll_back(s, common, now);
                    }
                    p
                }
                None => match self.fresher_source(s) {
                    Some(o) => o,
                    None => continue,
                },
            };
            let lag = self.members[s].lag
                + if self.regions[s] == self.regions[source] {
                    Duration::ZERO
                } else {
                    self.timing.cross_region_lag
                };
            let start = self.members[s].oplog.len();
            let mut batch = Vec::new();
            for e in &self.members[source].oplog[start..] {
                let at = e.wall.plus(lag);
                if at <= now {
                    batch.push(e.clone());
                } else {
                    due(at);
                    break;
                }
            }
            let sec = &mut self.members[s];
            for e in batch {
                sec.store.apply(&e);
                sec.oplog.push(e);
            }
        }
    }

    fn roll_back(&mut self, s: usize, common: usize, now: PlatformTime) {
        let sec = &mut self.members[s];
        let removed = sec.oplog.split_off(common);
        sec.store = Store::rebuild(&sec.oplog);
        let inserted = removed
            .iter()
            .flat_map(|e| e.ops.iter())
            .filter_map(|op| match op {
                Op::Insert { ns, doc } => Some((ns.clone(), doc.clone())),
                _ => None,
            })
            .collect();
        let host = self.config.members[s].host.clone();
        tracing::info!(set = %self.name, member = %host, entries = removed.len(), "rollback of unreplicated writes");
        self.rollbacks.push(Rollback {
            host,
            at: now,
            inserted,
            entries: removed.len(),
        });
    }

    fn complete_election(&mut self, now: PlatformTime, due: &mut impl FnMut(PlatformTime)) {
        let Some(pending) = self.pending else { return };
        if now < pending.at {
            due(pending.at);
            return;
        }
        self.pending = None;
        let c = pending.candidate;
        if !self.electable(c, now)
            || self.members[c].primary
            || self.reachable_voters(c) < self.majority()
        {
            return;
        }
        // A takeover or handoff candidate first catches up from the outgoing primary, which
        // stopped taking writes when it learned of the election.
        if let Some(p) = self.primary_for(c)
            && matches!(
                pending.reason,
                ElectionReason::PriorityTakeover | ElectionReason::StepDownHandoff
            )
            && common_prefix(&self.members[c].oplog, &self.members[p].oplog)
                == self.members[c].oplog.len()
        {
            let start = self.members[c].oplog.len();
            let missing: Vec<Entry> = self.members[p].oplog[start..].to_vec();
            let cand = &mut self.members[c];
            for e in missing {
                cand.store.apply(&e);
                cand.oplog.push(e);
            }
        }
        // Voters refuse a candidate whose oplog is behind theirs.
        let mine = self.members[c].last_optime();
        let behind = (0..self.members.len()).any(|o| {
            o != c
                && self.connected(c, o)
                && self.config.members[o].votes > 0
                && self.members[o].last_optime() > mine
        });
        if behind {
            return;
        }
        let term = (0..self.members.len())
            .filter(|&o| self.connected(c, o))
            .map(|o| self.members[o].term)
            .max()
            .unwrap_or(0)
            + 1;
        for o in 0..self.members.len() {
            if self.connected(c, o) {
                let jitter = draw(&mut self.rng, self.timing.election_jitter);
                let mem = &mut self.members[o];
                mem.term = term;
                mem.last_contact = now;
                mem.jitter = jitter;
                mem.takeover_since = None;
                if o != c && mem.primary {
                    mem.primary = false;
                    mem.stepping_down = false;
                }
            }
        }
        let ts = self.timestamp(now, self.next_seq);
        let cand = &mut self.members[c];
        cand.primary = true;
        cand.stepping_down = false;
        cand.lost_majority_since = None;
        cand.election_time = Some((now, ts));
        let host = self.config.members[c].host.clone();
        tracing::info!(set = %self.name, member = %host, term, reason = ?pending.reason, at = %now, "elected primary");
        self.elections.push(Election {
            term,
            host,
            region: self.regions[c].clone(),
            at: now,
            reason: pending.reason,
        });
        self.bump_all();
    }

    fn start_elections(&mut self, now: PlatformTime, due: &mut impl FnMut(PlatformTime)) {
        if self.pending.is_some() {
            return;
        }
        // Priority takeover: a caught-up member with a higher priority than its primary's.
        for s in 0..self.members.len() {
            let Some(p) = self.primary_for(s) else {
                self.members[s].takeover_since = None;
                continue;
            };
            let fresh = self.members[s].last_wall().plus(Duration::from_secs(2))
                >= self.members[p].last_wall();
            if p == s || !self.electable(s, now) || self.priority(s) <= self.priority(p) || !fresh {
                self.members[s].takeover_since = None;
                continue;
            }
            let better = (0..self.members.len()).any(|o| {
                o != s
                    && self.primary_for(o) == Some(p)
                    && self.electable(o, now)
                    && self.priority(o) > self.priority(s)
            });
            if better {
                continue;
            }
            let since = *self.members[s].takeover_since.get_or_insert(now);
            let mut at = since.plus(self.timing.priority_takeover_delay);
            if let Some(back) = self.members[s].back_at {
                at = at.max(back.plus(self.rejoin_settle));
            }
            if now >= at {
                self.members[s].takeover_since = None;
                self.pending = Some(PendingElection {
                    candidate: s,
                    at: now.plus(self.timing.election_round),
                    reason: ElectionReason::PriorityTakeover,
                });
                due(now.plus(self.timing.election_round));
                return;
            }
            due(at);
        }
        // Timeout elections: secondaries that heard from no primary for the election timeout.
        for s in 0..self.members.len() {
            let mem = &self.members[s];
            if !mem.up || mem.primary || self.primary_for(s).is_some() {
                continue;
            }
            let at = mem
                .last_contact
                .plus(self.timing.election_timeout + mem.jitter);
            if now < at {
                due(at);
                continue;
            }
            let jitter = draw(&mut self.rng, self.timing.election_jitter);
            self.members[s].last_contact = now;
            self.members[s].jitter = jitter;
            due(now.plus(self.timing.election_timeout + jitter));
            if !self.electable(s, now) || self.reachable_voters(s) < self.majority() {
                continue;
            }
            if let Some(c) = self.best_candidate(s, now, |_| true) {
                self.pending = Some(PendingElection {
                    candidate: c,
                    at: now.plus(self.timing.election_round),
                    reason: ElectionReason::Timeout,
                });
                due(now.plus(self.timing.election_round));
                return;
            }
        }
    }

    /// Applies a validated new configuration (priorities, votes, tags).
    pub(crate) fn reconfigure(&mut self, version: i32, members: Vec<MemberConfig>) {
        self.config.version = version;
        self.config.members = members;
        self.bump_all();
    }
}

fn draw(rng: &mut ChaCha8Rng, max: Duration) -> Duration {
    let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    if max_us == 0 {
        Duration::ZERO
    } else {
        Duration::from_micros(rng.random_range(0..=max_us))
    }
}

/// Length of the longest common prefix of two oplogs (entries are equal iff optimes are).
fn common_prefix(a: &[Entry], b: &[Entry]) -> usize {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0;
    }
    if a[n - 1].optime == b[n - 1].optime {
        return n;
    }
    let mut k = n;
    while k > 0 && a[k - 1].optime != b[k - 1].optime {
        k -= 1;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::spec::MemberSpec;

    fn set(priorities: &[f64]) -> SetState {
        let spec = ReplicaSetSpec {
            name: "rs0".into(),
            members: priorities
                .iter()
                .map(|p| MemberSpec::new("us-west1", *p))
                .collect(),
            seed: 7,
            timing: Timing::default(),
        };
        let hosts: Vec<String> = (0..priorities.len())
            .map(|i| format!("127.0.0.1:{}", 40_000 + i))
            .collect();
        SetState::new(&spec, &hosts, PlatformTime::ZERO, 1_700_000_000)
    }

    fn at(ms: u64) -> PlatformTime {
        PlatformTime::from_offset(Duration::from_millis(ms))
    }

    /// Ticks every 10 ms of platform time from `from` to `end`.
    fn run(s: &mut SetState, from: u64, end: u64) {
        let mut ms = from;
        while ms <= end {
            s.tick(at(ms));
            ms += 10;
        }
    }

    fn insert(s: &mut SetState, m: usize, now: PlatformTime, id: i32) -> OpTime {
        s.append(
            m,
            now,
            vec![Op::Insert {
                ns: "db.c".into(),
                doc: bson::doc! {"_id": id},
            }],
            None,
        )
    }

    #[test]
    fn initiates_with_the_highest_priority_member() {
        let mut s = set(&[1.0, 2.0, 0.0]);
        run(&mut s, 0, 1_000);
        assert_eq!(s.true_primary(), Some(1));
        assert_eq!(s.elections.len(), 1);
        assert_eq!(s.elections[0].reason, ElectionReason::Initiate);
    }

    #[test]
    fn majority_commit_needs_replication_and_rollback_discards_the_rest() {
        let mut s = set(&[2.0, 1.0, 1.0]);
        run(&mut s, 0, 1_000);
        let committed = insert(&mut s, 0, at(1_000), 1);
        assert!(!s.is_committed(0, committed).expect("primary"));
        run(&mut s, 1_010, 1_100);
        assert!(s.is_committed(0, committed).expect("primary"));

        s.members[0].partitioned = true;
        let lost = insert(&mut s, 0, at(1_200), 2);
        run(&mut s, 1_200, 20_000);
        let primary = s.true_primary().expect("a new primary");
        assert_ne!(primary, 0, "the partitioned member cannot stay primary");
        assert!(
            s.elections
                .iter()
                .any(|e| e.reason == ElectionReason::Timeout)
        );
        assert!(s.members[0].has(lost));

        s.members[0].partitioned = false;
        run(&mut s, 20_010, 21_000);
        assert!(!s.members[0].has(lost));
        assert!(s.members[0].has(committed));
        assert_eq!(s.rollbacks.len(), 1);
        assert_eq!(
            s.rollbacks[0].inserted,
            vec![("db.c".to_owned(), bson::doc! {"_id": 2})]
        );
    }

    #[test]
    fn priority_zero_never_wins_and_takeover_moves_to_higher_priority() {
        let mut s = set(&[1.0, 1.0, 0.0]);
        run(&mut s, 0, 1_000);
        assert_eq!(s.true_primary(), Some(0));
        let mut members = s.config.members.clone();
        members[1].priority = 5.0;
        s.reconfigure(2, members);
        // As MongoDB schedules it: one election timeout (10 s) after it sees the lower primary.
        run(&mut s, 1_010, 10_900);
        assert_eq!(s.true_primary(), Some(0), "no takeover before its delay");
        run(&mut s, 10_910, 15_000);
        assert_eq!(s.true_primary(), Some(1));
        assert_eq!(
            s.elections.last().map(|e| e.reason),
            Some(ElectionReason::PriorityTakeover)
        );

        let mut s = set(&[1.0, 0.0, 0.0]);
        run(&mut s, 0, 1_000);
        assert_eq!(s.true_primary(), Some(0));
        s.kill(0, at(1_000));
        run(&mut s, 1_010, 60_000);
        assert_eq!(
            s.true_primary(),
            None,
            "priority-0 members never become primary"
        );
    }

    #[test]
    fn a_member_back_from_a_cut_takes_over_only_once_its_rejoin_settle_has_passed() {
        let mut s = set(&[3.0, 1.0, 1.0]);
        s.rejoin_settle = Duration::from_secs(60);
        run(&mut s, 0, 1_000);
        assert_eq!(s.true_primary(), Some(0));
        s.members[0].partitioned = true;
        run(&mut s, 1_010, 30_000);
        let other = s.true_primary().expect("the rest elect a primary");
        assert_ne!(other, 0);
        s.members[0].partitioned = false;
        s.members[0].last_contact = at(30_000);
        s.members[0].back_at = Some(at(30_000));
        run(&mut s, 30_010, 89_000);
        assert_eq!(
            s.true_primary(),
            Some(other),
            "no takeover within 60 s of coming back, though its 10 s delay has passed"
        );
        run(&mut s, 89_010, 110_000);
        assert_eq!(s.true_primary(), Some(0));
        assert_eq!(
            s.elections.last().map(|e| e.reason),
            Some(ElectionReason::PriorityTakeover)
        );
    }

    #[test]
    fn step_down_hands_off_to_the_highest_priority_caught_up_member_and_freezes_the_old_one() {
        let mut s = set(&[3.0, 1.0, 2.0]);
        run(&mut s, 0, 1_000);
        assert_eq!(s.true_primary(), Some(0));
        insert(&mut s, 0, at(1_000), 1);
        run(&mut s, 1_010, 1_500);
        assert_eq!(s.caught_up_secondary(0, at(1_500)).map(|_| ()), Some(()));
        s.step_down(0, at(1_500), Duration::from_secs(60));
        s.hand_off(0, at(1_500));
        run(&mut s, 1_510, 5_000);
        assert_eq!(
            s.true_primary(),
            Some(2),
            "priority 2.0 beats 1.0 among the caught-up"
        );
        assert_eq!(
            s.elections.last().map(|e| e.reason),
            Some(ElectionReason::StepDownHandoff)
        );
        assert_eq!(s.members[2].term, 2);
        // Frozen for 60 s: the priority-3 member cannot take over before that.
        run(&mut s, 5_010, 50_000);
        assert_eq!(s.true_primary(), Some(2));
        run(&mut s, 50_010, 80_000);
        assert_eq!(
            s.true_primary(),
            Some(0),
            "priority takeover once the freeze ends (and its delay has passed)"
        );
    }

    #[test]
    fn a_frozen_member_does_not_stand_for_election() {
        let mut s = set(&[3.0, 2.0, 1.0]);
        run(&mut s, 0, 1_000);
        s.members[1].frozen_until = at(100_000);
        s.kill(0, at(1_000));
        run(&mut s, 1_010, 30_000);
        assert_eq!(
            s.true_primary(),
            Some(2),
            "the frozen priority-2 member is passed over"
        );
    }
}
