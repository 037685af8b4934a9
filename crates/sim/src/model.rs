//! The seeded timing model of the embedded platform: how long real things take.
//!
//! Figures are platform time, drawn uniformly from ranges typical of the reference estate. The
//! same seed gives the same draws, so `--seed` reproduces a run.

use std::ops::Range;
use std::time::Duration;

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

/// Ranges of the modelled durations of the traffic switch. With the failover cluster's timing
/// ([`crate::failover_timing`]) they put a regional failover at 20–25 platform minutes:
///
/// | phase | modelled |
/// | --- | --- |
/// | outage detected (front-door probe every 10 s) | 0–10 s |
/// | us-west2 nodes from 0 (cluster autoscaler) | 10.5–11.5 min |
/// | pods pulled, started, Ready | 1.5–2.5 min |
/// | Terraform apply of the global load balancer | 5–6 min |
/// | load-balancer propagation | 3–4 min |
/// | total, fault → first answer from us-west2 | 20–24 min |
#[derive(Clone, Debug)]
pub struct Ranges {
    /// A Terraform apply that changes the global load balancer's backend.
    pub terraform_apply: Range<Duration>,
    /// Load-balancer propagation after the apply returns.
    pub lb_propagation: Range<Duration>,
}

impl Default for Ranges {
    fn default() -> Self {
        Self {
            terraform_apply: Duration::from_secs(5 * 60)..Duration::from_secs(6 * 60),
            lb_propagation: Duration::from_secs(3 * 60)..Duration::from_secs(4 * 60),
        }
    }
}

/// A seeded source of modelled durations.
#[derive(Debug)]
pub struct Model {
    rng: ChaCha8Rng,
    ranges: Ranges,
}

impl Model {
    /// A model drawing from `ranges` with `seed`.
    #[must_use]
    pub fn new(seed: u64, ranges: Ranges) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            ranges,
        }
    }

    fn draw(&mut self, range: &Range<Duration>) -> Duration {
        if range.is_empty() {
            return range.start;
        }
        Duration::from_millis(
            self.rng
                .random_range(range.start.as_millis() as u64..range.end.as_millis() as u64),
        )
    }

    /// How long a Terraform apply takes.
    pub fn terraform_apply(&mut self) -> Duration {
        let range = self.ranges.terraform_apply.clone();
        self.draw(&range)
    }

    /// How long the load balancer takes to follow an apply.
    pub fn lb_propagation(&mut self) -> Duration {
        let range = self.ranges.lb_propagation.clone();
        self.draw(&range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_durations_within_their_ranges() {
        let mut a = Model::new(7, Ranges::default());
        let mut b = Model::new(7, Ranges::default());
        let mut c = Model::new(8, Ranges::default());
        let draws_a: Vec<Duration> = (0..5).map(|_| a.terraform_apply()).collect();
        let draws_b: Vec<Duration> = (0..5).map(|_| b.terraform_apply()).collect();
        let draws_c: Vec<Duration> = (0..5).map(|_| c.terraform_apply()).collect();
        assert_eq!(draws_a, draws_b);
        assert_ne!(draws_a, draws_c);
        assert!(
            draws_a
                .iter()
                .all(|d| Ranges::default().terraform_apply.contains(d))
        );
    }
}
