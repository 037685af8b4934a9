//! The embedded Kubernetes API server's answers to the requests issue 17 found answered wrong:
//! each test checks the exact answer (objects, codes, messages) over plain HTTP.

use std::time::{Duration, SystemTime};

use firedrill_core::clock::Clock;
use firedrill_sim::kube::{Cluster, ClusterSpec};
use serde_json::{Value, json};

async fn cluster(scale: f64) -> Cluster {
    let clock = Clock::scaled(scale).expect("valid scale");
    let spec = ClusterSpec::new("us-west1", clock)
        .zone("us-west1-a", &[("prod-1", 2)])
        .zone("us-west1-b", &[("prod-1", 2)])
        .namespace("prod-1")
        .deployment("prod-1", "web", 2, Some("prod-1"))
        .seed(3)
        .warm();
    Cluster::start(spec).await.expect("cluster starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

async fn send(c: &Cluster, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client().request(method, format!("{}{path}", c.url()));
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.expect("request sent");
    let code = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(c: &Cluster, path: &str) -> (u16, Value) {
    send(c, "GET", path, None).await
}

async fn post(c: &Cluster, path: &str, body: Value) -> (u16, Value) {
    send(c, "POST", path, Some(body)).await
}

async fn delete(c: &Cluster, path: &str) -> (u16, Value) {
    send(c, "DELETE", path, None).await
}

/// Polls `check` (every 10 ms, at most 10 s) until it returns Some.
async fn until<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    firedrill_testkit::until(what, Duration::from_secs(10), check).await
}

fn secs(t: SystemTime) -> i64 {
    i64::try_from(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .expect("after the epoch")
            .as_secs(),
    )
    .expect("fits")
}

fn parse_stamp(s: &str) -> i64 {
    // 2026-11-26T09:31:17Z
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().expect("digits");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (y, mp) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + n(11..13) * 3_600 + n(14..16) * 60 + n(17..19)
}

#[tokio::test]
async fn timestamps_stay_on_the_wall_clock_under_compression() {
    let c = cluster(1_000.0).await;
    // Let 30 platform seconds pass (30 ms of wall time at 1000x) before the write: the old
    // mapping stamped objects that far ahead of the wall clock.
    let clock_start = SystemTime::now();
    until("30 platform seconds", || {
        (SystemTime::now()
            .duration_since(clock_start)
            .unwrap_or_default()
            > Duration::from_millis(40))
        .then_some(())
    })
    .await;
    let (code, cm) = post(
        &c,
        "/api/v1/namespaces/prod-1/configmaps",
        json!({"metadata": {"name": "stamp"}}),
    )
    .await;
    assert_eq!(code, 201, "{cm}");
    let created = parse_stamp(cm["metadata"]["creationTimestamp"].as_str().expect("stamp"));
    let now = secs(SystemTime::now());
    assert!(
        (now - 2..=now).contains(&created),
        "creationTimestamp {created} is not the wall clock's {now}"
    );
}

#[tokio::test]
async fn the_failover_deployments_carry_a_deadline_for_a_cold_pool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let estate = firedrill_sim::KubeEstate::start(
        Clock::scaled(1_000.0).expect("scale"),
        1,
        &|r| r.to_owned(),
        dir.path().join("kubeconfig"),
    )
    .await
    .expect("estate starts");
    let deadline = |region: &str| {
        estate
            .cluster(region)
            .expect("cluster")
            .object("deployments", "prod-1", "storefront")
            .expect("storefront")["spec"]["progressDeadlineSeconds"]
            .clone()
    };
    assert_eq!(deadline("us-west2"), json!(1_800));
    assert_eq!(deadline("us-west1"), json!(600));
}

#[tokio::test]
async fn secret_string_data_is_stored_as_base64_data() {
    let c = cluster(100.0).await;
    let (code, secret) = post(&c, "/api/v1/namespaces/prod-1/secrets", json!({"metadata": {"name": "db"}, "stringData": {"password": "s3cr3t"}, "data": {"user": "YWRtaW4="}})).await;
    assert_eq!(code, 201, "{secret}");
    assert_eq!(
        secret["data"],
        json!({"user": "YWRtaW4=", "password": "czNjcjN0"})
    );
    assert_eq!(secret["type"], "Opaque");
    assert!(secret.get("stringData").is_none(), "{secret}");
    let (code, status) = post(
        &c,
        "/api/v1/namespaces/prod-1/secrets",
        json!({"metadata": {"name": "bad"}, "data": {"k": "not base64!"}}),
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3")),
        "{status}"
    );
}

#[tokio::test]
async fn services_get_a_cluster_ip_endpoints_and_endpoint_slices() {
    let c = cluster(1_000.0).await;
    let (code, svc) = post(&c, "/api/v1/namespaces/prod-1/services", json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})).await;
    assert_eq!(code, 201, "{svc}");
    let ip = svc["spec"]["clusterIP"].as_str().expect("a cluster IP");
    assert!(ip.starts_with("10.9"), "{ip}");
    assert_eq!(svc["spec"]["clusterIPs"], json!([ip]));
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"port": 80, "targetPort": 8080, "protocol": "TCP"}])
    );
    let pods: Vec<String> = c
        .objects("pods", Some("prod-1"))
        .iter()
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(pods.len(), 2);
    let ep = until("Endpoints of web list both pods", || {
        let ep = c.object("endpoints", "prod-1", "web")?;
        (ep["subsets"][0]["addresses"].as_array()?.len() == 2).then_some(ep)
    })
    .await;
    let mut ips: Vec<&str> = ep["subsets"][0]["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .filter_map(|a| a["ip"].as_str())
        .collect();
    ips.sort_unstable();
    let mut want: Vec<&str> = pods.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(ips, want);
    assert_eq!(
        ep["subsets"][0]["ports"],
        json!([{"port": 8080, "protocol": "TCP"}])
    );
    let slices = c.objects("endpointslices", Some("prod-1"));
    let slice = slices
        .iter()
        .find(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "web")
        .expect("a slice of web");
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(slice["endpoints"].as_array().map(Vec::len), Some(2));
    assert_eq!(slice["endpoints"][0]["conditions"]["ready"], true);
    assert_eq!(slice["ports"], json!([{"port": 8080, "protocol": "TCP"}]));
    // The cluster IP cannot change; an update without one keeps it.
    let mut changed = svc.clone();
    changed["spec"]["clusterIP"] = json!("10.96.7.7");
    changed["spec"]["clusterIPs"] = json!(["10.96.7.7"]);
    let (code, status) = send(
        &c,
        "PUT",
        "/api/v1/namespaces/prod-1/services/web",
        Some(changed),
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("may not change once set")),
        "{status}"
    );
    // Deleting the service deletes what the controllers wrote for it.
    let (code, _) = delete(&c, "/api/v1/namespaces/prod-1/services/web").await;
    assert_eq!(code, 200);
    until("web's endpoints and slices are gone", || {
        (c.object("endpoints", "prod-1", "web").is_none()
            && c.objects("endpointslices", Some("prod-1")).is_empty())
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn lists_page_with_limit_and_continue_at_the_first_pages_version() {
    let c = cluster(100.0).await;
    for i in 0..5 {
        let (code, _) = post(
            &c,
            "/api/v1/namespaces/prod-1/configmaps",
            json!({"metadata": {"name": format!("cm-{i}")}}),
        )
        .await;
        assert_eq!(code, 201);
    }
    let (code, page) = get(&c, "/api/v1/namespaces/prod-1/configmaps?limit=2").await;
    assert_eq!(code, 200, "{page}");
    let continue_token = |p: &Value| -> String {
        p["metadata"]["continue"]
            .as_str()
            .unwrap_or_else(|| panic!("a continue token in {p}"))
            .to_owned()
    };
    let next_page = async |token: &str| {
        get(
            &c,
            &format!("/api/v1/namespaces/prod-1/configmaps?limit=2&continue={token}"),
        )
        .await
    };
    let names = |p: &Value| -> Vec<String> {
        p["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|o| o["metadata"]["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(names(&page), ["cm-0", "cm-1"]);
    assert_eq!(page["metadata"]["remainingItemCount"], 3);
    let token = continue_token(&page);
    // A change after the first page is not seen by the next ones (they are served at the
    // first page's version), as etcd serves them.
    let (code, _) = delete(&c, "/api/v1/namespaces/prod-1/configmaps/cm-3").await;
    assert_eq!(code, 200);
    let (_, page) = next_page(&token).await;
    assert_eq!(names(&page), ["cm-2", "cm-3"]);
    let token = continue_token(&page);
    let (_, page) = next_page(&token).await;
    assert_eq!(names(&page), ["cm-4"]);
    assert!(page["metadata"].get("continue").is_none(), "{page}");
    // Once the history is compacted, the token is expired, with one to go on inconsistently.
    c.compact();
    let (code, status) = next_page(&token).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (410, Some("Expired")),
        "{status}"
    );
    assert!(
        status["message"].as_str().is_some_and(|m| m.starts_with(
            "The provided continue parameter is too old to display a consistent list result."
        )),
        "{status}"
    );
    let next = continue_token(&status);
    let (code, page) = next_page(&next).await;
    assert_eq!(code, 200);
    assert_eq!(names(&page), ["cm-4"]);
}

#[tokio::test]
async fn rules_and_self_reviews_answer_from_the_role_hook() {
    let c = cluster(100.0).await;
    let (code, review) = post(&c, "/apis/authentication.k8s.io/v1/selfsubjectreviews", json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}})).await;
    assert_eq!(code, 201, "{review}");
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "firedrill", "groups": ["system:authenticated"]})
    );
    let rules = async || {
        post(
            &c,
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            json!({"spec": {"namespace": "prod-1"}}),
        )
        .await
    };
    let (code, review) = rules().await;
    assert_eq!(code, 201, "{review}");
    assert_eq!(
        review["status"]["resourceRules"],
        json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}])
    );
    c.forbid("delete", "pods");
    let (_, review) = rules().await;
    let pods = review["status"]["resourceRules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["resources"] == json!(["pods"]))
        .cloned()
        .expect("a rule for pods");
    assert_eq!(
        pods["verbs"],
        json!([
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "deletecollection"
        ])
    );
}

#[tokio::test]
async fn kinds_not_served_are_refused_as_a_real_server_refuses_them() {
    let c = cluster(100.0).await;
    for path in [
        "/apis/batch/v1/namespaces/prod-1/jobs",
        "/apis/batch/v1/namespaces/prod-1/cronjobs",
        "/apis/autoscaling/v2/namespaces/prod-1/horizontalpodautoscalers",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    ] {
        let (code, body) = get(&c, path).await;
        assert_eq!(
            (code, body),
            (404, Value::String("404 page not found\n".into())),
            "{path}"
        );
    }
    let (code, _) = get(&c, "/apis/apps/v1/namespaces/prod-1/statefulsets").await;
    assert_eq!(code, 404, "no controller would run a StatefulSet");
    let (code, status) = get(&c, "/api/v1/namespaces/prod-1/widgets").await;
    assert_eq!(
        (code, status),
        (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "the server could not find the requested resource", "reason": "NotFound", "details": {}, "code": 404})
        )
    );
    // The kinds served as storage answer like any other.
    for (path, body) in [
        (
            "/apis/coordination.k8s.io/v1/namespaces/prod-1/leases",
            json!({"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a"}}),
        ),
        (
            "/api/v1/namespaces/prod-1/persistentvolumeclaims",
            json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/prod-1/roles",
            json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        ),
    ] {
        let (code, obj) = post(&c, path, body).await;
        assert_eq!(code, 201, "{path}: {obj}");
    }
    let pvc = c
        .object("persistentvolumeclaims", "prod-1", "data")
        .expect("claim");
    assert_eq!(pvc["status"]["phase"], "Pending");
}

#[tokio::test]
async fn tables_print_the_real_columns_for_services_and_config_maps() {
    let c = cluster(100.0).await;
    post(&c, "/api/v1/namespaces/prod-1/services", json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": 30080}]}})).await;
    post(
        &c,
        "/api/v1/namespaces/prod-1/configmaps",
        json!({"metadata": {"name": "conf"}, "data": {"a": "1", "b": "2"}}),
    )
    .await;
    let url = c.url();
    let table = async |path: &str| {
        let resp = client()
            .get(format!("{url}{path}"))
            .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
            .send()
            .await
            .expect("sent");
        resp.json::<Value>().await.expect("json")
    };
    let svc = table("/api/v1/namespaces/prod-1/services").await;
    let columns: Vec<&str> = svc["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    let cells = &svc["rows"][0]["cells"];
    assert_eq!(cells[0], "web");
    assert_eq!(cells[1], "NodePort");
    assert_eq!(cells[3], "<none>");
    assert_eq!(cells[4], "80:30080/TCP");
    assert_eq!(cells[6], "app=web");
    let cm = table("/api/v1/namespaces/prod-1/configmaps").await;
    let row = cm["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["cells"][0] == "conf")
        .expect("conf");
    assert_eq!(row["cells"][1], 2);
}

#[tokio::test]
async fn openapi_is_served_and_unknown_fields_are_dropped_or_refused_when_strict() {
    let c = cluster(100.0).await;
    let (code, index) = get(&c, "/openapi/v3").await;
    assert_eq!(code, 200);
    let url = index["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .expect("api/v1 is listed");
    let (code, doc) = get(&c, url).await;
    assert_eq!(code, 200);
    assert_eq!(
        doc["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "version": "v1", "kind": "ConfigMap"}])
    );
    let (code, v2) = get(&c, "/openapi/v2").await;
    assert_eq!((code, v2["swagger"].as_str()), (200, Some("2.0")));
    let resp = client()
        .get(format!("{}/openapi/v2", c.url()))
        .header(
            "accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 406, "protobuf OpenAPI is refused");
    let typo = json!({"metadata": {"name": "typo"}, "data": {"a": "1"}, "dta": {"b": "2"}});
    let (code, status) = post(
        &c,
        "/api/v1/namespaces/prod-1/configmaps?fieldValidation=Strict",
        typo.clone(),
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        status["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"dta\""
    );
    let (code, cm) = post(&c, "/api/v1/namespaces/prod-1/configmaps", typo).await;
    assert_eq!(code, 201);
    assert!(
        cm.get("dta").is_none(),
        "an undeclared field is dropped: {cm}"
    );
    assert_eq!(cm["data"], json!({"a": "1"}));
}
