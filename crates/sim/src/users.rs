//! Synthetic users: the steady traffic of a production estate, so the metrics a Prometheus
//! scrapes from the embedded platform have something to judge. One user per namespace checks
//! out through the front door (`GET /{namespace}/orders`: a write and a read of its database)
//! every `every` of platform time, one request at a time, as a real user waits for an answer.

use std::time::Duration;

use firedrill_core::clock::Clock;

/// How often each namespace's user checks out by default (platform time).
pub const EVERY: Duration = Duration::from_secs(5);

/// The running users; they stop when this is dropped.
#[derive(Debug)]
pub struct Users {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Users {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Users {
    /// Starts one user per namespace against `front_door` (its base URL).
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn start(
        front_door: &str,
        namespaces: &[&str],
        every: Duration,
        clock: Clock,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder().no_proxy().build()?;
        let tasks = namespaces
            .iter()
            .map(|namespace| {
                let url = format!("{front_door}/{namespace}/orders");
                let client = client.clone();
                tokio::spawn(async move {
                    let mut tick = clock.interval(every);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tick.tick().await;
                        // The answer is counted by the front door; the user only waits for it.
                        let _ = clock
                            .timeout(crate::app::BACKEND_TIMEOUT, client.get(&url).send())
                            .await;
                    }
                })
            })
            .collect();
        Ok(Self { tasks })
    }
}
