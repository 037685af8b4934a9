//! Proxies: the listener of each enabled proxy, its connections and its toxic chains.

use super::link::{CloseCmd, Link, escalate};
use super::model::{Chains, Direction, ProxyJson, ToxicJson};
use firedrill_core::clock::Clock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What every proxy of one server shares: the clock and the seed of the data path's randomness.
#[derive(Clone)]
pub struct Shared {
    /// The run's clock; every toxic delay is platform time.
    pub clock: Clock,
    /// Seed of jitter, slicer sizes and toxicity rolls (one stream per connection direction).
    pub seed: u64,
    /// Numbers connections, so each gets its own random stream.
    pub next_connection: Arc<AtomicU64>,
}

/// One proxy as the API manages it.
pub struct Proxy {
    /// Unique name.
    pub name: String,
    /// Listen address; the resolved one after listening.
    pub listen: String,
    /// Upstream address, dialled for every accepted connection.
    pub upstream: String,
    /// True while listening.
    pub enabled: bool,
    /// Toxics; sent to every connection on change.
    pub chains: watch::Sender<Arc<Chains>>,
    running: Option<Running>,
    shared: Shared,
}

struct Running {
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
    connections: Arc<Connections>,
}

/// The open connections of one running listener, so disabling the proxy can close them.
#[derive(Default)]
struct Connections {
    inner: Mutex<ConnectionsInner>,
}

#[derive(Default)]
struct ConnectionsInner {
    closed: bool,
    next: u64,
    open: HashMap<u64, watch::Sender<CloseCmd>>,
}

impl Connections {
    /// Registers a connection; `None` once the listener is stopping (the caller closes it).
    fn register(&self, close: watch::Sender<CloseCmd>) -> Option<u64> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.closed {
            return None;
        }
        inner.next += 1;
        let id = inner.next;
        inner.open.insert(id, close);
        Some(id)
    }

    fn unregister(&self, id: u64) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open
            .remove(&id);
    }

    fn close_all(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.closed = true;
        for close in inner.open.values() {
            escalate(close, CloseCmd::Abort);
        }
    }
}

impl Proxy {
    /// A proxy that is not listening yet.
    #[must_use]
    pub fn new(name: String, listen: String, upstream: String, shared: Shared) -> Self {
        let (chains, _) = watch::channel(Arc::new(Chains::default()));
        Self {
            name,
            listen,
            upstream,
            enabled: false,
            chains,
            running: None,
            shared,
        }
    }

    /// The toxics, for reading.
    #[must_use]
    pub fn toxics(&self) -> Arc<Chains> {
        self.chains.borrow().clone()
    }

    /// Replaces the toxics; every connection picks the change up.
    pub fn set_toxics(&self, chains: Chains) {
        self.chains.send_replace(Arc::new(chains));
    }

    /// The proxy's JSON with its toxics.
    pub fn with_json<R>(&self, f: impl FnOnce(ProxyJson<'_>) -> R) -> R {
        let chains = self.toxics();
        f(ProxyJson {
            name: &self.name,
            listen: &self.listen,
            upstream: &self.upstream,
            enabled: self.enabled,
            toxics: chains.iter().map(|t| ToxicJson::from(t.as_ref())).collect(),
        })
    }

    /// Starts listening (Toxiproxy's `start`); the listen address becomes the bound one.
    ///
    /// # Errors
    ///
    /// The bind error, worded like Go's `listen tcp ADDR: …`.
    pub fn start(&mut self) -> Result<(), String> {
        if self.enabled {
            return Ok(());
        }
        let bind = if self.listen.is_empty() {
            "127.0.0.1:0"
        } else {
            self.listen.as_str()
        };
        let listener = std::net::TcpListener::bind(bind)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
            .map_err(|e| format!("listen tcp {bind}: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("listen tcp {bind}: {e}"))?;
        self.listen = local.to_string();
        let (stop, stop_rx) = watch::channel(false);
        let connections = Arc::new(Connections::default());
        let accept = tokio::spawn(accept_loop(
            listener,
            stop_rx,
            self.upstream.clone(),
            self.chains.subscribe(),
            connections.clone(),
            self.shared.clone(),
        ));
        self.running = Some(Running {
            stop,
            accept,
            connections,
        });
        self.enabled = true;
        tracing::debug!(proxy = %self.name, listen = %self.listen, upstream = %self.upstream, "started proxy");
        Ok(())
    }

    /// Stops listening and closes every connection (Toxiproxy's `stop`). Returns once the
    /// listening socket is closed, so a connection attempt right after is refused.
    pub async fn stop(&mut self) {
        self.enabled = false;
        if let Some(running) = self.running.take() {
            running.stop.send_replace(true);
            if let Err(e) = running.accept.await {
                tracing::warn!(proxy = %self.name, error = %e, "accept loop ended abnormally");
            }
            running.connections.close_all();
            tracing::debug!(proxy = %self.name, "stopped proxy");
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop.send_replace(true);
            running.connections.close_all();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    upstream: String,
    chains: watch::Receiver<Arc<Chains>>,
    connections: Arc<Connections>,
    shared: Shared,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    tokio::spawn(serve(client, upstream.clone(), chains.clone(), connections.clone(), shared.clone()));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    shared.clock.sleep(shared.clock.to_platform(Duration::from_millis(10))).await;
                }
            }
        }
    }
}

/// One accepted client: dial upstream, then run both directions until the connection closes.
async fn serve(
    client: TcpStream,
    upstream: String,
    chains: watch::Receiver<Arc<Chains>>,
    connections: Arc<Connections>,
    shared: Shared,
) {
    let server = match TcpStream::connect(&upstream).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(upstream = %upstream, error = %e, "unable to open connection to upstream");
            return;
        }
    };
    // Go sets TCP_NODELAY on every connection; without it small writes wait for delayed ACKs.
    for s in [&client, &server] {
        if let Err(e) = s.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    }
    let (close, _) = watch::channel(CloseCmd::Open);
    let Some(id) = connections.register(close.clone()) else {
        return;
    };
    let n = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let client = Arc::new(client);
    let server = Arc::new(server);
    let up = Link::new(
        Direction::Upstream,
        client.clone(),
        server.clone(),
        chains.clone(),
        close.clone(),
        shared.clock,
        shared.seed ^ n.wrapping_mul(2),
    );
    let down = Link::new(
        Direction::Downstream,
        server,
        client,
        chains,
        close,
        shared.clock,
        shared.seed ^ n.wrapping_mul(2).wrapping_add(1),
    );
    let up = tokio::spawn(up.run());
    down.run().await;
    if let Err(e) = up.await {
        tracing::warn!(error = %e, "upstream link ended abnormally");
    }
    connections.unregister(id);
}
