//! A MongoDB drill run by the `firedrill` binary against an in-test replica set whose members
//! each sit behind their own Toxiproxy link: the kill step cuts the primary's link from another
//! process, a new primary is elected, and the scenario's end removes exactly that toxic.

use std::net::SocketAddr;
use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_providers::toxiproxy::ToxiproxyClient;
use firedrill_sim::toxiproxy::ToxiproxyServer;
use firedrill_testkit::firedrill;
use firedrill_testkit::mongo::{behind_proxies, linked_platform, three_members};
use firedrill_testkit::platform::Folder;

const SCALE: f64 = 20.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_step_cuts_the_link_from_another_process_and_the_scenario_end_removes_the_toxic() {
    let clock = Clock::scaled(SCALE).expect("scale");
    let toxiproxy = ToxiproxyServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), clock, 5)
        .await
        .expect("toxiproxy");
    let set = behind_proxies(&toxiproxy, three_members("rs-linked", 21), clock).await;
    let folder = Folder::new();
    // The set runs in this test, on the same time scale as the drill's clock.
    linked_platform(
        folder.path(),
        &set,
        &toxiproxy.url(),
        &format!("time-scale: {SCALE}\n"),
    );
    folder.write(
        "kill.feature",
        "Feature: kill\n  Scenario: the primary is killed through its link\n    Given a write checker runs against the \"prod-1\" database at 20 writes per second\n    When the Mongo primary of \"prod-1\" is killed\n    Then a new primary is elected within 40s\n    And no acknowledged write was lost\n",
    );
    let old = set.primary().expect("primary");
    // Awaited, not blocked on: the replica set and Toxiproxy answer on this test's runtime.
    let out = firedrill!()
        .start(
            folder.path(),
            &[
                "run",
                "kill.feature",
                "--platform",
                "platform.yaml",
                "--yes",
            ],
        )
        .exit(Duration::from_secs(60))
        .await;
    let text = out.text();
    assert_eq!(out.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "kill of the primary {old} of prod-1: cut Toxiproxy link \"mongo-0\""
        )),
        "{text}"
    );
    assert!(text.contains("undone: kill of the primary"), "{text}");
    assert!(text.contains("0 lost"), "{text}");
    // Another member was elected while the link was cut (after the undo, the old primary,
    // with the highest priority, may take it back).
    let elections = set.elections();
    assert!(elections.iter().any(|e| e.host != old), "{elections:?}");
    // Exactly the kill's toxic is gone and the member is back with the others.
    let client = ToxiproxyClient::new(&toxiproxy.url()).expect("client");
    for i in 0..3 {
        let state = client.proxy(&format!("mongo-{i}")).await.expect("proxy");
        assert_eq!(state.toxics.len(), 0, "mongo-{i}: {:?}", state.toxics);
    }
    clock
        .timeout(
            Duration::from_secs(120),
            set.wait_until(|s| (!s.members[0].link_down).then_some(())),
        )
        .await
        .expect("the member's link is back");
}
