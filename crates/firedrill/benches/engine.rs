//! Engine benchmarks (goals from the foundation issue):
//! - `validate/200-features`: `firedrill validate` over 200 feature files, under 1 s.
//! - `engine/step-overhead`: a run of 201 timing steps against one of 1; (difference)/200 is the
//!   engine's per-step overhead, under 1 ms.
//! - `engine/milestone`: recording a milestone (timeline + event stream), well under 1 ms.
//! - `binary/start`: process start to first output, under 50 ms.
//! - `metrics/scrape-10k-series`: encoding /metrics with 10,000 series, under 10 ms.
//!
//! Run with `cargo bench -p firedrill --bench engine`; `cargo test --benches` runs each once.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use firedrill_core::clock::Clock;
use firedrill_core::timeline::{Milestone, Timeline};
use firedrill_engine::events::{Bus, Event, FnSink};

fn drills_folder(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let drills = dir.path().join("drills");
    std::fs::create_dir(&drills).expect("mkdir");
    let source =
        std::fs::read_to_string(firedrill_testkit::root().join("drills/regional-failover.feature"))
            .expect("a shipped drill");
    for i in 0..n {
        std::fs::write(
            drills.join(format!("drill-{i:03}.feature")),
            source.replace("Scenario: ", &format!("Scenario: {i} ")),
        )
        .expect("write");
    }
    dir
}

fn steps_platform(dir: &Path, steps: usize) {
    std::fs::write(dir.join("platform.yaml"), "name: bench\nregions:\n  a: { role: primary }\n  b: { role: failover }\nfaults:\n  noop:\n    description: nothing\n    inject: { run: [\"true\"] }\n    undo: { run: [\"true\"] }\n").expect("platform");
    let mut feature = String::from(
        "Feature: steps\n  Scenario: many steps\n    When the fault \"noop\" is injected\n",
    );
    for _ in 0..steps {
        feature
            .push_str("    Then \"fault injected\" is reached within 1m of \"fault injected\"\n");
    }
    std::fs::create_dir_all(dir.join("drills")).expect("mkdir");
    std::fs::write(dir.join("drills/steps.feature"), feature).expect("feature");
}

fn run_in(dir: &Path, args: &[&str]) {
    let status = firedrill_testkit::firedrill!()
        .command(dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert!(status.success(), "firedrill {args:?} failed");
}

fn benches(c: &mut Criterion) {
    let hundreds = drills_folder(200);
    let mut group = c.benchmark_group("validate");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("200-features", |b| {
        b.iter(|| run_in(hundreds.path(), &["validate"]))
    });
    group.finish();

    let many = tempfile::tempdir().expect("tempdir");
    steps_platform(many.path(), 200);
    let one = tempfile::tempdir().expect("tempdir");
    steps_platform(one.path(), 0);
    let mut group = c.benchmark_group("engine");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("run-201-steps", |b| {
        b.iter(|| {
            run_in(
                many.path(),
                &["run", "--platform", "platform.yaml", "--yes"],
            )
        })
    });
    group.bench_function("run-1-step", |b| {
        b.iter(|| run_in(one.path(), &["run", "--platform", "platform.yaml", "--yes"]))
    });
    group.finish();

    let clock = Clock::real();
    let bus = Bus::default();
    bus.subscribe(Box::new(FnSink(|e: &Event| {
        std::hint::black_box(e);
    })));
    let mut timeline = Timeline::default();
    c.bench_function("engine/milestone", |b| {
        b.iter(|| {
            let m = Milestone {
                name: "first good answer from us-west2".into(),
                at: clock.now(),
                source: "probe".into(),
            };
            timeline.record(m.clone());
            bus.emit(&Event::Milestone(m));
        });
    });

    let mut metrics = firedrill_report::metrics::Metrics::new("bench").expect("metrics");
    use firedrill_engine::events::Sink as _;
    for scenario in 0..100 {
        metrics.handle(&Event::ScenarioStarted {
            feature: "drill".into(),
            scenario: format!("scenario {scenario}"),
            tags: vec![],
            at: clock.now(),
        });
        for milestone in 0..100 {
            metrics.handle(&Event::Milestone(Milestone {
                name: format!("milestone {milestone}"),
                at: clock.now(),
                source: "bench".into(),
            }));
        }
    }
    c.bench_function("metrics/scrape-10k-series", |b| {
        b.iter(|| std::hint::black_box(metrics.encode()))
    });
    c.bench_function("metrics/collect-10k-series", |b| {
        b.iter(|| std::hint::black_box(metrics.families()))
    });
    let families = metrics.families();
    c.bench_function("metrics/encode-10k-series", |b| {
        b.iter(|| std::hint::black_box(firedrill_report::metrics::encode(&families)))
    });

    let mut group = c.benchmark_group("binary");
    group.sample_size(20);
    group.bench_function("start", |b| {
        b.iter(|| run_in(Path::new("."), &["--version"]))
    });
    group.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
