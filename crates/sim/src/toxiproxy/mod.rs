//! An embedded Toxiproxy: a TCP proxy whose HTTP API is wire-compatible with Toxiproxy 2.x
//! (same routes, JSON shapes, status codes and error bodies) and which implements the
//! latency, bandwidth, slow_close, timeout, reset_peer, slicer and limit_data toxics.
//!
//! Toxic delays are platform durations slept on the run's [`Clock`], so a 300 ms latency takes
//! 3 ms of wall time on `Clock::scaled(100.0)`. Where this server and the real one differ, the
//! real one is right; the known differences are listed in [`ToxiproxyServer`].

mod api;
mod link;
mod model;
mod proxy;

pub use api::VERSION;
pub use model::{Direction, ToxicKind};

use api::Registry;
use firedrill_core::clock::Clock;
use proxy::Shared;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

/// Failures of the embedded Toxiproxy server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API address could not be bound.
    #[error(
        "cannot listen for the Toxiproxy API on {addr}: {source} (hint: use 127.0.0.1:0 to get a free port)"
    )]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The bind error.
        source: io::Error,
    },
    /// The API server stopped with an I/O error.
    #[error("the Toxiproxy API server on {addr} failed: {source}")]
    Serve {
        /// The API address.
        addr: SocketAddr,
        /// The server error.
        source: io::Error,
    },
    /// The API server task panicked.
    #[error("the Toxiproxy API server on {addr} panicked: {detail}")]
    Panicked {
        /// The API address.
        addr: SocketAddr,
        /// The panic or cancellation message.
        detail: String,
    },
    /// A proxy could not be created through [`ToxiproxyServer::create_proxy`].
    #[error("cannot create proxy {proxy:?} on the embedded Toxiproxy at {url}: {reason}")]
    CreateProxy {
        /// The proxy name.
        proxy: String,
        /// The API URL.
        url: String,
        /// Why (already exists, listen failed).
        reason: String,
    },
}

/// A running embedded Toxiproxy. Dropping it stops the API and every proxy; prefer
/// [`ToxiproxyServer::shutdown`], which waits until everything is closed.
///
/// Known differences from the real server: an empty `listen` binds `127.0.0.1:0` (Toxiproxy
/// binds all interfaces); Go's decoding error texts are imitated, not identical, for type errors
/// inside `POST /populate`; only the toxics listed in [`ToxicKind`] exist.
pub struct ToxiproxyServer {
    addr: SocketAddr,
    registry: Arc<Mutex<Registry>>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<io::Result<()>>>,
}

/// Starts an embedded Toxiproxy whose API listens on `listen` (use `127.0.0.1:0`).
///
/// # Errors
///
/// [`Error::Bind`] when the API address cannot be bound.
pub async fn start(listen: SocketAddr, clock: Clock) -> Result<ToxiproxyServer, Error> {
    ToxiproxyServer::start(listen, clock, 0).await
}

impl ToxiproxyServer {
    /// Starts a server; `seed` drives jitter, slicer sizes and toxicity rolls.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when the API address cannot be bound.
    pub async fn start(listen: SocketAddr, clock: Clock, seed: u64) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: listen,
            source,
        })?;
        let registry = Arc::new(Mutex::new(Registry {
            proxies: BTreeMap::new(),
            shared: Shared {
                clock,
                seed,
                next_connection: Arc::new(AtomicU64::new(0)),
            },
            revision: 0,
        }));
        let (shutdown, mut stop) = watch::channel(false);
        let app = api::router(registry.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // An error means the handle is gone, which is a shutdown too.
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        });
        tracing::debug!(%addr, "embedded Toxiproxy listening");
        Ok(Self {
            addr,
            registry,
            shutdown,
            task: Some(task),
        })
    }

    /// The API address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, e.g. `http://127.0.0.1:8474`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates and starts a proxy without going through HTTP (for wiring the embedded platform).
    /// Returns the resolved listen address.
    ///
    /// # Errors
    ///
    /// [`Error::CreateProxy`] when the name is taken or `listen` cannot be bound.
    pub async fn create_proxy(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
    ) -> Result<SocketAddr, Error> {
        let failed = |reason: String| Error::CreateProxy {
            proxy: name.to_owned(),
            url: self.url(),
            reason,
        };
        let mut registry = self.registry.lock().await;
        if registry.proxies.contains_key(name) {
            return Err(failed("proxy already exists".to_owned()));
        }
        let mut proxy = proxy::Proxy::new(
            name.to_owned(),
            listen.to_owned(),
            upstream.to_owned(),
            registry.shared.clone(),
        );
        proxy.start().map_err(failed)?;
        let addr = proxy
            .listen
            .parse()
            .map_err(|e: std::net::AddrParseError| failed(e.to_string()))?;
        registry.proxies.insert(name.to_owned(), proxy);
        Ok(addr)
    }

    /// Stops the API (letting requests in progress finish) and every proxy.
    ///
    /// # Errors
    ///
    /// [`Error::Serve`] or [`Error::Panicked`] when the API server had failed.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.shutdown.send_replace(true);
        let result = match self.task.take() {
            Some(task) => match task.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(source)) => Err(Error::Serve {
                    addr: self.addr,
                    source,
                }),
                Err(e) => Err(Error::Panicked {
                    addr: self.addr,
                    detail: e.to_string(),
                }),
            },
            None => Ok(()),
        };
        let mut registry = self.registry.lock().await;
        for proxy in registry.proxies.values_mut() {
            proxy.stop().await;
        }
        registry.proxies.clear();
        result
    }
}

impl Drop for ToxiproxyServer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}
