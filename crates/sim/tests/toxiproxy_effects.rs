//! Measured effects of toxics through the embedded Toxiproxy, with small local servers.
//!
//! Timing: tests on `Clock::real()` measure wall time directly; tests on a scaled clock convert
//! the measured wall time to platform time with the same clock and check that (a toxic's
//! attributes are platform durations).

#![allow(clippy::disallowed_macros)] // measurements and diagnostics printed for `--nocapture`

use firedrill_core::clock::Clock;
use firedrill_sim::toxiproxy::ToxiproxyServer;
use serde_json::json;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Deadline of any single wait in these tests.
const DEADLINE: Duration = Duration::from_secs(10);

/// An echo server: answers every byte it reads, until the client closes.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind echo server");
    let addr = listener.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            socket.set_nodelay(true).expect("nodelay");
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if socket.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A server that sends `len` bytes of a known pattern to every client, then closes.
async fn source_server(len: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind source server");
    let addr = listener.local_addr().expect("source address");
    // Built before accepting so that timing starts when the bytes are ready.
    let data = std::sync::Arc::new(pattern(len));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let data = data.clone();
            tokio::spawn(async move {
                // A write error only means the client went away early, which some tests want.
                let _ = socket.write_all(&data).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

struct Fixture {
    server: ToxiproxyServer,
    clock: Clock,
    http: reqwest::Client,
}

impl Fixture {
    async fn start(clock: Clock) -> Self {
        let server =
            ToxiproxyServer::start("127.0.0.1:0".parse().expect("valid address"), clock, 7)
                .await
                .expect("embedded Toxiproxy starts");
        Self {
            server,
            clock,
            http: reqwest::Client::new(),
        }
    }

    async fn proxy(&self, name: &str, upstream: SocketAddr) -> SocketAddr {
        self.server
            .create_proxy(name, "127.0.0.1:0", &upstream.to_string())
            .await
            .expect("proxy created")
    }

    /// An echo server behind a proxy `echo`: the proxy's address.
    async fn echo(&self) -> SocketAddr {
        self.proxy("echo", echo_server().await).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> u16 {
        let response = self
            .http
            .request(method, format!("{}{path}", self.server.url()))
            .json(&body)
            .send()
            .await
            .expect("API answers");
        response.status().as_u16()
    }

    async fn toxic(&self, proxy: &str, body: serde_json::Value) {
        let status = self
            .send(
                reqwest::Method::POST,
                &format!("/proxies/{proxy}/toxics"),
                body.clone(),
            )
            .await;
        assert_eq!(status, 200, "toxic {body} not created");
    }

    fn platform(&self, wall: Duration) -> Duration {
        self.clock.to_platform(wall)
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// One request/answer round trip of `msg`, timed.
async fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Duration {
    let start = Instant::now();
    stream.write_all(msg).await.expect("write");
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut got))
        .await
        .expect("answer in time")
        .expect("read");
    assert_eq!(got, msg, "echo altered the data");
    start.elapsed()
}

/// Reads until the end of the stream; answers the bytes and how the stream ended.
async fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut data = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("stream ends in time")
        {
            Ok(0) => return (data, Ok(())),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) => return (data, Err(e)),
        }
    }
}

fn assert_within(measured: Duration, expected: Duration, tolerance: f64, what: &str) {
    eprintln!("{what}: {measured:?} (expected {expected:?})");
    let low = expected.mul_f64(1.0 - tolerance);
    let high = expected.mul_f64(1.0 + tolerance);
    assert!(
        (low..=high).contains(&measured),
        "{what}: measured {measured:?}, expected {expected:?} ±{}%",
        tolerance * 100.0
    );
}

#[tokio::test]
async fn latency_adds_300ms_to_a_round_trip_in_real_time() {
    let f = Fixture::start(Clock::real()).await;
    let echo = echo_server().await;
    let proxy = f.proxy("echo", echo).await;
    let mut direct = connect(echo).await;
    let baseline = round_trip(&mut direct, b"ping").await;
    f.toxic(
        "echo",
        json!({"type": "latency", "attributes": {"latency": 300}}),
    )
    .await;
    let mut proxied = connect(proxy).await;
    for _ in 0..2 {
        let rtt = round_trip(&mut proxied, b"ping").await;
        assert_within(
            rtt.saturating_sub(baseline),
            Duration::from_millis(300),
            0.10,
            "added round-trip latency",
        );
    }
}

#[tokio::test]
async fn latency_is_platform_time_on_a_scaled_clock() {
    let f = Fixture::start(Clock::scaled(20.0).expect("valid scale")).await;
    let proxy = f.echo().await;
    // 6 s of platform latency, upstream this time: 300 ms of wall time.
    f.toxic(
        "echo",
        json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 6_000}}),
    )
    .await;
    let mut proxied = connect(proxy).await;
    let rtt = round_trip(&mut proxied, b"ping").await;
    assert_within(
        f.platform(rtt),
        Duration::from_secs(6),
        0.10,
        "platform round trip",
    );
}

#[tokio::test]
async fn toxics_apply_to_open_connections_and_their_removal_restores_them() {
    let f = Fixture::start(Clock::scaled(10.0).expect("valid scale")).await;
    let echo = echo_server().await;
    let proxy = f.proxy("echo", echo).await;
    let mut conn = connect(proxy).await;
    assert!(f.platform(round_trip(&mut conn, b"a").await) < Duration::from_millis(500));
    f.toxic(
        "echo",
        json!({"name": "slow", "type": "latency", "attributes": {"latency": 3000}}),
    )
    .await;
    let slow = f.platform(round_trip(&mut conn, b"b").await);
    assert_within(
        slow,
        Duration::from_secs(3),
        0.10,
        "latency on an existing connection",
    );
    assert_eq!(
        f.send(
            reqwest::Method::DELETE,
            "/proxies/echo/toxics/slow",
            json!(null)
        )
        .await,
        204
    );
    let fast = f.platform(round_trip(&mut conn, b"c").await);
    assert!(
        fast < Duration::from_millis(500),
        "latency still there after removal: {fast:?}"
    );
}

#[tokio::test]
async fn toxicity_zero_never_applies() {
    let f = Fixture::start(Clock::real()).await;
    let proxy = f.echo().await;
    f.toxic(
        "echo",
        json!({"type": "latency", "toxicity": 0.0, "attributes": {"latency": 1000}}),
    )
    .await;
    for _ in 0..5 {
        let mut conn = connect(proxy).await;
        let rtt = round_trip(&mut conn, b"ping").await;
        assert!(
            rtt < Duration::from_millis(200),
            "a toxicity-0 toxic applied: {rtt:?}"
        );
    }
}

#[tokio::test]
async fn a_disabled_proxy_refuses_connections_and_closes_open_ones() {
    let f = Fixture::start(Clock::real()).await;
    let proxy = f.echo().await;
    let mut open = connect(proxy).await;
    round_trip(&mut open, b"before").await;
    assert_eq!(
        f.send(
            reqwest::Method::PATCH,
            "/proxies/echo",
            json!({"enabled": false})
        )
        .await,
        200
    );
    let err = TcpStream::connect(proxy)
        .await
        .expect_err("a disabled proxy must refuse connections");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let (data, _) = read_to_end(&mut open).await;
    assert!(data.is_empty(), "data after the proxy went down: {data:?}");
    assert_eq!(
        f.send(
            reqwest::Method::PATCH,
            "/proxies/echo",
            json!({"enabled": true})
        )
        .await,
        200
    );
    let mut again = connect(proxy).await;
    round_trip(&mut again, b"after").await;
}

#[tokio::test]
async fn timeout_drops_data_and_closes_after_its_time() {
    let f = Fixture::start(Clock::scaled(10.0).expect("valid scale")).await;
    let proxy = f.echo().await;
    f.toxic(
        "echo",
        json!({"type": "timeout", "attributes": {"timeout": 3000}}),
    )
    .await;
    let start = Instant::now();
    let mut conn = connect(proxy).await;
    conn.write_all(b"anyone there?").await.expect("write");
    let (data, _) = read_to_end(&mut conn).await;
    assert!(
        data.is_empty(),
        "the timeout toxic let data through: {data:?}"
    );
    assert_within(
        f.platform(start.elapsed()),
        Duration::from_secs(3),
        0.10,
        "time until the close",
    );
}

#[tokio::test]
async fn reset_peer_resets_the_client_connection() {
    let f = Fixture::start(Clock::scaled(10.0).expect("valid scale")).await;
    let proxy = f.echo().await;
    f.toxic(
        "echo",
        json!({"type": "reset_peer", "attributes": {"timeout": 3000}}),
    )
    .await;
    let mut conn = connect(proxy).await;
    let start = Instant::now();
    conn.write_all(b"ping").await.expect("write");
    let (data, end) = read_to_end(&mut conn).await;
    assert!(data.is_empty(), "reset_peer let data through: {data:?}");
    let err = end.expect_err("the connection must end with an error, not a clean close");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "got {err}");
    assert_within(
        f.platform(start.elapsed()),
        Duration::from_secs(3),
        0.10,
        "time until the reset",
    );
}

#[tokio::test]
async fn bandwidth_limits_throughput_within_10_percent() {
    let f = Fixture::start(Clock::scaled(2.0).expect("valid scale")).await;
    let len = 2_000_000;
    let source = source_server(len).await;
    let proxy = f.proxy("source", source).await;
    // 1000 KB/s of platform time: 2 MB take 2 platform seconds (1 s of wall time).
    f.toxic(
        "source",
        json!({"type": "bandwidth", "attributes": {"rate": 1000}}),
    )
    .await;
    let start = Instant::now();
    let mut conn = connect(proxy).await;
    let (data, end) = read_to_end(&mut conn).await;
    end.expect("clean end of stream");
    assert_eq!(data.len(), len);
    let elapsed = f.platform(start.elapsed());
    let rate = len as f64 / elapsed.as_secs_f64() / 1000.0;
    eprintln!("bandwidth: {rate:.0} KB/s over {elapsed:?} platform");
    assert!(
        (900.0..=1100.0).contains(&rate),
        "throughput {rate:.0} KB/s, expected 1000 KB/s ±10% ({elapsed:?})"
    );
}

#[tokio::test]
async fn limit_data_closes_after_n_bytes() {
    let f = Fixture::start(Clock::real()).await;
    let source = source_server(100_000).await;
    let proxy = f.proxy("source", source).await;
    f.toxic(
        "source",
        json!({"type": "limit_data", "attributes": {"bytes": 1000}}),
    )
    .await;
    let mut conn = connect(proxy).await;
    let (data, _) = read_to_end(&mut conn).await;
    assert_eq!(data, pattern(1000), "exactly the first 1000 bytes");
}

#[tokio::test]
async fn slicer_still_delivers_every_byte_in_order() {
    let f = Fixture::start(Clock::scaled(10.0).expect("valid scale")).await;
    let len = 50_000;
    let source = source_server(len).await;
    let proxy = f.proxy("source", source).await;
    f.toxic("source", json!({"type": "slicer", "attributes": {"average_size": 100, "size_variation": 20, "delay": 10}})).await;
    let mut conn = connect(proxy).await;
    let (data, end) = read_to_end(&mut conn).await;
    end.expect("clean end of stream");
    assert_eq!(data.len(), len);
    assert!(data == pattern(len), "slicer altered or reordered data");
}

#[tokio::test]
async fn slow_close_delays_the_close() {
    let f = Fixture::start(Clock::scaled(10.0).expect("valid scale")).await;
    let source = source_server(10).await;
    let proxy = f.proxy("source", source).await;
    f.toxic(
        "source",
        json!({"type": "slow_close", "attributes": {"delay": 3000}}),
    )
    .await;
    let start = Instant::now();
    let mut conn = connect(proxy).await;
    let (data, end) = read_to_end(&mut conn).await;
    end.expect("clean end of stream");
    assert_eq!(data, pattern(10));
    assert_within(
        f.platform(start.elapsed()),
        Duration::from_secs(3),
        0.15,
        "time until the close",
    );
}

#[tokio::test]
async fn shutdown_stops_the_api_and_every_proxy() {
    let f = Fixture::start(Clock::real()).await;
    let proxy = f.echo().await;
    let mut open = connect(proxy).await;
    round_trip(&mut open, b"hello").await;
    let api = f.server.addr();
    f.server.shutdown().await.expect("clean shutdown");
    assert!(
        TcpStream::connect(proxy).await.is_err(),
        "proxy still listening after shutdown"
    );
    assert!(
        TcpStream::connect(api).await.is_err(),
        "API still listening after shutdown"
    );
    let (data, _) = read_to_end(&mut open).await;
    assert!(
        data.is_empty(),
        "connection still carried data after shutdown"
    );
}
