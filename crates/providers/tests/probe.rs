//! The http probe against a local server that changes its answers: milestones land within one
//! probe interval of the change.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use firedrill_core::clock::{Clock, PlatformTime};
use firedrill_platform::Probe;
use firedrill_providers::http::{self, ProbeMilestone};

async fn answer(
    State(up): State<Arc<AtomicBool>>,
) -> (StatusCode, [(&'static str, &'static str); 1]) {
    if up.load(Ordering::SeqCst) {
        (StatusCode::OK, [("x-served-by", "us-west2")])
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [("x-served-by", "us-west2")],
        )
    }
}

async fn next(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<ProbeMilestone>,
    name: &str,
) -> Result<ProbeMilestone, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = rx.recv().await.expect("probe running");
            if m.name == name {
                return m;
            }
        }
    })
    .await
}

/// Serves [`answer`] on a loopback port; returns the address.
async fn serve(up: Arc<AtomicBool>) -> std::net::SocketAddr {
    let app = Router::new().route("/", get(answer)).with_state(up);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A probe of `addr` every `interval`, reading the region from `x-served-by`.
fn probe(addr: std::net::SocketAddr, interval: Duration) -> Probe {
    Probe {
        url: format!("http://{addr}/"),
        interval,
        timeout: Duration::from_secs(1),
        expect_status: vec![200],
        body_contains: None,
        region_header: Some("x-served-by".into()),
        stable_after: 3,
        slo: None,
    }
}

/// Turns the server's answers good (`to`) or bad, and waits for `milestone`: it must be
/// stamped within `within` of the change.
async fn flip(
    up: &AtomicBool,
    to: bool,
    clock: &Clock,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<ProbeMilestone>,
    milestone: &str,
    within: Duration,
) -> ProbeMilestone {
    let changed: PlatformTime = clock.now();
    up.store(to, Ordering::SeqCst);
    let seen = next(rx, milestone)
        .await
        .unwrap_or_else(|_| panic!("{milestone:?} is never seen"));
    let error = seen.at.offset().abs_diff(changed.offset());
    assert!(
        error <= within,
        "{milestone:?} stamped {error:?} from the change"
    );
    seen
}

#[tokio::test]
async fn milestones_land_within_one_probe_interval_of_the_change() {
    let up = Arc::new(AtomicBool::new(true));
    let addr = serve(Arc::clone(&up)).await;

    let interval = Duration::from_millis(100);
    let probe = probe(addr, interval);
    let clock = Clock::real();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ProbeMilestone>();
    let running = http::spawn(
        "svc",
        probe,
        http::client().expect("client"),
        clock,
        Arc::new(move |_, m, _| {
            let _ = tx.send(m);
        }),
    );

    next(&mut rx, "service answers from us-west2")
        .await
        .expect("stable before the change");

    let slack = Duration::from_millis(50);
    // Down.
    flip(
        &up,
        false,
        &clock,
        &mut rx,
        "first bad answer",
        interval + slack,
    )
    .await;

    // Back up: the first good answer marks the recovery, the stable milestone is stamped with it.
    let good = flip(
        &up,
        true,
        &clock,
        &mut rx,
        "first good answer from us-west2",
        interval + slack,
    )
    .await;
    let stable = next(&mut rx, "service answers from us-west2")
        .await
        .expect("stable again");
    assert_eq!(
        stable.at, good.at,
        "the stable milestone carries the time of the first good answer"
    );

    let state = running.stop();
    assert!(state.bad >= 1 && state.good >= 6, "{state:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_waits_for_the_answer_being_recorded_and_nothing_is_recorded_after_it() {
    let addr = serve(Arc::new(AtomicBool::new(true))).await;
    let probe = probe(addr, Duration::from_millis(20));
    let recorded = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (entered, inside) = std::sync::mpsc::channel::<()>();
    let count = Arc::clone(&recorded);
    let running = http::spawn(
        "svc",
        probe,
        http::client().expect("client"),
        Clock::real(),
        Arc::new(move |_, _, _| {
            let _ = entered.send(());
            // A slow sink: the stop below comes while this milestone is going out.
            std::thread::sleep(Duration::from_millis(300));
            count.fetch_add(1, Ordering::SeqCst);
        }),
    );
    tokio::task::spawn_blocking(move || inside.recv_timeout(Duration::from_secs(10)))
        .await
        .expect("join")
        .expect("a first milestone");
    let state = running.stop();
    assert!(
        state.good >= 1,
        "the answer whose milestone was going out is counted: {state:?}"
    );
    let after_stop = recorded.load(Ordering::SeqCst);
    assert!(
        after_stop >= 1,
        "the stop waited for the milestone in flight"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        recorded.load(Ordering::SeqCst),
        after_stop,
        "nothing is recorded after the stop"
    );
}
