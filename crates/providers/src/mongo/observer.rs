//! The topology observer: one direct connection per member, each polled with `hello` at a short
//! platform-time interval (independent of the driver's 500 ms minimum heartbeat), turned into
//! milestones stamped at the observation: `primary lost` when the primary stops saying it is
//! one, `new primary elected in <region>` when another member says it is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::future::IntoFuture as _;

use bson::doc;
use tokio::task::JoinHandle;

use super::{Hello, Member, MongoError, Target};
use firedrill_core::clock::{Clock, PlatformTime};

/// The shortest wall time between two polls of one member.
const WALL_FLOOR: Duration = Duration::from_millis(10);

/// Called with a milestone's name, its instant and its source (`mongo <database> <host>`).
pub type OnMilestone = Arc<dyn Fn(&str, PlatformTime, &str) + Send + Sync>;

/// Milestone: no member reports itself primary any more.
pub const PRIMARY_LOST: &str = firedrill_core::names::PRIMARY_LOST;
/// Milestone prefix: `new primary elected in <region>`.
pub const NEW_PRIMARY: &str = firedrill_core::names::NEW_PRIMARY_ELECTED_IN;

/// An election the observer saw.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The new primary.
    pub host: String,
    /// Its region, when known.
    pub region: Option<String>,
    /// When a probe first saw it primary.
    pub at: PlatformTime,
}

#[derive(Debug, Default)]
struct State {
    /// Latest answer per member: whether it says it is primary.
    latest: BTreeMap<String, bool>,
    primary: Option<String>,
    lost_at: Option<PlatformTime>,
    elections: Vec<Observed>,
}

/// A running observer; stops when dropped.
#[derive(Debug)]
pub struct Observer {
    tasks: Vec<JoinHandle<()>>,
    state: Arc<Mutex<State>>,
}

impl Drop for Observer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match state.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Observer {
    /// Starts polling every member every `interval` of platform time.
    ///
    /// # Errors
    ///
    /// [`MongoError::Uri`] when a direct client cannot be built.
    pub async fn spawn(
        target: &Target,
        members: &[Member],
        interval: Duration,
        clock: Clock,
        on_milestone: OnMilestone,
    ) -> Result<Self, MongoError> {
        let state = Arc::new(Mutex::new(State::default()));
        let mut tasks = Vec::new();
        // The observer's own first look, so the first milestone is a change, not the start.
        if let Ok(p) = target.primary().await {
            lock(&state).primary = Some(p);
        }
        for m in members {
            let mut client = target.direct(&m.host).await?;
            let target = target.clone();
            let host = m.host.clone();
            let region = m.region.clone();
            let state = Arc::clone(&state);
            let on = Arc::clone(&on_milestone);
            let source = format!("mongo {} {}", target.database, host);
            // A member that does not answer within a few ticks (or 250 ms wall, so a
            // compressed clock does not turn driver latency into outages) is not primary.
            let patience = clock.to_wall(interval * 4).max(Duration::from_millis(250));
            tasks.push(tokio::spawn(async move {
                // At most one round per WALL_FLOOR, so a compressed clock does not turn the
                // observer into the busiest client of the replica set.
                let wall_tick = clock.to_wall(interval).max(WALL_FLOOR);
                let mut ticks = tokio::time::interval(wall_tick);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut stale = false;
                loop {
                    ticks.tick().await;
                    // After a failure, a member whose port is closed (killed) is seen at once
                    // by a plain connect; the driver would keep selecting it until its server
                    // selection timeout. Once it answers again, a fresh client checks at once
                    // where the old one would wait for its next heartbeat (500 ms wall or more).
                    let reachable = !stale || connects(&host, patience).await;
                    if reachable
                        && stale
                        && let Ok(fresh) = target.direct(&host).await
                    {
                        client = fresh;
                    }
                    let answer = if reachable {
                        let admin = client.database("admin");
                        let hello = admin.run_command(doc! {"hello": 1}).into_future();
                        tokio::pin!(hello);
                        match tokio::time::timeout(wall_tick, &mut hello).await {
                            Ok(answer) => answer.ok(),
                            // Slow: if the port is closed the member is down, whatever the
                            // driver is still waiting for.
                            Err(_) if !connects(&host, patience).await => None,
                            Err(_) => tokio::time::timeout(patience, hello)
                                .await
                                .ok()
                                .and_then(Result::ok),
                        }
                    } else {
                        None
                    };
                    stale = answer.is_none();
                    let is_primary = answer.is_some_and(|d| Hello::from_doc(&d).is_primary);
                    let at = clock.now();
                    observe(
                        &state,
                        &host,
                        region.as_deref(),
                        is_primary,
                        at,
                        &on,
                        &source,
                    );
                }
            }));
        }
        Ok(Self { tasks, state })
    }

    /// The elections seen so far.
    #[must_use]
    pub fn elections(&self) -> Vec<Observed> {
        lock(&self.state).elections.clone()
    }

    /// When the primary was last seen lost.
    #[must_use]
    pub fn lost_at(&self) -> Option<PlatformTime> {
        lock(&self.state).lost_at
    }

    /// The primary as last observed.
    #[must_use]
    pub fn primary(&self) -> Option<String> {
        lock(&self.state).primary.clone()
    }
}

/// Whether a TCP connection to `host` opens within `patience` (wall time).
async fn connects(host: &str, patience: Duration) -> bool {
    matches!(
        tokio::time::timeout(patience, tokio::net::TcpStream::connect(host)).await,
        Ok(Ok(_))
    )
}

fn observe(
    state: &Mutex<State>,
    host: &str,
    region: Option<&str>,
    is_primary: bool,
    at: PlatformTime,
    on: &OnMilestone,
    source: &str,
) {
    let mut fire = Vec::new();
    {
        let mut s = lock(state);
        s.latest.insert(host.to_owned(), is_primary);
        // Two members may say primary (an isolated old one has not noticed yet): the newcomer
        // is believed only once the old one stops, which records `primary lost` first.
        let current = s.primary.clone();
        match (current.as_deref(), is_primary) {
            (Some(p), false) if p == host => {
                s.primary = None;
                s.lost_at = Some(at);
                fire.push(PRIMARY_LOST.to_owned());
            }
            (None, true) => {
                s.primary = Some(host.to_owned());
                s.elections.push(Observed {
                    host: host.to_owned(),
                    region: region.map(str::to_owned),
                    at,
                });
                fire.push(format!(
                    "{NEW_PRIMARY}{}",
                    region.unwrap_or("an unknown region")
                ));
            }
            _ => {}
        }
    }
    for name in fire {
        on(&name, at, source);
    }
}
