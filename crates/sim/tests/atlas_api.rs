//! The embedded Atlas Administration API's refusals over plain HTTP, in the shape Atlas
//! documents (`error`, `errorCode`, `detail`, `reason`, `parameters`): an unauthenticated call,
//! a media type without a served version, another project, an unknown cluster, a missing role,
//! a bad body, a change while one is in progress and an unknown resource each get Atlas's
//! status and error code, and nothing changes.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use firedrill_core::clock::Clock;
use firedrill_sim::atlas::{AtlasApi, AtlasSpec, ServiceAccount};
use firedrill_sim::mongo::{MemberSpec, ReplicaSet, ReplicaSetSpec};
use firedrill_testkit::atlas::{self, PROJECT};
use serde_json::{Value, json};

const CLUSTERS: &str = "2024-08-05";
const OUTAGE: &str = "2023-01-01";

struct Api {
    api: AtlasApi,
    http: reqwest::Client,
    _set: Arc<ReplicaSet>,
}

/// A cluster `prod-1` over two regions, and service accounts `owner` (Project Owner) and
/// `reader` (Project Read Only).
async fn start() -> Api {
    let clock = Clock::scaled(100.0).expect("scale");
    let spec = ReplicaSetSpec {
        name: "rs-prod-1".into(),
        members: vec![
            MemberSpec::new("us-west1", 7.0),
            MemberSpec::new("us-west1", 7.0),
            MemberSpec::new("us-west2", 6.0),
        ],
        seed: 11,
        timing: firedrill_sim::mongo::Timing::default(),
    };
    let set = Arc::new(ReplicaSet::start(spec, clock).await.expect("set starts"));
    let account = |id: &str, role: &str| ServiceAccount {
        client_id: id.into(),
        secret: format!("{id}-s3cret"),
        roles: vec![role.into()],
    };
    let spec = AtlasSpec {
        accounts: vec![
            account("owner", "GROUP_OWNER"),
            account("reader", "GROUP_READ_ONLY"),
        ],
        ..atlas::one_cluster(
            &set,
            &[("WESTERN_US", "us-west1", 7), ("US_WEST_2", "us-west2", 6)],
        )
    };
    let api = atlas::start(spec, clock).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    Api {
        api,
        http,
        _set: set,
    }
}

/// One call: status, body, and the headers asked for.
struct Answer {
    status: u16,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// Asserts an Atlas error body with this status and code; returns its detail.
    fn refused(&self, status: u16, code: &str) -> String {
        assert_eq!(
            (self.status, self.body["errorCode"].as_str()),
            (status, Some(code)),
            "{}",
            self.body
        );
        assert_eq!(self.body["error"], status, "{}", self.body);
        assert!(self.body["reason"].is_string(), "{}", self.body);
        assert!(self.body["parameters"].is_array(), "{}", self.body);
        self.body["detail"].as_str().expect("a detail").to_owned()
    }
}

impl Api {
    /// A bearer token for service account `id`.
    async fn token(&self, id: &str) -> String {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{id}-s3cret"));
        let answer = self
            .http
            .post(format!("{}/api/oauth/token", self.api.url))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .expect("token answered");
        assert_eq!(answer.status().as_u16(), 200);
        let body: Value = answer.json().await.expect("token JSON");
        body["access_token"].as_str().expect("a token").to_owned()
    }

    /// `method path` with `token` (if any), asking for `version`, with `body` (if any).
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        version: &str,
        body: Option<&str>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api.url))
            .header("accept", format!("application/vnd.atlas.{version}+json"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let answer = request.send().await.expect("answered");
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        let text = answer.text().await.expect("body");
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        }
    }
}

fn cluster_path(group: &str, name: &str) -> String {
    format!("/api/atlas/v2/groups/{group}/clusters/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_call_what_is_refused_as_atlas_refuses_it() {
    let api = start().await;
    let prod1 = cluster_path(PROJECT, "prod-1");

    // Unauthenticated, even for another project: 401 with a digest challenge.
    for path in [&prod1, &cluster_path("0123456789abcdef01234567", "prod-1")] {
        let answer = api.call("GET", path, None, CLUSTERS, None).await;
        answer.refused(401, "UNAUTHORIZED");
        let challenge = answer.headers["www-authenticate"].to_str().expect("ASCII");
        assert!(challenge.starts_with("Digest "), "{challenge}");
    }
    let wrong = api
        .http
        .post(format!("{}/api/oauth/token", api.api.url))
        .header("authorization", "Basic b3duZXI6d3Jvbmc=")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("answered");
    assert_eq!(wrong.status().as_u16(), 401);
    let wrong: Value = wrong.json().await.expect("JSON");
    assert_eq!(wrong["errorCode"], "INVALID_CLIENT");
    assert!(!wrong.to_string().contains("wrong"), "no echo: {wrong}");

    let reader = api.token("reader").await;
    let reader = Some(reader.as_str());
    // A version this resource does not have.
    let detail = api
        .call("GET", &prod1, reader, OUTAGE, None)
        .await
        .refused(406, "INVALID_VERSION_DATE");
    assert!(
        detail.contains("application/vnd.atlas.2024-08-05+json"),
        "{detail}"
    );
    // Another project, an unknown cluster, an unknown resource.
    let other = cluster_path("0123456789abcdef01234567", "prod-1");
    let detail = api
        .call("GET", &other, reader, CLUSTERS, None)
        .await
        .refused(404, "GROUP_NOT_FOUND");
    assert_eq!(detail, "No group with ID 0123456789abcdef01234567 exists.");
    let detail = api
        .call(
            "GET",
            &cluster_path(PROJECT, "nope"),
            reader,
            CLUSTERS,
            None,
        )
        .await
        .refused(404, "CLUSTER_NOT_FOUND");
    assert_eq!(
        detail,
        format!("No cluster named nope exists in group {PROJECT}.")
    );
    api.call(
        "GET",
        &format!("/api/atlas/v2/groups/{PROJECT}/widgets"),
        reader,
        CLUSTERS,
        None,
    )
    .await
    .refused(404, "RESOURCE_NOT_FOUND");
    // Read Only reads, and may not change or simulate.
    let read = api.call("GET", &prod1, reader, CLUSTERS, None).await;
    assert_eq!(
        (read.status, read.body["name"].as_str()),
        (200, Some("prod-1"))
    );
    assert_eq!(
        read.headers["content-type"],
        "application/vnd.atlas.2024-08-05+json"
    );
    let detail = api
        .call("PATCH", &prod1, reader, CLUSTERS, Some("{}"))
        .await
        .refused(403, "USER_UNAUTHORIZED");
    assert!(detail.contains("PATCH"), "{detail}");
    api.call(
        "POST",
        &format!("{prod1}/outageSimulation"),
        reader,
        OUTAGE,
        Some(r#"{"outageFilters":[{"type":"REGION","cloudProvider":"GCP","regionName":"US_WEST_2"}]}"#),
    )
    .await
    .refused(403, "USER_UNAUTHORIZED");
    let status = api.api.status("prod-1").expect("cluster");
    assert_eq!((status.state.as_str(), status.simulation), ("IDLE", None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_changes_are_refused_and_change_nothing() {
    let api = start().await;
    let prod1 = cluster_path(PROJECT, "prod-1");
    let owner = api.token("owner").await;
    let owner = Some(owner.as_str());
    let before = api.api.status("prod-1").expect("cluster").priorities;

    api.call("PATCH", &prod1, owner, CLUSTERS, Some("not json"))
        .await
        .refused(400, "INVALID_JSON");
    let flip = |first: (&str, i64), second: (&str, i64)| {
        json!({"replicationSpecs": [{"regionConfigs": [
            {"providerName": "GCP", "regionName": first.0, "priority": first.1, "electableSpecs": {"nodeCount": if first.0 == "WESTERN_US" { 2 } else { 1 }}},
            {"providerName": "GCP", "regionName": second.0, "priority": second.1, "electableSpecs": {"nodeCount": if second.0 == "WESTERN_US" { 2 } else { 1 }}},
        ]}]})
        .to_string()
    };
    for (body, says) in [
        (
            flip(("US_WEST_2", 7), ("WESTERN_US", 7)),
            "priorities [7, 6]",
        ),
        (
            flip(("WESTERN_US", 6), ("US_WEST_2", 7)),
            "descending order",
        ),
        (
            flip(("US_EAST_4", 7), ("WESTERN_US", 6)),
            "not one of this cluster's",
        ),
    ] {
        let detail = api
            .call("PATCH", &prod1, owner, CLUSTERS, Some(&body))
            .await
            .refused(400, "INVALID_REGION_PRIORITY");
        assert!(detail.contains(says), "{says:?} not in {detail:?}");
    }
    assert_eq!(
        api.api.status("prod-1").expect("cluster").priorities,
        before
    );
    let detail = api
        .call(
            "DELETE",
            &format!("{prod1}/outageSimulation"),
            owner,
            OUTAGE,
            None,
        )
        .await
        .refused(404, "CLUSTER_OUTAGE_SIMULATION_NOT_FOUND");
    assert_eq!(detail, "No outage simulation found for cluster prod-1.");
    let detail = api
        .call(
            "POST",
            &format!("{prod1}/outageSimulation"),
            owner,
            OUTAGE,
            Some(r#"{"outageFilters":[{"type":"REGION","cloudProvider":"GCP","regionName":"WESTERN_US"},{"type":"REGION","cloudProvider":"GCP","regionName":"US_WEST_2"}]}"#),
        )
        .await
        .refused(400, "INVALID_OUTAGE_FILTERS");
    assert!(detail.contains("cannot take out every region"), "{detail}");

    // A valid flip starts an update; a second change while it runs is a conflict.
    let accepted = api
        .call(
            "PATCH",
            &prod1,
            owner,
            CLUSTERS,
            Some(&flip(("US_WEST_2", 7), ("WESTERN_US", 6))),
        )
        .await;
    assert_eq!(
        (accepted.status, accepted.body["stateName"].as_str()),
        (200, Some("UPDATING")),
        "{}",
        accepted.body
    );
    let detail = api
        .call(
            "PATCH",
            &prod1,
            owner,
            CLUSTERS,
            Some(&flip(("WESTERN_US", 7), ("US_WEST_2", 6))),
        )
        .await
        .refused(409, "CLUSTER_UPDATE_IN_PROGRESS");
    assert_eq!(detail, "Cluster prod-1 is UPDATING; wait until it is IDLE.");
}
