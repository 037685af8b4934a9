//! The Atlas provider against the embedded Atlas Administration API over an embedded replica
//! set: digest and OAuth authentication, the outage simulation's states and its effect on the
//! set, the test failover, the priority flip and each undo, preflight refusals, rate limiting,
//! and credentials never in a message.

use std::sync::Arc;
use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_core::diagnostic::Problems;
use firedrill_platform::Platform;
use firedrill_providers::atlas::actions::{COMPLETE, SIMULATING, flip_specs, top_region};
use firedrill_providers::atlas::{AtlasError, AtlasUndo, Client, Requirement, Role, Settings};
use firedrill_sim::atlas::{ApiKey, AtlasApi, AtlasSpec, Limits, ServiceAccount, Timing};
use firedrill_sim::mongo::{MemberSpec, ReplicaSet, ReplicaSetSpec};
use firedrill_testkit::atlas::{self, PROJECT};

const OWNER: (&str, &str) = ("ownerkey", "11111111-2222-3333-4444-owner-s3cret");
const READER: (&str, &str) = ("readkey1", "55555555-6666-7777-8888-reader-s3cret");
const ACCOUNT: (&str, &str) = ("mdb_sa_id_test", "mdb_sa_sk_account-s3cret");
/// Wall time any wait of these tests may take.
const WALL: Duration = Duration::from_secs(60);

struct Estate {
    set: Arc<ReplicaSet>,
    api: AtlasApi,
    dir: tempfile::TempDir,
    clock: Clock,
}

fn quick() -> Timing {
    let s = Duration::from_secs;
    Timing {
        update: (s(20), s(30)),
        restart: (s(20), s(30)),
        start_requested: (s(5), s(10)),
        starting: (s(10), s(20)),
        recovery_requested: (s(5), s(10)),
        recovering: (s(10), s(20)),
        complete_shown: s(30),
    }
}

async fn estate(limits: Limits) -> Estate {
    let clock = Clock::scaled(100.0).expect("scale");
    let members = [
        ("us-west1", 7.0),
        ("us-west1", 7.0),
        ("us-west2", 6.0),
        ("us-west2", 6.0),
        ("us-central1", 5.0),
    ]
    .into_iter()
    .map(|(r, p)| MemberSpec::new(r, p))
    .collect();
    let spec = ReplicaSetSpec {
        name: "rs-prod-1".into(),
        members,
        seed: 5,
        timing: firedrill_sim::mongo::Timing::default(),
    };
    let set = Arc::new(ReplicaSet::start(spec, clock).await.expect("set starts"));
    let key = |(public, private): (&str, &str), role: &str| ApiKey {
        public: public.into(),
        private: private.into(),
        roles: vec![role.into()],
    };
    let spec = AtlasSpec {
        keys: vec![key(OWNER, "GROUP_OWNER"), key(READER, "GROUP_READ_ONLY")],
        accounts: vec![ServiceAccount {
            client_id: ACCOUNT.0.into(),
            secret: ACCOUNT.1.into(),
            roles: vec!["GROUP_CLUSTER_MANAGER".into()],
        }],
        timing: quick(),
        limits,
        ..atlas::one_cluster(
            &set,
            &[
                ("WESTERN_US", "us-west1", 7),
                ("US_WEST_2", "us-west2", 6),
                ("CENTRAL_US", "us-central1", 5),
            ],
        )
    };
    let api = atlas::start(spec, clock).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("uri"), set.connection_string()).expect("uri");
    Estate {
        set,
        api,
        dir,
        clock,
    }
}

impl Estate {
    /// A platform whose prod-1 is this cluster, with these credentials written to files.
    fn platform(&self, credentials: &str, regions: &str) -> Platform {
        let write = |name: &str, value: &str| {
            std::fs::write(self.dir.path().join(name), value).expect("secret file");
        };
        let block = match credentials {
            "owner" | "reader" | "wrong" => {
                let (public, private) = match credentials {
                    "owner" => OWNER,
                    "reader" => READER,
                    _ => (OWNER.0, "not-the-private-key"),
                };
                write("public", public);
                write("private", private);
                "      api-key: { public-key: { file: public }, private-key: { file: private } }\n"
            }
            _ => {
                write("id", ACCOUNT.0);
                write("secret", ACCOUNT.1);
                "      service-account: { client-id: { file: id }, client-secret: { file: secret } }\n"
            }
        };
        let yaml = format!(
            "name: t\nregions:\n  us-west1: {{ role: primary }}\n  us-west2: {{ role: failover }}\nnamespaces:\n  prod-1: {{ database: prod-1 }}\ndatabases:\n  prod-1:\n    replica-set: rs-prod-1\n    uri: {{ file: uri }}\n    atlas:\n      url: {}\n      project-id: {PROJECT}\n      cluster: prod-1\n{block}      regions: {regions}\n      update-within: 10m\n      simulation-within: 10m\nsafety:\n  allow:\n    replica-sets: [rs-prod-1]\n",
            self.api.url
        );
        firedrill_platform::load_str(&self.dir.path().join("p.yaml"), &yaml, &|_| None)
            .unwrap_or_else(|p| panic!("platform: {p}"))
    }

    fn client(&self, platform: &Platform) -> Client {
        Client::new(
            Settings::resolve(platform, "prod-1").expect("settings"),
            self.clock,
        )
        .expect("client")
    }

    async fn primary_in(&self, region: &str) {
        let set = Arc::clone(&self.set);
        let region = region.to_owned();
        tokio::time::timeout(
            WALL,
            set.wait_until(|s| {
                let p = s.primary.as_ref()?;
                s.members
                    .iter()
                    .find(|m| &m.host == p)
                    .filter(|m| m.region == region)
                    .map(|_| ())
            }),
        )
        .await
        .unwrap_or_else(|_| panic!("no primary in {region}: {:?}", self.set.status()));
    }
}

const REGIONS: &str = "{ us-west1: WESTERN_US, us-west2: US_WEST_2 }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_and_oauth_both_read_the_cluster_and_wrong_keys_are_refused_without_echo() {
    let estate = estate(Limits::default()).await;
    for credentials in ["owner", "account"] {
        let client = estate.client(&estate.platform(credentials, REGIONS));
        let cluster = client
            .cluster()
            .await
            .unwrap_or_else(|e| panic!("{credentials}: {e}"));
        assert_eq!(cluster.state, "IDLE");
        assert_eq!(
            top_region(&cluster.replication_specs).as_deref(),
            Some("WESTERN_US")
        );
        assert_eq!(
            cluster.electable().iter().map(|r| r.electable).sum::<u64>(),
            5
        );
        // The digest nonce is answered again with a growing count.
        client
            .cluster()
            .await
            .unwrap_or_else(|e| panic!("{credentials} again: {e}"));
    }
    let wrong = estate.client(&estate.platform("wrong", REGIONS));
    let err = wrong.cluster().await.expect_err("wrong key");
    assert!(matches!(err, AtlasError::Unauthorized { .. }), "{err}");
    let text = format!("{err} {err:?} {wrong:?}");
    for secret in [OWNER.1, "not-the-private-key", ACCOUNT.1] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(text.contains("credentials were refused"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_simulation_walks_its_states_moves_the_primary_and_its_undo_brings_it_home() {
    let estate = estate(Limits::default()).await;
    let platform = estate.platform("owner", REGIONS);
    let client = estate.client(&platform);
    let started = client
        .start_outage(&["WESTERN_US".into()])
        .await
        .expect("start");
    assert_eq!(started.state, "START_REQUESTED");
    // One at a time: a second one is a conflict naming what to do.
    let err = client
        .start_outage(&["US_WEST_2".into()])
        .await
        .expect_err("conflict");
    assert!(matches!(err, AtlasError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("already running"), "{err}");
    let mut states = Vec::new();
    client
        .wait_outage(
            "SIMULATING",
            Duration::from_secs(600),
            |o| o.is_some_and(|o| o.state == SIMULATING),
            |s, _| {
                states.push(s.to_owned());
            },
        )
        .await
        .expect("simulating");
    assert_eq!(
        states.last().map(String::as_str),
        Some(SIMULATING),
        "{states:?}"
    );
    assert!(
        states.contains(&"STARTING".to_owned()) || states.len() >= 2,
        "{states:?}"
    );
    // The cut: both us-west1 members are partitioned and unreachable, the primary moves to the
    // next region by priority.
    estate.primary_in("us-west2").await;
    let status = estate.set.status();
    for m in status.members.iter().filter(|m| m.region == "us-west1") {
        assert!(m.partitioned, "{m:?}");
        assert!(
            std::net::TcpStream::connect(&m.host).is_err(),
            "{} still answers",
            m.host
        );
    }
    // The undo: RECOVERY_REQUESTED → RECOVERING → COMPLETE, the members back, the primary home.
    let undo = AtlasUndo::EndOutageSimulation {
        database: "prod-1".into(),
        regions: vec!["WESTERN_US".into()],
    };
    tokio::time::timeout(WALL, undo.apply(&platform, &estate.clock))
        .await
        .expect("in time")
        .unwrap_or_else(|e| panic!("undo: {e}"));
    let shown = client.outage().await.expect("read");
    assert!(
        shown.as_ref().is_none_or(|o| o.state == COMPLETE),
        "{shown:?}"
    );
    assert!(estate.set.status().members.iter().all(|m| !m.partitioned));
    estate.primary_in("us-west1").await;
    // Running it again is harmless.
    undo.apply(&platform, &estate.clock)
        .await
        .expect("idempotent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_flip_goes_through_updating_and_its_undo_restores_the_saved_priorities() {
    let estate = estate(Limits::default()).await;
    let platform = estate.platform("account", REGIONS);
    let client = estate.client(&platform);
    let before = client.cluster().await.expect("cluster");
    let flipped = flip_specs(&before.replication_specs, "US_WEST_2").expect("flip");
    client.set_replication_specs(&flipped).await.expect("patch");
    assert_eq!(client.cluster().await.expect("cluster").state, "UPDATING");
    // A second change while one is applying is refused.
    let err = client
        .set_replication_specs(&before.replication_specs)
        .await
        .expect_err("busy");
    assert!(matches!(err, AtlasError::Conflict { .. }), "{err}");
    let mut seen = Vec::new();
    client
        .wait_idle(Duration::from_secs(600), |s, _| seen.push(s.to_owned()))
        .await
        .expect("idle");
    assert_eq!(seen, ["UPDATING", "IDLE"]);
    estate.primary_in("us-west2").await;
    let undo = AtlasUndo::RestorePriorities {
        database: "prod-1".into(),
        replication_specs: before.replication_specs.clone(),
    };
    tokio::time::timeout(WALL, undo.apply(&platform, &estate.clock))
        .await
        .expect("in time")
        .unwrap_or_else(|e| panic!("undo: {e}"));
    let after = client.cluster().await.expect("cluster");
    assert_eq!(
        top_region(&after.replication_specs).as_deref(),
        Some("WESTERN_US")
    );
    estate.primary_in("us-west1").await;
    // An invalid priority set is Atlas's 400, with its detail.
    let mut bad = before.replication_specs.clone();
    bad[0]["regionConfigs"][0]["priority"] = serde_json::json!(9);
    let err = client
        .set_replication_specs(&bad)
        .await
        .expect_err("bad priorities");
    assert!(matches!(err, AtlasError::Api { status: 400, .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_failover_elects_another_primary_and_its_undo_waits_for_idle() {
    let estate = estate(Limits::default()).await;
    let platform = estate.platform("account", REGIONS);
    let client = estate.client(&platform);
    let before = estate.set.primary().expect("primary");
    client.restart_primaries().await.expect("failover");
    let set = Arc::clone(&estate.set);
    let old = before.clone();
    tokio::time::timeout(
        WALL,
        set.wait_until(|s| s.primary.clone().filter(|p| *p != old)),
    )
    .await
    .expect("a new primary");
    // While the old primary "restarts" the cluster is UPDATING and another failover is refused.
    let err = client.restart_primaries().await.expect_err("not idle");
    assert!(err.to_string().contains("no pending changes"), "{err}");
    let undo = AtlasUndo::AwaitRecovered {
        database: "prod-1".into(),
    };
    tokio::time::timeout(WALL, undo.apply(&platform, &estate.clock))
        .await
        .expect("in time")
        .unwrap_or_else(|e| panic!("undo: {e}"));
    assert_eq!(client.cluster().await.expect("cluster").state, "IDLE");
    estate.primary_in("us-west1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_a_missing_role_an_unknown_region_and_a_running_simulation() {
    let estate = estate(Limits::default()).await;
    let outage = Requirement {
        role: Some(Role::Owner),
        regions: ["us-west1".to_owned()].into_iter().collect(),
        simulation: true,
    };
    let check = |platform: Platform, requirement: Requirement| {
        let clock = estate.clock;
        async move {
            let mut problems = Problems::default();
            firedrill_providers::atlas::preflight::preflight(
                "prod-1",
                &requirement,
                &platform,
                &clock,
                &mut problems,
            )
            .await;
            problems.to_string()
        }
    };
    assert_eq!(
        check(estate.platform("owner", REGIONS), outage.clone()).await,
        ""
    );
    let reader = check(estate.platform("reader", REGIONS), outage.clone()).await;
    assert!(reader.contains("needs the Project Owner role"), "{reader}");
    assert!(reader.contains("nothing was injected"), "{reader}");
    assert!(!reader.contains(READER.1), "{reader}");
    // A service account with Cluster Manager may fail over, not simulate.
    let failover = Requirement {
        role: Some(Role::ClusterManager),
        ..Requirement::default()
    };
    assert_eq!(
        check(estate.platform("account", REGIONS), failover).await,
        ""
    );
    let account = check(estate.platform("account", REGIONS), outage.clone()).await;
    assert!(account.contains("Project Owner"), "{account}");
    let elsewhere = check(
        estate.platform("owner", "{ us-west1: EASTERN_US, us-west2: US_WEST_2 }"),
        outage.clone(),
    )
    .await;
    assert!(
        elsewhere.contains("region \"us-west1\" (GCP EASTERN_US) holds no electable node"),
        "{elsewhere}"
    );
    let client = estate.client(&estate.platform("owner", REGIONS));
    client
        .start_outage(&["US_WEST_2".into()])
        .await
        .expect("start");
    let busy = check(estate.platform("owner", REGIONS), outage).await;
    assert!(
        busy.contains("an outage simulation of US_WEST_2 is"),
        "{busy}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_request_is_retried_after_the_wait_atlas_names() {
    // Two requests, then one more every 30 platform seconds (0.3 s of wall time here).
    let estate = estate(Limits {
        capacity: 2,
        refill: 1,
        refill_every: Duration::from_secs(30),
    })
    .await;
    let client = estate.client(&estate.platform("account", REGIONS));
    let start = estate.clock.now();
    for _ in 0..4 {
        client.cluster().await.expect("retried until served");
    }
    let waited = estate.clock.now().saturating_since(start);
    assert!(
        waited >= Duration::from_secs(30),
        "{waited:?}: the 429s were not waited out"
    );
}
