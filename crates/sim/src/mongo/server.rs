//! The running replica set: one loopback listener per member, the supervisor task that drives
//! the model in platform time, and the control API tests and the embedded platform use.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use bson::Document;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::commands::{self, Outcome};
use super::engine::{Election, MemberState, Rollback, SetState};
use super::error::Error;
use super::spec::ReplicaSetSpec;
use super::wire;
use firedrill_core::clock::{Clock, PlatformTime};

/// An open cursor: the documents a `find` or `aggregate` has not returned yet.
pub(crate) struct Cursor {
    pub member: usize,
    pub ns: String,
    pub docs: VecDeque<Document>,
}

/// What `serverStatus` counts for one member: its connections and its operations.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub current: AtomicI64,
    pub total_created: AtomicI64,
    pub insert: AtomicI64,
    pub query: AtomicI64,
    pub update: AtomicI64,
    pub delete: AtomicI64,
    pub getmore: AtomicI64,
    pub command: AtomicI64,
    /// Streaming hellos held until the topology changes (serverStatus
    /// `connections.awaitingTopologyChanges`).
    pub awaiting_topology: AtomicI64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicI64, n: i64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicI64) -> i64 {
        counter.load(Ordering::Relaxed)
    }
}

/// State shared by the listeners, the connections, the supervisor and the handle.
pub(crate) struct Shared {
    /// Per member, in `_id` order.
    pub counters: Vec<Counters>,
    pub clock: Clock,
    state: Mutex<SetState>,
    changed: watch::Sender<u64>,
    cursors: Mutex<HashMap<i64, Cursor>>,
    next_cursor: AtomicI64,
    next_connection: AtomicI64,
    listeners: Mutex<Vec<Option<JoinHandle<()>>>>,
    ports: Vec<u16>,
    /// The address each member is reached at: its own port, or a proxy in front of it.
    hosts: Vec<String>,
    name: String,
}

/// Wall time a member back from a cut waits at least before a priority takeover: the drivers'
/// minHeartbeatFrequencyMS (500 ms) and a margin. See `SetState::rejoin_settle`.
const REJOIN_SETTLE_WALL: Duration = Duration::from_millis(600);

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the model as consistent as the last completed
    // statement; keep serving rather than cascade the panic into every connection.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SetState> {
        relock(&self.state)
    }

    /// Wakes every waiter (hello streams, write concerns, the supervisor).
    pub(crate) fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Re-evaluates `check` on every change until it yields a value or `deadline` passes.
    pub(crate) async fn wait_for<T>(
        &self,
        deadline: PlatformTime,
        mut check: impl FnMut(&mut SetState, PlatformTime) -> Option<T>,
    ) -> Option<T> {
        let mut rx = self.changed.subscribe();
        let expired = self.clock.sleep_until(deadline);
        tokio::pin!(expired);
        loop {
            rx.borrow_and_update();
            let now = self.clock.now();
            if let Some(v) = check(&mut self.lock(), now) {
                return Some(v);
            }
            if now >= deadline {
                return None;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return None },
                () = &mut expired => {}
            }
        }
    }

    pub(crate) fn open_cursor(&self, cursor: Cursor) -> i64 {
        let id = self.next_cursor.fetch_add(1, Ordering::Relaxed);
        relock(&self.cursors).insert(id, cursor);
        id
    }

    /// Takes up to `batch` documents; `None` when the cursor does not exist.
    pub(crate) fn take_from_cursor(
        &self,
        id: i64,
        batch: usize,
    ) -> Option<(String, Vec<Document>, bool)> {
        let mut cursors = relock(&self.cursors);
        let cursor = cursors.get_mut(&id)?;
        let n = batch.min(cursor.docs.len());
        let docs: Vec<Document> = cursor.docs.drain(..n).collect();
        let ns = cursor.ns.clone();
        let exhausted = cursor.docs.is_empty();
        if exhausted {
            cursors.remove(&id);
        }
        Some((ns, docs, exhausted))
    }

    pub(crate) fn close_cursor(&self, id: i64) -> bool {
        relock(&self.cursors).remove(&id).is_some()
    }

    /// Marks member `m` down and closes its port and every connection to it. Returns the
    /// aborted listener task, which a caller outside that task can await to know the port is
    /// closed.
    pub(crate) fn shut_down_member(&self, m: usize) -> Option<JoinHandle<()>> {
        let now = self.clock.now();
        self.lock().kill(m, now);
        relock(&self.cursors).retain(|_, c| c.member != m);
        let task = relock(&self.listeners).get_mut(m).and_then(Option::take);
        if let Some(task) = &task {
            task.abort();
        }
        tracing::info!(set = %self.name, member = m, "member shut down");
        self.notify();
        task
    }
}

/// A running embedded replica set. Dropping it stops every member.
pub struct ReplicaSet {
    shared: Arc<Shared>,
    supervisor: JoinHandle<()>,
    heartbeats: Vec<JoinHandle<()>>,
}

/// A replica set whose members' ports are bound but which does not run yet: the moment to
/// put a proxy in front of a member ([`Bound::advertise`]), since the proxy needs the
/// member's port and the member's configuration names the proxy.
pub struct Bound {
    spec: ReplicaSetSpec,
    listeners: Vec<(TcpListener, u16)>,
    hosts: Vec<String>,
}

impl Bound {
    /// Every member's own `127.0.0.1:port`, in `_id` order (the upstream of a proxy).
    #[must_use]
    pub fn listen_addrs(&self) -> Vec<String> {
        self.listeners
            .iter()
            .map(|(_, p)| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// Names `host` (a proxy's listen address) as the address of `member` in the replica set
    /// config: clients discover it there and the other members heartbeat it there over TCP,
    /// so cutting the proxy isolates the member as a cut network path would.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`] when there is no such member.
    pub fn advertise(&mut self, member: usize, host: impl Into<String>) -> Result<(), Error> {
        let members = self.hosts.join(",");
        let slot = self
            .hosts
            .get_mut(member)
            .ok_or_else(|| Error::UnknownMember {
                set: self.spec.name.clone(),
                host: format!("member {member}"),
                members,
            })?;
        *slot = host.into();
        Ok(())
    }

    /// Starts the members and waits for the first primary.
    ///
    /// # Errors
    ///
    /// [`Error::NoPrimary`] when no primary is elected within three election timeouts.
    pub async fn start(self, clock: Clock) -> Result<ReplicaSet, Error> {
        let Bound {
            spec,
            listeners,
            hosts,
        } = self;
        let ports: Vec<u16> = listeners.iter().map(|(_, p)| *p).collect();
        let wall_origin = clock
            .wall_origin()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut state = SetState::new(&spec, &hosts, clock.now(), wall_origin);
        state.rejoin_settle = clock.to_platform(REJOIN_SETTLE_WALL);
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            counters: (0..ports.len()).map(|_| Counters::default()).collect(),
            clock,
            state: Mutex::new(state),
            changed,
            cursors: Mutex::new(HashMap::new()),
            next_cursor: AtomicI64::new(1),
            next_connection: AtomicI64::new(1),
            listeners: Mutex::new(Vec::new()),
            ports,
            hosts,
            name: spec.name.clone(),
        });
        let tasks: Vec<Option<JoinHandle<()>>> = listeners
            .into_iter()
            .enumerate()
            .map(|(m, (listener, _))| Some(tokio::spawn(accept(shared.clone(), m, listener))))
            .collect();
        *relock(&shared.listeners) = tasks;
        let heartbeats = shared
            .hosts
            .iter()
            .zip(&shared.ports)
            .enumerate()
            .filter(|(_, (host, port))| **host != format!("127.0.0.1:{port}"))
            .map(|(m, (host, _))| {
                tokio::spawn(super::heartbeat::watch(shared.clone(), m, host.clone()))
            })
            .collect();
        let supervisor = tokio::spawn(supervise(shared.clone()));
        let set = ReplicaSet {
            shared,
            supervisor,
            heartbeats,
        };
        let budget = spec.timing.election_timeout * 3 + spec.timing.election_round;
        let elected = clock
            .timeout(budget, set.wait_until(|s| s.primary.clone()))
            .await;
        match elected {
            Ok(_) => Ok(set),
            Err(_) => Err(Error::NoPrimary {
                set: spec.name,
                waited: budget,
            }),
        }
    }
}

/// Ground truth about one member.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberStatus {
    /// `127.0.0.1:port`.
    pub host: String,
    /// Its region tag.
    pub region: String,
    /// Its priority in the current configuration.
    pub priority: f64,
    /// Primary, secondary or down.
    pub state: MemberState,
    /// The term it is in.
    pub term: i64,
    /// Whether it is cut off from the other members.
    pub partitioned: bool,
    /// Whether the other members' heartbeats to its advertised address fail.
    pub link_down: bool,
    /// How many oplog entries it holds.
    pub oplog_len: usize,
    /// Whether it is holding writes while it steps down.
    pub writes_held: bool,
}

/// Ground truth about the whole set at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct SetStatus {
    /// When the status was taken.
    pub at: PlatformTime,
    /// The current primary's host (the highest-term primary that is up).
    pub primary: Option<String>,
    /// The configuration version.
    pub config_version: i32,
    /// The members in `_id` order.
    pub members: Vec<MemberStatus>,
}

impl ReplicaSet {
    /// Starts every member on its own loopback port and waits for the first primary.
    ///
    /// # Errors
    ///
    /// The spec's validation errors, [`Error::Bind`] when a port cannot be bound, and
    /// [`Error::NoPrimary`] when no primary is elected within three election timeouts.
    pub async fn start(spec: ReplicaSetSpec, clock: Clock) -> Result<Self, Error> {
        Self::bind(spec).await?.start(clock).await
    }

    /// Binds every member's loopback port without starting the set (see [`Bound`]).
    ///
    /// # Errors
    ///
    /// The spec's validation errors and [`Error::Bind`].
    pub async fn bind(spec: ReplicaSetSpec) -> Result<Bound, Error> {
        spec.validate()?;
        let mut listeners = Vec::new();
        for member in 0..spec.members.len() {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind {
                    set: spec.name.clone(),
                    member,
                    addr,
                    source,
                })?;
            let port = listener
                .local_addr()
                .map_err(|source| Error::Bind {
                    set: spec.name.clone(),
                    member,
                    addr,
                    source,
                })?
                .port();
            listeners.push((listener, port));
        }
        let hosts = listeners
            .iter()
            .map(|(_, p)| format!("127.0.0.1:{p}"))
            .collect();
        Ok(Bound {
            spec,
            listeners,
            hosts,
        })
    }

    /// The replica set's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The clock the set runs on.
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// Every member's address as the replica set config names it (its `127.0.0.1:port`, or
    /// the proxy it was advertised behind), in `_id` order.
    #[must_use]
    pub fn hosts(&self) -> Vec<String> {
        self.shared.hosts.clone()
    }

    /// Every member's own `127.0.0.1:port`, in `_id` order.
    #[must_use]
    pub fn listen_addrs(&self) -> Vec<String> {
        self.shared
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// `mongodb://127.0.0.1:p1,127.0.0.1:p2,.../?replicaSet=NAME`.
    #[must_use]
    pub fn connection_string(&self) -> String {
        format!(
            "mongodb://{}/?replicaSet={}",
            self.hosts().join(","),
            self.shared.name
        )
    }

    /// A URI that talks to one member only (`directConnection=true`).
    #[must_use]
    pub fn direct_connection_string(&self, host: &str) -> String {
        format!("mongodb://{host}/?directConnection=true")
    }

    /// Ground truth now.
    #[must_use]
    pub fn status(&self) -> SetStatus {
        let now = self.shared.clock.now();
        status_of(&self.shared.lock(), now)
    }

    /// The current primary's host, as ground truth.
    #[must_use]
    pub fn primary(&self) -> Option<String> {
        self.status().primary
    }

    /// Every election won so far, in order, with its platform instant.
    #[must_use]
    pub fn elections(&self) -> Vec<Election> {
        self.shared.lock().elections.clone()
    }

    /// Every rollback so far, with the documents it discarded.
    #[must_use]
    pub fn rollbacks(&self) -> Vec<Rollback> {
        self.shared.lock().rollbacks.clone()
    }

    /// How many retried write statements were answered from the session table instead of
    /// being executed again.
    #[must_use]
    pub fn retries_deduplicated(&self) -> u64 {
        self.shared.lock().deduplicated
    }

    /// Waits until `check` yields a value on the ground truth. Has no deadline of its own:
    /// wrap it in `clock.timeout` at the call site.
    pub async fn wait_until<T>(&self, mut check: impl FnMut(&SetStatus) -> Option<T>) -> T {
        let mut rx = self.shared.changed.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(v) = check(&self.status()) {
                return v;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as `self`; this is unreachable but must not spin.
                std::future::pending::<()>().await;
            }
        }
    }

    fn index_of(&self, host: &str) -> Result<usize, Error> {
        let own = self.listen_addrs();
        self.hosts()
            .iter()
            .zip(&own)
            .position(|(h, o)| h == host || o == host)
            .ok_or_else(|| Error::UnknownMember {
                set: self.shared.name.clone(),
                host: host.to_owned(),
                members: self.hosts().join(","),
            })
    }

    /// Cuts `host` off from the other members: heartbeats and replication stop both ways,
    /// while clients can still connect to it.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`].
    pub fn partition(&self, host: &str) -> Result<(), Error> {
        self.set_partitioned(host, true)
    }

    /// Undoes [`ReplicaSet::partition`].
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`].
    pub fn heal(&self, host: &str) -> Result<(), Error> {
        self.set_partitioned(host, false)
    }

    fn set_partitioned(&self, host: &str, partitioned: bool) -> Result<(), Error> {
        let m = self.index_of(host)?;
        {
            let mut st = self.shared.lock();
            st.members[m].partitioned = partitioned;
            st.bump_all();
        }
        tracing::info!(set = %self.shared.name, member = %host, partitioned, "partition changed");
        self.shared.notify();
        Ok(())
    }

    /// Shuts `host` down: it stops answering, and when this returns its port is closed.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`], or [`Error::MemberState`] when it is already down.
    pub async fn kill(&self, host: &str) -> Result<(), Error> {
        let m = self.index_of(host)?;
        if !self.shared.lock().members[m].up {
            return Err(Error::MemberState {
                set: self.shared.name.clone(),
                host: host.to_owned(),
                state: "down",
            });
        }
        if let Some(task) = self.shared.shut_down_member(m) {
            // The task was aborted; awaiting it waits until the listener is dropped.
            let _ = task.await;
        }
        Ok(())
    }

    /// Restarts a member that was shut down, on the same port, with its data.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`], [`Error::MemberState`] when it is up, and [`Error::Bind`]
    /// when the port was taken meanwhile.
    pub async fn restart(&self, host: &str) -> Result<(), Error> {
        let m = self.index_of(host)?;
        if self.shared.lock().members[m].up {
            return Err(Error::MemberState {
                set: self.shared.name.clone(),
                host: host.to_owned(),
                state: "up",
            });
        }
        self.listen_again(m).await?;
        let now = self.shared.clock.now();
        self.shared.lock().restart(m, now);
        tracing::info!(set = %self.shared.name, member = %host, "member restarted");
        self.shared.notify();
        Ok(())
    }

    /// Opens member `m`'s port again and serves it.
    async fn listen_again(&self, m: usize) -> Result<(), Error> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.shared.ports[m]));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                set: self.shared.name.clone(),
                member: m,
                addr,
                source,
            })?;
        let task = tokio::spawn(accept(self.shared.clone(), m, listener));
        if let Some(slot) = relock(&self.shared.listeners).get_mut(m) {
            *slot = Some(task);
        }
        Ok(())
    }

    /// Cuts `host` off the network, as a cloud's network cut (Atlas's outage simulation) does:
    /// its port closes, every connection to it drops and the other members lose it; the process
    /// keeps running with its data and its own view (an isolated primary steps down once it
    /// finds it has lost the majority). When this returns the port is closed.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`], or [`Error::MemberState`] when it is down.
    pub async fn isolate(&self, host: &str) -> Result<(), Error> {
        let m = self.index_of(host)?;
        {
            let mut st = self.shared.lock();
            if !st.members[m].up {
                return Err(Error::MemberState {
                    set: self.shared.name.clone(),
                    host: host.to_owned(),
                    state: "down",
                });
            }
            st.members[m].partitioned = true;
            st.bump_all();
        }
        relock(&self.shared.cursors).retain(|_, c| c.member != m);
        let task = relock(&self.shared.listeners)
            .get_mut(m)
            .and_then(Option::take);
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        tracing::info!(set = %self.shared.name, member = %host, "member cut off the network");
        self.shared.notify();
        Ok(())
    }

    /// Undoes [`ReplicaSet::isolate`]: the port opens again and the member rejoins the set
    /// (catching up, or rolling back what it alone had). A member that is not cut off is left
    /// as it is.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`], and [`Error::Bind`] when the port was taken meanwhile.
    pub async fn reconnect(&self, host: &str) -> Result<(), Error> {
        let m = self.index_of(host)?;
        let listening = relock(&self.shared.listeners)
            .get(m)
            .is_some_and(Option::is_some);
        let up = self.shared.lock().members[m].up;
        if up && !listening {
            self.listen_again(m).await?;
        }
        {
            let mut st = self.shared.lock();
            st.members[m].partitioned = false;
            st.members[m].last_contact = self.shared.clock.now();
            st.members[m].back_at = Some(self.shared.clock.now());
            st.bump_all();
        }
        tracing::info!(set = %self.shared.name, member = %host, "member back on the network");
        self.shared.notify();
        Ok(())
    }

    /// Steps the current primary down as `replSetStepDown` would (writes held until an
    /// electable secondary caught up, at most `catch_up`, then forced), keeping it ineligible
    /// for `freeze`. Returns the old primary.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] when there is no primary.
    pub async fn step_down_primary(
        &self,
        catch_up: Duration,
        freeze: Duration,
    ) -> Result<String, Error> {
        let refused = |message: String| Error::Refused {
            set: self.shared.name.clone(),
            action: "a step-down",
            message,
        };
        let primary = self
            .shared
            .lock()
            .true_primary()
            .ok_or_else(|| refused("there is no primary".into()))?;
        super::commands::step_down(&self.shared, primary, catch_up, freeze, true)
            .await
            .map_err(|e| refused(e.to_string()))?;
        Ok(self.shared.lock().host(primary).to_owned())
    }

    /// Reconfigures the members' priorities (`host` → priority; others unchanged) at the next
    /// config version, as a managed service's automation does. Returns the new version.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`], [`Error::InvalidPriority`], and [`Error::NoElectableMember`]
    /// when no member could be elected afterwards.
    pub fn set_priorities(&self, priorities: &[(String, f64)]) -> Result<i32, Error> {
        let indexes = priorities
            .iter()
            .map(|(host, p)| self.index_of(host).map(|m| (m, *p)))
            .collect::<Result<Vec<_>, _>>()?;
        let version = {
            let mut st = self.shared.lock();
            let mut members = st.config.members.clone();
            for (m, priority) in indexes {
                if !(0.0..=1000.0).contains(&priority) {
                    return Err(Error::InvalidPriority {
                        set: self.shared.name.clone(),
                        index: m,
                        priority,
                    });
                }
                members[m].priority = priority;
            }
            if members.iter().all(|c| c.priority <= 0.0 || c.votes == 0) {
                return Err(Error::NoElectableMember {
                    set: self.shared.name.clone(),
                });
            }
            let version = st.config.version.saturating_add(1);
            st.reconfigure(version, members);
            version
        };
        tracing::info!(set = %self.shared.name, version, "priorities reconfigured");
        self.shared.notify();
        Ok(version)
    }
}

impl Drop for ReplicaSet {
    fn drop(&mut self) {
        self.supervisor.abort();
        for task in &self.heartbeats {
            task.abort();
        }
        for task in relock(&self.shared.listeners)
            .iter_mut()
            .filter_map(Option::take)
        {
            task.abort();
        }
    }
}

fn status_of(st: &SetState, now: PlatformTime) -> SetStatus {
    SetStatus {
        at: now,
        primary: st.true_primary().map(|p| st.host(p).to_owned()),
        config_version: st.config.version,
        members: st
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| MemberStatus {
                host: st.host(i).to_owned(),
                region: st.regions[i].clone(),
                priority: st.priority(i),
                state: m.state(),
                term: m.term,
                partitioned: m.partitioned,
                link_down: m.link_down,
                oplog_len: m.oplog.len(),
                writes_held: m.stepping_down,
            })
            .collect(),
    }
}

/// Drives the model: ticks at every change and at the next instant something is due.
async fn supervise(shared: Arc<Shared>) {
    let mut rx = shared.changed.subscribe();
    loop {
        // Mark changes seen *before* looking, so a change made during the tick wakes us again.
        rx.borrow_and_update();
        let now = shared.clock.now();
        let (changed, next) = shared.lock().tick(now);
        if changed {
            // This wakes the loop once more; that extra tick finds nothing to do.
            shared.notify();
        }
        // Without anything due, still look again after a heartbeat interval of platform time.
        let wake = next.unwrap_or(now.plus(Duration::from_secs(2))).max(now);
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            () = shared.clock.sleep_until(wake) => {}
        }
    }
}

/// Accepts connections for member `m`; aborting this task closes the port and, through the
/// join set, every connection.
async fn accept(shared: Arc<Shared>, m: usize, listener: TcpListener) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(serve(shared.clone(), m, stream, id));
                }
                Err(e) => tracing::warn!(member = m, error = %e, "accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Counts a connection as current while it lives.
struct Connected<'a>(&'a Counters);

impl<'a> Connected<'a> {
    fn new(counters: &'a Counters) -> Self {
        Counters::add(&counters.current, 1);
        Counters::add(&counters.total_created, 1);
        Self(counters)
    }
}

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        Counters::add(&self.0.current, -1);
    }
}

async fn serve(shared: Arc<Shared>, m: usize, stream: TcpStream, connection_id: i64) {
    let _connected = shared.counters.get(m).map(Connected::new);
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut response_id: i32 = 1;
    loop {
        let request = match wire::read_request(&mut reader).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(member = m, error = %e, "closing connection");
                return;
            }
        };
        let outcome = commands::run(&shared, m, connection_id, &request).await;
        match outcome {
            Outcome::Reply(reply) => {
                response_id = response_id.wrapping_add(1);
                if let Err(e) = wire::write_reply(&mut writer, response_id, &request, &reply).await
                {
                    tracing::debug!(member = m, error = %e, "closing connection");
                    return;
                }
            }
            Outcome::Close => return,
        }
    }
}
