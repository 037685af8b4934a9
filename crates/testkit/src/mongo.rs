//! In-process MongoDB replica sets as tests use them: three members over two regions, each
//! member behind a proxy of its own on the embedded Toxiproxy, and the platform file that
//! names those links as the way a killed member is cut off and brought back.

use std::path::{Path, PathBuf};

use firedrill_core::clock::Clock;
use firedrill_sim::mongo::{MemberSpec, ReplicaSet, ReplicaSetSpec, Timing};
use firedrill_sim::toxiproxy::ToxiproxyServer;

/// A replica set `name` of three members with default timing: two in `us-west1` (priorities
/// 2 and 1) and one in `us-west2` (priority 0.5), its draws seeded by `seed`.
#[must_use]
pub fn three_members(name: &str, seed: u64) -> ReplicaSetSpec {
    ReplicaSetSpec {
        name: name.to_owned(),
        members: vec![
            MemberSpec::new("us-west1", 2.0),
            MemberSpec::new("us-west1", 1.0),
            MemberSpec::new("us-west2", 0.5),
        ],
        seed,
        timing: Timing::default(),
    }
}

/// Starts `spec` with every member `i` behind a proxy `mongo-<i>` of `toxiproxy`: the set's
/// config names the proxies, so clients and the other members' heartbeats go through them.
///
/// # Panics
///
/// When a port, a proxy or the set cannot be had.
pub async fn behind_proxies(
    toxiproxy: &ToxiproxyServer,
    spec: ReplicaSetSpec,
    clock: Clock,
) -> ReplicaSet {
    let mut bound = ReplicaSet::bind(spec).await.expect("ports for the set");
    for (i, upstream) in bound.listen_addrs().iter().enumerate() {
        let listen = toxiproxy
            .create_proxy(&format!("mongo-{i}"), "127.0.0.1:0", upstream)
            .await
            .expect("a proxy for the member");
        bound.advertise(i, listen.to_string()).expect("advertise");
    }
    bound.start(clock).await.expect("the set starts")
}

/// Writes `platform.yaml` in `dir` (and the connection string in `dir/uri`) for a set started
/// by [`behind_proxies`]: namespace and database `prod-1`, every member killed through its
/// own link. `extra` is put at the top level. Returns the platform file's path.
///
/// # Panics
///
/// When a file cannot be written.
pub fn linked_platform(dir: &Path, set: &ReplicaSet, toxiproxy_url: &str, extra: &str) -> PathBuf {
    std::fs::write(dir.join("uri"), set.connection_string()).expect("uri file");
    let links: String = (0..set.hosts().len())
        .map(|i| format!("    mongo-{i}: {{ proxy: mongo-{i} }}\n"))
        .collect();
    let kill: String = set
        .hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| format!("        \"{h}\": mongo-{i}\n"))
        .collect();
    let name = set.name();
    let yaml = format!(
        "name: linked\n{extra}regions:\n  us-west1: {{ role: primary }}\n  us-west2: {{ role: failover }}\nnamespaces:\n  prod-1: {{ database: prod-1 }}\ntoxiproxy:\n  url: {toxiproxy_url}\n  links:\n{links}databases:\n  prod-1:\n    replica-set: {name}\n    uri: {{ file: uri }}\n    kill:\n      links:\n{kill}safety:\n  allow:\n    replica-sets: [{name}]\n",
    );
    let path = dir.join("platform.yaml");
    std::fs::write(&path, yaml).expect("platform");
    path
}
