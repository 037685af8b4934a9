//! A harness for measurements that are too large for criterion's sampling (a 6,000-pod
//! cluster drained, 2 GiB through a proxy): each bench is an async function that prints its
//! figures and asserts only that the work happened.
//!
//! `cargo bench --bench NAME [-- FILTER…]` runs them at full size; as criterion does, without
//! `--bench` (as `cargo test --benches` runs a bench target), with `--test`, or with
//! `FIREDRILL_BENCH_QUICK` set, each runs once at a size that takes a few seconds, so CI
//! notices a bench that no longer works.
//!
//! ```no_run
//! # #![allow(clippy::disallowed_macros)]
//! use firedrill_testkit::bench::Size;
//!
//! async fn round_trips(size: Size) {
//!     let rounds = size.pick(20_000, 200);
//!     println!("{rounds} rounds");
//! }
//!
//! firedrill_testkit::bench_main!(round_trips);
//! ```

use std::future::Future;

/// How large a bench's work is: the full measurement, or a quick run that proves it works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// `cargo bench`: the documented measurement.
    Full,
    /// `cargo test --benches`, `-- --test`, or `FIREDRILL_BENCH_QUICK` set: once, small, in
    /// seconds.
    Quick,
}

impl Size {
    /// `full` at full size, else `quick`.
    #[must_use]
    pub fn pick<T>(self, full: T, quick: T) -> T {
        match self {
            Self::Full => full,
            Self::Quick => quick,
        }
    }

    /// Whether this is the full measurement (whose goals a bench may assert).
    #[must_use]
    pub fn is_full(self) -> bool {
        self == Self::Full
    }
}

/// What the command line asked: the size, and the names to run (every bench when empty).
#[derive(Clone, Debug)]
pub struct Run {
    /// The size every selected bench runs at.
    pub size: Size,
    filters: Vec<String>,
}

impl Run {
    /// Reads the process's arguments and `FIREDRILL_BENCH_QUICK`.
    #[must_use]
    pub fn from_env() -> Self {
        Self::parse(
            std::env::args().skip(1),
            std::env::var_os("FIREDRILL_BENCH_QUICK").is_some(),
        )
    }

    fn parse(args: impl IntoIterator<Item = String>, quick: bool) -> Self {
        let (mut bench, mut test) = (false, false);
        let mut filters = Vec::new();
        for arg in args {
            match arg.as_str() {
                "--bench" => bench = true,
                "--test" => test = true,
                _ if !arg.starts_with('-') => filters.push(arg),
                _ => {}
            }
        }
        let size = if bench && !test && !quick {
            Size::Full
        } else {
            Size::Quick
        };
        Self { size, filters }
    }

    /// Whether the bench `name` is selected (its name contains one of the filters).
    #[must_use]
    pub fn selects(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }

    /// Runs one bench on a runtime of two worker threads, as the embedded platform runs.
    ///
    /// # Panics
    ///
    /// When the runtime cannot be built, or the bench panics.
    #[allow(clippy::disallowed_macros)] // a bench's figures go to the terminal that ran it
    pub fn block_on(&self, name: &str, bench: impl Future<Output = ()>) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime for the bench");
        let started = std::time::Instant::now();
        runtime.block_on(bench);
        eprintln!("bench {name} ({:?}): {:?}", self.size, started.elapsed());
    }
}

/// `fn main` for a bench target of async `fn(Size)` benches: `harness = false` in its
/// `[[bench]]` section.
#[macro_export]
macro_rules! bench_main {
    ($($bench:ident),+ $(,)?) => {
        fn main() {
            let run = $crate::bench::Run::from_env();
            $(
                if run.selects(stringify!($bench)) {
                    run.block_on(stringify!($bench), $bench(run.size));
                }
            )+
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], quick: bool) -> Run {
        Run::parse(args.iter().map(|a| (*a).to_owned()), quick)
    }

    #[test]
    fn cargo_bench_runs_full_size_and_anything_else_quick() {
        assert_eq!(parse(&["--bench"], false).size, Size::Full);
        assert_eq!(parse(&["--bench"], true).size, Size::Quick);
        assert_eq!(parse(&["--bench", "--test"], false).size, Size::Quick);
        assert_eq!(parse(&[], false).size, Size::Quick);
    }

    #[test]
    fn names_after_the_flags_select_benches() {
        let run = parse(&["--bench", "drain"], false);
        assert!(run.selects("zone_drain") && !run.selects("watch_latency"));
        assert!(parse(&["--bench"], false).selects("anything"));
    }
}
