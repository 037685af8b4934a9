//! The embedded Toxiproxy's data path: throughput of one connection and the latency it adds to
//! a 1-byte round trip. It prints figures and asserts only that the data arrived:
//!
//! `nice -n 15 cargo bench -p firedrill-sim --bench toxiproxy` (2 GiB, 20,000 rounds); under
//! `cargo test --benches` it runs once with 16 MiB and 200 rounds.

#![allow(clippy::disallowed_macros)] // the figures are printed for the terminal that ran it

use firedrill_core::clock::Clock;
use firedrill_sim::toxiproxy::ToxiproxyServer;
use firedrill_testkit::bench::Size;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const DEADLINE: Duration = Duration::from_secs(120);

/// A sink that reads `expected` bytes from its first client, then reports when they were all in.
async fn sink(expected: u64) -> (SocketAddr, oneshot::Receiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
    let addr = listener.local_addr().expect("sink address");
    let (done, done_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("sink accepts");
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        while got < expected {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
        assert_eq!(got, expected, "sink received too little");
        let _ = done.send(Instant::now());
    });
    (addr, done_rx)
}

async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            socket.set_nodelay(true).expect("nodelay");
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Writes `bytes` bytes in 1 MiB blocks and keeps the connection open until the sink is done.
async fn send(target: SocketAddr, bytes: u64) -> TcpStream {
    let mut client = TcpStream::connect(target).await.expect("connect");
    let block = vec![7u8; 1 << 20];
    let mut sent = 0u64;
    while sent < bytes {
        client.write_all(&block).await.expect("write");
        sent += block.len() as u64;
    }
    client
}

async fn measure_throughput(via_proxy: Option<&ToxiproxyServer>, name: &str, bytes: u64) -> f64 {
    let (sink_addr, done) = sink(bytes).await;
    let target = match via_proxy {
        Some(server) => server
            .create_proxy(name, "127.0.0.1:0", &sink_addr.to_string())
            .await
            .expect("proxy"),
        None => sink_addr,
    };
    let start = Instant::now();
    let _client = send(target, bytes).await;
    let end = tokio::time::timeout(DEADLINE, done)
        .await
        .expect("sink done in time")
        .expect("sink reports");
    bytes as f64 / end.duration_since(start).as_secs_f64()
}

async fn p50_round_trip(target: SocketAddr, rounds: usize) -> Duration {
    let mut client = TcpStream::connect(target).await.expect("connect");
    client.set_nodelay(true).expect("nodelay");
    let mut samples = Vec::with_capacity(rounds);
    let mut byte = [0u8; 1];
    for _ in 0..rounds {
        let start = Instant::now();
        client.write_all(b"x").await.expect("write");
        client.read_exact(&mut byte).await.expect("read");
        samples.push(start.elapsed());
    }
    samples.sort();
    samples[rounds / 2]
}

async fn data_path_throughput_and_added_latency(size: Size) {
    let server = ToxiproxyServer::start(
        "127.0.0.1:0".parse().expect("valid address"),
        Clock::real(),
        0,
    )
    .await
    .expect("embedded Toxiproxy starts");
    let bytes = size.pick(2u64 << 30, 16 << 20);
    let direct = measure_throughput(None, "direct", bytes).await;
    let proxied = measure_throughput(Some(&server), "bulk", bytes).await;
    println!(
        "throughput, one connection, {} MiB: direct {:.2} GB/s, through the proxy {:.2} GB/s",
        bytes >> 20,
        direct / 1e9,
        proxied / 1e9
    );

    let echo_addr = echo().await;
    let proxy = server
        .create_proxy("echo", "127.0.0.1:0", &echo_addr.to_string())
        .await
        .expect("proxy");
    let rounds = size.pick(20_000, 200);
    let direct_rtt = p50_round_trip(echo_addr, rounds).await;
    let proxied_rtt = p50_round_trip(proxy, rounds).await;
    println!(
        "p50 round trip of 1 byte over {rounds} rounds: direct {direct_rtt:?}, through the proxy {proxied_rtt:?}, added {:?}",
        proxied_rtt.saturating_sub(direct_rtt)
    );
    server.shutdown().await.expect("clean shutdown");
}

firedrill_testkit::bench_main!(data_path_throughput_and_added_latency);
