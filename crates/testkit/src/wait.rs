//! Waiting for an observed condition with a deadline: the one wait loop of the tests.
//!
//! A check is polled (every 10 ms unless [`Wait::every`] says otherwise) until it holds; past
//! the deadline the test fails naming what it waited for, how long, and the last state the
//! check reported. A check returns `bool`, `Option<T>` (the `T` is handed back) or
//! `Result<T, E>` (the `E` is the last state shown on failure).
//!
//! ```no_run
//! # async fn f(ready: impl Fn() -> usize) {
//! use std::time::Duration;
//! firedrill_testkit::until("6 pods Ready", Duration::from_secs(20), || {
//!     let n = ready();
//!     if n == 6 { Ok(()) } else { Err(format!("{n} Ready")) }
//! })
//! .await;
//! # }
//! ```

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

/// What a check reports: done (with a value), or not yet (with what it saw, when it says).
pub trait Check {
    /// What the wait hands back once the check holds.
    type Output;
    /// `Ok` once the condition holds; else what was observed, for the failure message.
    ///
    /// # Errors
    ///
    /// Not yet: the last state observed, when the check says it.
    fn done(self) -> Result<Self::Output, Option<String>>;
}

impl Check for bool {
    type Output = ();
    fn done(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Check for Option<T> {
    type Output = T;
    fn done(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Debug> Check for Result<T, E> {
    type Output = T;
    fn done(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(format!("{e:?}")))
    }
}

/// A wait: what for, how long at most, how often to look.
#[derive(Clone, Debug)]
pub struct Wait {
    what: String,
    within: Duration,
    every: Duration,
}

/// The default poll interval: short against the tests' deadlines, long enough to cost nothing.
const EVERY: Duration = Duration::from_millis(10);

impl Wait {
    /// A wait for `what`, failing after `within`.
    #[must_use]
    pub fn new(what: impl Into<String>, within: Duration) -> Self {
        Self {
            what: what.into(),
            within,
            every: EVERY,
        }
    }

    /// Looks every `every` instead of every 10 ms (for a check that is costly to ask).
    #[must_use]
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Polls `check` on the tokio runtime until it holds.
    ///
    /// # Panics
    ///
    /// When it does not within the deadline.
    pub async fn until<C: Check>(&self, mut check: impl FnMut() -> C) -> C::Output {
        self.until_async(|| std::future::ready(check())).await
    }

    /// Polls an async `check` (one that asks a server) until it holds.
    ///
    /// # Panics
    ///
    /// When it does not within the deadline.
    pub async fn until_async<C: Check, F: Future<Output = C>>(
        &self,
        mut check: impl FnMut() -> F,
    ) -> C::Output {
        let deadline = Instant::now() + self.within;
        loop {
            match check().await.done() {
                Ok(value) => return value,
                Err(seen) => self.fail_past(deadline, seen.as_deref()),
            }
            tokio::time::sleep(self.every).await;
        }
    }

    /// Polls `check` blocking this thread (for a test without a runtime) until it holds.
    ///
    /// # Panics
    ///
    /// When it does not within the deadline.
    pub fn blocking<C: Check>(&self, mut check: impl FnMut() -> C) -> C::Output {
        let deadline = Instant::now() + self.within;
        loop {
            match check().done() {
                Ok(value) => return value,
                Err(seen) => self.fail_past(deadline, seen.as_deref()),
            }
            std::thread::sleep(self.every);
        }
    }

    fn fail_past(&self, deadline: Instant, seen: Option<&str>) {
        if Instant::now() >= deadline {
            match seen {
                Some(seen) => panic!(
                    "{}: not within {:?}; last seen: {seen}",
                    self.what, self.within
                ),
                None => panic!("{}: not within {:?}", self.what, self.within),
            }
        }
    }
}

/// Polls `check` until it holds, failing after `within`: [`Wait::until`] in one call.
///
/// # Panics
///
/// When it does not within the deadline.
pub async fn until<C: Check>(
    what: impl Into<String>,
    within: Duration,
    check: impl FnMut() -> C,
) -> C::Output {
    Wait::new(what, within).until(check).await
}

/// Polls an async `check` until it holds, failing after `within`: [`Wait::until_async`] in
/// one call.
///
/// # Panics
///
/// When it does not within the deadline.
pub async fn until_async<C: Check, F: Future<Output = C>>(
    what: impl Into<String>,
    within: Duration,
    check: impl FnMut() -> F,
) -> C::Output {
    Wait::new(what, within).until_async(check).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_back_the_value_once_the_check_holds() {
        let mut polls = 0;
        let got = until("the third poll", Duration::from_secs(5), || {
            polls += 1;
            (polls == 3).then_some(polls)
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn fails_past_the_deadline_naming_what_and_the_last_state() {
        let failed = tokio::spawn(until("never", Duration::from_millis(30), || {
            Err::<(), _>("still 2 of 3")
        }))
        .await
        .expect_err("the wait fails");
        let message = failed
            .into_panic()
            .downcast::<String>()
            .map(|m| *m)
            .unwrap_or_default();
        assert!(
            message.starts_with("never: not within 30ms; last seen: \"still 2 of 3\""),
            "{message}"
        );
    }

    #[test]
    fn blocking_waits_without_a_runtime() {
        let start = Instant::now();
        Wait::new("20 ms passed", Duration::from_secs(5))
            .every(Duration::from_millis(1))
            .blocking(|| start.elapsed() >= Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
