//! The database endpoint the applications use: one TCP address per namespace that always
//! leads to that replica set's current primary, like a Kubernetes Service selecting the pod
//! labelled primary, or a managed database's primary endpoint.
//!
//! The applications reach it through a Toxiproxy link of their region (`us-west2-to-prod-1-db`),
//! so network faults between an application and its database are what users see. Connections
//! follow the primary: when it changes, open connections are closed and the driver reconnects
//! to the new one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::mongo::ReplicaSet;
use firedrill_core::clock::Clock;

/// How often the router looks for a new primary (platform time).
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// A running primary endpoint.
#[derive(Debug)]
pub struct PrimaryRouter {
    /// Its address.
    pub addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for PrimaryRouter {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl PrimaryRouter {
    /// Listens on a loopback port of its own and forwards each connection to `set`'s primary.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound.
    pub async fn start(set: Arc<ReplicaSet>, clock: Clock) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let (primary_tx, primary_rx) = watch::channel(set.primary());
        let follow = {
            let set = Arc::clone(&set);
            tokio::spawn(async move {
                let mut tick = clock.interval(FOLLOW_EVERY);
                loop {
                    tick.tick().await;
                    let now = set.primary();
                    primary_tx.send_if_modified(|p| {
                        let changed = *p != now;
                        p.clone_from(&now);
                        changed
                    });
                }
            })
        };
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let primary = primary_rx.borrow().clone();
                let Some(primary) = primary else {
                    // No primary: the connection is refused, as a Service without endpoints.
                    drop(client);
                    continue;
                };
                tokio::spawn(forward(client, primary, primary_rx.clone()));
            }
        });
        Ok(Self {
            addr,
            tasks: vec![follow, accept],
        })
    }
}

/// Pumps bytes between `client` and `primary` until either side closes or the primary changes.
async fn forward(
    mut client: TcpStream,
    primary: String,
    mut primary_rx: watch::Receiver<Option<String>>,
) {
    let Ok(mut upstream) = TcpStream::connect(&primary).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = primary_rx.wait_for(|p| p.as_deref() != Some(primary.as_str())) => {}
    }
}
