//! Waiting until something is seen, with a deadline: the one loop behind every provider's
//! "wait until the primary moved", "until the member answers", "until the pod is back", "until
//! traffic is served from the region".

use std::future::Future;
use std::time::Duration;

use firedrill_core::clock::Clock;

/// Looks every `every` (platform time, the first look at once) until `look` sees what it
/// waits for, or `within` has passed since the call. A look that is not there yet returns
/// `Err(Some(state))` to describe what it saw, or `Err(None)` when it saw nothing new (the
/// last description stands). There is always at least one look.
///
/// # Errors
///
/// The last state described (`None` if no look described one) once the deadline passed.
pub async fn until<T, F, Fut>(
    clock: &Clock,
    every: Duration,
    within: Duration,
    mut look: F,
) -> Result<T, Option<String>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Option<String>>>,
{
    let deadline = clock.now().plus(within);
    let mut ticks = clock.interval(every);
    let mut last = None;
    loop {
        ticks.tick().await;
        match look().await {
            Ok(seen) => return Ok(seen),
            Err(Some(state)) => last = Some(state),
            Err(None) => {}
        }
        if clock.now() >= deadline {
            return Err(last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test]
    async fn it_returns_what_is_seen_as_soon_as_it_is_seen() {
        let clock = Clock::scaled(1000.0).expect("scale");
        let looks = Cell::new(0);
        let seen = until(
            &clock,
            Duration::from_secs(1),
            Duration::from_secs(60),
            || {
                looks.set(looks.get() + 1);
                let n = looks.get();
                async move {
                    if n == 3 {
                        Ok(n)
                    } else {
                        Err(Some(format!("look {n}")))
                    }
                }
            },
        )
        .await;
        assert_eq!(seen, Ok(3));
        assert_eq!(looks.get(), 3);
    }

    #[tokio::test]
    async fn at_the_deadline_it_names_the_last_state_described() {
        // Looks every 10 ms of wall time for 50 ms.
        let clock = Clock::scaled(100.0).expect("scale");
        let looks = Cell::new(0u32);
        let started = clock.now();
        let outcome: Result<(), _> = until(
            &clock,
            Duration::from_secs(1),
            Duration::from_secs(5),
            || {
                looks.set(looks.get() + 1);
                // Only the first look describes anything; later ones see nothing new.
                let state = (looks.get() == 1).then(|| "first".to_owned());
                async move { Err(state) }
            },
        )
        .await;
        assert_eq!(outcome, Err(Some("first".to_owned())));
        assert!(clock.now().saturating_since(started) >= Duration::from_secs(5));
        assert!(looks.get() >= 2, "looked {} times", looks.get());
    }
}
