//! The Toxiproxy provider's client against the embedded server (and a lying fake, to prove the
//! read-back): every change verified, errors named, nothing silently Ok.

use axum::Router;
use axum::routing::{get, post};
use firedrill_core::clock::Clock;
use firedrill_providers::toxiproxy::{
    Error, ProxyState, Stream, ToxicKind, ToxicSpec, ToxiproxyClient,
};
use firedrill_sim::toxiproxy::{ToxiproxyServer, VERSION};
use std::net::SocketAddr;
use std::time::Duration;

async fn server() -> ToxiproxyServer {
    ToxiproxyServer::start(
        "127.0.0.1:0".parse().expect("valid address"),
        Clock::real(),
        3,
    )
    .await
    .expect("embedded Toxiproxy starts")
}

async fn upstream() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("address").to_string();
    (listener, addr)
}

/// An address where nothing listens (bound, then released).
async fn dead_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("address")
}

/// An embedded Toxiproxy with one proxy `db` in front of a listening upstream, and a client.
struct Db {
    server: ToxiproxyServer,
    client: ToxiproxyClient,
    created: ProxyState,
    up: String,
    _upstream: tokio::net::TcpListener,
}

async fn db() -> Db {
    let server = server().await;
    let client = ToxiproxyClient::new(&server.url()).expect("valid URL");
    let (upstream, up) = upstream().await;
    let created = client
        .create_proxy("db", "127.0.0.1:0", &up)
        .await
        .expect("proxy created");
    Db {
        server,
        client,
        created,
        up,
        _upstream: upstream,
    }
}

impl Db {
    /// Adds a toxic to `db` straight through the HTTP API, behind the client's back.
    async fn add_behind_the_back(&self, toxic: &'static str) {
        let added = reqwest::Client::new()
            .post(format!("{}/proxies/db/toxics", self.server.url()))
            .body(toxic)
            .send()
            .await
            .expect("API answers");
        assert_eq!(added.status().as_u16(), 200);
    }
}

fn latency(name: &str, ms: u64) -> ToxicSpec {
    ToxicSpec::new(
        name,
        Stream::Downstream,
        ToxicKind::latency(Duration::from_millis(ms), Duration::ZERO),
    )
}

#[tokio::test]
async fn reads_version_and_proxies() {
    let server = server().await;
    let client = ToxiproxyClient::new(&server.url()).expect("valid URL");
    assert_eq!(client.version().await.expect("version"), VERSION);
    assert!(client.proxies().await.expect("list").is_empty());
    let (_keep, up) = upstream().await;
    let created = client
        .create_proxy("db", "127.0.0.1:0", &up)
        .await
        .expect("proxy created");
    assert!(created.enabled);
    assert_eq!(created.upstream, up);
    assert_ne!(
        created
            .listen
            .parse::<SocketAddr>()
            .expect("resolved listen")
            .port(),
        0
    );
    let all = client.proxies().await.expect("list");
    assert_eq!(all.keys().collect::<Vec<_>>(), ["db"]);
    assert_eq!(client.proxy("db").await.expect("read"), created);
}

#[tokio::test]
async fn a_duplicate_proxy_or_toxic_is_an_error_not_silently_ok() {
    let db = db().await;
    let (server, client) = (&db.server, &db.client);
    match client.create_proxy("db", "127.0.0.1:0", &db.up).await {
        Err(Error::ProxyAlreadyExists { proxy, url }) => {
            assert_eq!(proxy, "db");
            assert_eq!(url, server.url());
        }
        other => panic!("expected ProxyAlreadyExists, got {other:?}"),
    }
    client
        .add_toxic("db", &latency("drill-1", 100))
        .await
        .expect("toxic added");
    match client.add_toxic("db", &latency("drill-1", 200)).await {
        Err(e @ Error::ToxicAlreadyExists { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("drill-1") && text.contains("\"db\"") && text.contains(&server.url()),
                "{text}"
            );
        }
        other => panic!("expected ToxicAlreadyExists, got {other:?}"),
    }
    // The first toxic is untouched by the refused second one.
    let state = client.proxy("db").await.expect("read");
    assert_eq!(
        state.toxic("drill-1").expect("still there").attributes["latency"],
        100
    );
}

#[tokio::test]
async fn every_toxic_kind_is_added_and_verified() {
    let db = db().await;
    let client = &db.client;
    let specs = [
        latency("lat", 300),
        ToxicSpec::new(
            "bw",
            Stream::Upstream,
            ToxicKind::Bandwidth { rate_kb_per_s: 50 },
        ),
        ToxicSpec::new(
            "sc",
            Stream::Downstream,
            ToxicKind::SlowClose { delay_ms: 10 },
        ),
        ToxicSpec::new(
            "to",
            Stream::Upstream,
            ToxicKind::timeout(Duration::from_secs(2)),
        )
        .with_toxicity(0.0),
        ToxicSpec::new(
            "rst",
            Stream::Downstream,
            ToxicKind::reset_peer(Duration::from_millis(5)),
        )
        .with_toxicity(0.5),
        ToxicSpec::new(
            "sl",
            Stream::Downstream,
            ToxicKind::Slicer {
                average_size: 64,
                size_variation: 8,
                delay_us: 10,
            },
        ),
        ToxicSpec::new(
            "ld",
            Stream::Downstream,
            ToxicKind::LimitData { bytes: 4096 },
        ),
    ];
    for spec in &specs {
        let toxic = client
            .add_toxic("db", spec)
            .await
            .unwrap_or_else(|e| panic!("{} not added: {e}", spec.name));
        assert_eq!(toxic.name, spec.name);
        assert_eq!(toxic.toxic_type, spec.kind.type_name());
        assert_eq!(toxic.stream, spec.stream.as_str());
        assert!((toxic.toxicity - spec.toxicity).abs() < f32::EPSILON);
    }
    assert_eq!(
        client.proxy("db").await.expect("read").toxics.len(),
        specs.len()
    );

    let mut slower = latency("lat", 500);
    slower.toxicity = 0.75;
    let updated = client.update_toxic("db", &slower).await.expect("updated");
    assert_eq!(updated.attributes["latency"], 500);
    assert!((updated.toxicity - 0.75).abs() < f32::EPSILON);
    match client.update_toxic("db", &latency("ghost", 1)).await {
        Err(Error::ToxicNotFound { toxic, .. }) => assert_eq!(toxic, "ghost"),
        other => panic!("expected ToxicNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn removing_a_toxic_leaves_the_others_and_is_idempotent() {
    let db = db().await;
    let client = &db.client;
    // Someone else's toxic, added behind the client's back.
    db.add_behind_the_back(r#"{"name":"theirs","type":"latency","attributes":{"latency":5}}"#)
        .await;
    client
        .add_toxic("db", &latency("ours", 100))
        .await
        .expect("added");

    assert!(
        client.remove_toxic("db", "ours").await.expect("removed"),
        "first removal removes"
    );
    assert!(
        !client
            .remove_toxic("db", "ours")
            .await
            .expect("second removal is Ok"),
        "second removal finds nothing"
    );
    let state = client.proxy("db").await.expect("read");
    assert_eq!(
        state
            .toxics
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["theirs"]
    );
    match client.remove_toxic("nope", "ours").await {
        Err(Error::ProxyNotFound { proxy, .. }) => assert_eq!(proxy, "nope"),
        other => panic!("expected ProxyNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn set_enabled_takes_the_proxy_down_and_up() {
    let db = db().await;
    let (client, created) = (&db.client, &db.created);
    let down = client.set_enabled("db", false).await.expect("disabled");
    assert!(!down.enabled);
    assert!(
        tokio::net::TcpStream::connect(&created.listen)
            .await
            .is_err(),
        "down means refused"
    );
    let again = client
        .set_enabled("db", false)
        .await
        .expect("disabling twice is fine");
    assert!(!again.enabled);
    assert!(
        client
            .set_enabled("db", true)
            .await
            .expect("enabled")
            .enabled
    );
    tokio::net::TcpStream::connect(&created.listen)
        .await
        .expect("up again on the same address");
    match client.set_enabled("ghost", false).await {
        Err(e @ Error::ProxyNotFound { .. }) => assert!(e.to_string().contains("\"ghost\""), "{e}"),
        other => panic!("expected ProxyNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn reset_all_is_explicit_and_verified() {
    let db = db().await;
    let client = &db.client;
    client
        .add_toxic("db", &latency("lat", 10))
        .await
        .expect("added");
    client.set_enabled("db", false).await.expect("disabled");
    client.reset_all().await.expect("reset");
    let state = client.proxy("db").await.expect("read");
    assert!(state.enabled && state.toxics.is_empty(), "{state:?}");
}

#[tokio::test]
async fn absurd_attributes_are_rejected_before_any_http_call() {
    // Nothing listens there: an HTTP call would fail with Unreachable, not InvalidToxic.
    let client =
        ToxiproxyClient::new(&format!("http://{}", dead_address().await)).expect("valid URL");
    for spec in [
        latency("lat", 4 * 3_600_000),
        latency("lat", 10).with_toxicity(2.0),
        ToxicSpec::new(
            "lat",
            Stream::Upstream,
            ToxicKind::Latency {
                latency_ms: -5,
                jitter_ms: 0,
            },
        ),
        ToxicSpec::new(
            "bw",
            Stream::Upstream,
            ToxicKind::Bandwidth { rate_kb_per_s: 0 },
        ),
    ] {
        match client.add_toxic("db", &spec).await {
            Err(e @ Error::InvalidToxic { .. }) => assert!(e.to_string().contains("hint:"), "{e}"),
            other => panic!("expected InvalidToxic for {spec:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unreachable_toxiproxy_is_a_clear_error_naming_the_url() {
    let url = format!("http://{}", dead_address().await);
    let client = ToxiproxyClient::new(&url).expect("valid URL");
    let version = client.version().await.expect_err("nothing listens");
    let add = client
        .add_toxic("db", &latency("lat", 10))
        .await
        .expect_err("nothing listens");
    let read = client.proxy("db").await.expect_err("nothing listens");
    for e in [version, add, read] {
        assert!(
            matches!(e, Error::Unreachable { .. }),
            "expected Unreachable, got {e:?}"
        );
        let text = e.to_string();
        assert!(text.contains(&url) && text.contains("hint:"), "{text}");
    }
    assert!(matches!(
        ToxiproxyClient::new("ftp://x"),
        Err(Error::InvalidUrl { .. })
    ));
}

/// A server that says yes to every change and applies none of them.
async fn lying_toxiproxy() -> String {
    let proxy = r#"{"name":"db","listen":"127.0.0.1:1","upstream":"127.0.0.1:2","enabled":true,"toxics":[]}"#;
    let app = Router::new()
        .route(
            "/proxies/{p}",
            get(move || async move { proxy })
                .post(move || async move { proxy })
                .patch(move || async move { proxy }),
        )
        .route("/proxies/{p}/toxics", post(|| async { "{}" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_change_that_did_not_take_effect_is_an_error() {
    let client = ToxiproxyClient::new(&lying_toxiproxy().await).expect("valid URL");
    match client.add_toxic("db", &latency("lat", 10)).await {
        Err(e @ Error::NotApplied { .. }) => assert!(e.to_string().contains("\"lat\""), "{e}"),
        other => panic!("expected NotApplied, got {other:?}"),
    }
    assert!(matches!(
        client.set_enabled("db", false).await,
        Err(Error::NotApplied { .. })
    ));
}

#[tokio::test]
async fn toxics_toxiproxy_rust_cannot_read_are_still_read() {
    // toxiproxy_rust reads attributes as u32; a toxic someone else added with a bigger value
    // must not make the proxy unreadable.
    let db = db().await;
    let client = &db.client;
    db.add_behind_the_back(
        r#"{"name":"big","type":"limit_data","attributes":{"bytes":5000000000}}"#,
    )
    .await;
    let state = client
        .proxy("db")
        .await
        .expect("read despite the big attribute");
    assert_eq!(
        state.toxic("big").expect("listed").attributes["bytes"],
        5_000_000_000_i64
    );
    assert!(
        client
            .proxies()
            .await
            .expect("list despite the big attribute")
            .contains_key("db")
    );
    client
        .add_toxic("db", &latency("ours", 10))
        .await
        .expect("added and verified");
}
