//! The embedded Toxiproxy's HTTP API against what Toxiproxy 2.x answers (api.go): every route,
//! status code, error body and JSON shape, with raw HTTP.

use firedrill_core::clock::Clock;
use firedrill_sim::toxiproxy::ToxiproxyServer;
use serde_json::{Value, json};

struct Api {
    server: ToxiproxyServer,
    http: reqwest::Client,
    /// An address nobody proxies to during these tests; connecting is never needed.
    upstream: String,
    _upstream_listener: tokio::net::TcpListener,
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Asserts a Toxiproxy error answer: Go's http.Error writes the JSON as text/plain + "\n".
    fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(self.status, status, "status of {:?}", self.body);
        assert_eq!(self.content_type, "text/plain; charset=utf-8");
        assert_eq!(
            self.body,
            format!("{{\"error\":\"{message}\",\"status\":{status}}}\n")
        );
    }
}

impl Api {
    async fn start() -> Self {
        let server = ToxiproxyServer::start(
            "127.0.0.1:0".parse().expect("valid address"),
            Clock::real(),
            1,
        )
        .await
        .expect("embedded Toxiproxy starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let upstream = listener.local_addr().expect("upstream address").to_string();
        Self {
            server,
            http: reqwest::Client::new(),
            upstream,
            _upstream_listener: listener,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.server.url()));
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("API answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().expect("ascii header").to_owned())
            .unwrap_or_default();
        let body = response.text().await.expect("body readable");
        Answer {
            status,
            content_type,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &str) -> Answer {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: &str) -> Answer {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    async fn create(&self, name: &str) -> Value {
        let body =
            json!({"name": name, "listen": "127.0.0.1:0", "upstream": self.upstream}).to_string();
        let answer = self.post("/proxies", &body).await;
        assert_eq!(answer.status, 201, "create {name}: {}", answer.body);
        answer.json()
    }
}

#[tokio::test]
async fn version_is_json_since_2_7() {
    let api = Api::start().await;
    let answer = api.get("/version").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type, "application/json;charset=utf-8");
    let version = answer.json();
    let text = version["version"].as_str().expect("version is a string");
    assert!(text.starts_with("2."), "version {text}");
}

#[tokio::test]
async fn proxy_lifecycle_answers_like_toxiproxy() {
    let api = Api::start().await;
    let created = api
        .post(
            "/proxies",
            &json!({"name": "db", "listen": "127.0.0.1:0", "upstream": api.upstream}).to_string(),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.content_type, "application/json");
    let listen = created.json()["listen"]
        .as_str()
        .expect("listen")
        .to_owned();
    let port = listen
        .parse::<std::net::SocketAddr>()
        .expect("listen is an address")
        .port();
    assert_ne!(port, 0, "port 0 must be resolved to the bound port");
    // Same fields, same order as Go's struct.
    assert_eq!(
        created.body,
        format!(
            r#"{{"name":"db","listen":"{listen}","upstream":"{}","enabled":true,"toxics":[]}}"#,
            api.upstream
        )
    );
    tokio::net::TcpStream::connect(&listen)
        .await
        .expect("the proxy listens on the resolved port");

    api.post(
        "/proxies",
        &json!({"name": "db", "listen": "127.0.0.1:0", "upstream": api.upstream}).to_string(),
    )
    .await
    .assert_error(409, "proxy already exists");

    let index = api.get("/proxies").await;
    assert_eq!(index.status, 200);
    assert_eq!(
        index.json(),
        json!({"db": {"name": "db", "listen": listen, "upstream": api.upstream, "enabled": true, "toxics": []}})
    );

    let shown = api.get("/proxies/db").await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body, created.body);
    api.get("/proxies/nope")
        .await
        .assert_error(404, "proxy not found");

    let down = api.patch("/proxies/db", r#"{"enabled":false}"#).await;
    assert_eq!(down.status, 200);
    assert_eq!(down.json()["enabled"], json!(false));
    assert_eq!(
        down.json()["listen"],
        json!(listen),
        "disabling keeps the listen address"
    );
    assert!(
        tokio::net::TcpStream::connect(&listen).await.is_err(),
        "a disabled proxy refuses connections"
    );

    // POST is the deprecated spelling of PATCH and still works.
    let up = api.post("/proxies/db", r#"{"enabled":true}"#).await;
    assert_eq!(up.status, 200);
    assert_eq!(up.json()["enabled"], json!(true));
    assert_eq!(
        up.json()["listen"],
        json!(listen),
        "re-enabling listens on the same address"
    );

    let moved = api
        .patch("/proxies/db", r#"{"listen":"127.0.0.1:0"}"#)
        .await;
    assert_eq!(moved.status, 200);
    assert_ne!(
        moved.json()["listen"],
        json!(listen),
        "a new listen address restarts the proxy on it"
    );
    assert_eq!(moved.json()["enabled"], json!(true));

    api.patch("/proxies/nope", r#"{"enabled":false}"#)
        .await
        .assert_error(404, "proxy not found");
    assert_eq!(api.patch("/proxies/db", "{not json").await.status, 400);
    let bad = api.patch("/proxies/db", "[1]").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]
            .as_str()
            .expect("error text")
            .starts_with("bad request body: ")
    );

    let deleted = api.delete("/proxies/db").await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, "");
    api.delete("/proxies/db")
        .await
        .assert_error(404, "proxy not found");
    assert_eq!(api.get("/proxies").await.body, "{}");
}

#[tokio::test]
async fn proxy_creation_rejects_bad_requests_with_400() {
    let api = Api::start().await;
    let bad_json = api.post("/proxies", "{bad").await;
    assert_eq!(bad_json.status, 400);
    assert_eq!(bad_json.json()["status"], json!(400));
    assert!(
        bad_json.json()["error"]
            .as_str()
            .expect("error text")
            .starts_with("bad request body: ")
    );
    api.post("/proxies", "")
        .await
        .assert_error(400, "bad request body: EOF");
    api.post("/proxies", &json!({"upstream": api.upstream}).to_string())
        .await
        .assert_error(400, "missing required field: name");
    api.post("/proxies", r#"{"name":"x","listen":"127.0.0.1:0"}"#)
        .await
        .assert_error(400, "missing required field: upstream");
    let wrong_type = api
        .post("/proxies", r#"{"name":5,"upstream":"127.0.0.1:1"}"#)
        .await;
    assert_eq!(wrong_type.status, 400);
    wrong_type.assert_error(400, "bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string");
    api.post("/proxies", r#"{"name":"y","upstream":"127.0.0.1:1","enabled":"yes"}"#)
        .await
        .assert_error(400, "bad request body: json: cannot unmarshal string into Go struct field Proxy.enabled of type bool");
    // Go's encoder escapes HTML characters inside strings.
    let escaped = api
        .post(
            "/proxies",
            &json!({"name": "a<b>&c", "listen": "127.0.0.1:0", "upstream": api.upstream, "enabled": false})
                .to_string(),
        )
        .await;
    assert_eq!(escaped.status, 201);
    assert!(
        escaped
            .body
            .starts_with(r#"{"name":"a\u003cb\u003e\u0026c","#),
        "{}",
        escaped.body
    );
    // A disabled proxy is created without listening.
    let disabled = api
        .post("/proxies", &json!({"name": "off", "listen": "127.0.0.1:0", "upstream": api.upstream, "enabled": false}).to_string())
        .await;
    assert_eq!(disabled.status, 201);
    assert_eq!(disabled.json()["enabled"], json!(false));
    assert_eq!(
        disabled.json()["listen"],
        json!("127.0.0.1:0"),
        "not resolved until it listens"
    );
}

#[tokio::test]
async fn toxics_are_created_listed_updated_and_deleted_like_toxiproxy() {
    let api = Api::start().await;
    api.create("db").await;

    let created = api
        .post(
            "/proxies/db/toxics",
            r#"{"type":"latency","attributes":{"latency":300}}"#,
        )
        .await;
    assert_eq!(
        created.status, 200,
        "Toxiproxy answers 200, not 201, for a new toxic"
    );
    assert_eq!(created.content_type, "application/json");
    assert_eq!(
        created.body,
        r#"{"attributes":{"latency":300,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}"#
    );
    api.post(
        "/proxies/db/toxics",
        r#"{"type":"latency","attributes":{"latency":5}}"#,
    )
    .await
    .assert_error(409, "toxic already exists");
    api.post("/proxies/db/toxics", r#"{"type":"teleport"}"#)
        .await
        .assert_error(400, "invalid toxic type");
    api.post(
        "/proxies/db/toxics",
        r#"{"type":"latency","stream":"sideways"}"#,
    )
    .await
    .assert_error(
        400,
        "stream was invalid, can be either upstream or downstream",
    );
    let bad_json = api.post("/proxies/db/toxics", "{").await;
    assert_eq!(bad_json.status, 400);
    let bad_attr = api
        .post(
            "/proxies/db/toxics",
            r#"{"name":"x","type":"latency","attributes":{"latency":"slow"}}"#,
        )
        .await;
    assert_eq!(bad_attr.status, 400);
    assert!(
        bad_attr.json()["error"]
            .as_str()
            .expect("error text")
            .starts_with("bad request body: ")
    );
    api.post("/proxies/nope/toxics", r#"{"type":"latency"}"#)
        .await
        .assert_error(404, "proxy not found");

    for (body, expected) in [
        (
            r#"{"name":"rst","type":"reset_peer","stream":"upstream","toxicity":0.5,"attributes":{"timeout":10}}"#,
            r#"{"attributes":{"timeout":10},"name":"rst","type":"reset_peer","stream":"upstream","toxicity":0.5}"#,
        ),
        (
            r#"{"name":"bw","type":"bandwidth","attributes":{"rate":100}}"#,
            r#"{"attributes":{"rate":100},"name":"bw","type":"bandwidth","stream":"downstream","toxicity":1}"#,
        ),
        (
            r#"{"name":"sc","type":"slow_close","attributes":{"delay":10}}"#,
            r#"{"attributes":{"delay":10},"name":"sc","type":"slow_close","stream":"downstream","toxicity":1}"#,
        ),
        (
            r#"{"name":"to","type":"timeout","stream":"upstream","toxicity":0}"#,
            r#"{"attributes":{"timeout":0},"name":"to","type":"timeout","stream":"upstream","toxicity":0}"#,
        ),
        (
            r#"{"name":"sl","type":"slicer","attributes":{"average_size":64,"size_variation":8,"delay":10}}"#,
            r#"{"attributes":{"average_size":64,"size_variation":8,"delay":10},"name":"sl","type":"slicer","stream":"downstream","toxicity":1}"#,
        ),
        (
            r#"{"name":"ld","type":"limit_data","attributes":{"bytes":5}}"#,
            r#"{"attributes":{"bytes":5},"name":"ld","type":"limit_data","stream":"downstream","toxicity":1}"#,
        ),
    ] {
        let answer = api.post("/proxies/db/toxics", body).await;
        assert_eq!(answer.status, 200, "{body}: {}", answer.body);
        assert_eq!(answer.body, expected);
    }

    // Upstream toxics are listed first, then downstream ones, each in creation order.
    let list = api.get("/proxies/db/toxics").await;
    assert_eq!(list.status, 200);
    let names: Vec<_> = list
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(
        names,
        ["rst", "to", "latency_downstream", "bw", "sc", "sl", "ld"]
    );
    assert_eq!(
        api.get("/proxies/db").await.json()["toxics"],
        list.json(),
        "the proxy JSON lists the same toxics"
    );
    api.get("/proxies/nope/toxics")
        .await
        .assert_error(404, "proxy not found");

    let shown = api.get("/proxies/db/toxics/latency_downstream").await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body, created.body);
    api.get("/proxies/db/toxics/nope")
        .await
        .assert_error(404, "toxic not found");
    api.get("/proxies/nope/toxics/nope")
        .await
        .assert_error(404, "proxy not found");

    // PATCH decodes onto the current toxic: omitted attributes keep their values.
    let updated = api
        .patch(
            "/proxies/db/toxics/latency_downstream",
            r#"{"attributes":{"jitter":10},"toxicity":0.25}"#,
        )
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(
        updated.body,
        r#"{"attributes":{"latency":300,"jitter":10},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":0.25}"#
    );
    let via_post = api
        .post(
            "/proxies/db/toxics/latency_downstream",
            r#"{"attributes":{"latency":100}}"#,
        )
        .await;
    assert_eq!(via_post.status, 200);
    assert_eq!(
        via_post.json()["attributes"],
        json!({"latency": 100, "jitter": 10})
    );
    assert_eq!(
        via_post.json()["toxicity"],
        json!(0.25),
        "toxicity kept when omitted"
    );
    api.patch("/proxies/db/toxics/nope", r#"{"toxicity":1}"#)
        .await
        .assert_error(404, "toxic not found");
    api.patch("/proxies/nope/toxics/nope", r#"{"toxicity":1}"#)
        .await
        .assert_error(404, "proxy not found");
    assert_eq!(
        api.patch("/proxies/db/toxics/bw", r#"{"attributes":{"rate":"fast"}}"#)
            .await
            .status,
        400
    );

    let deleted = api.delete("/proxies/db/toxics/latency_downstream").await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, "");
    api.delete("/proxies/db/toxics/latency_downstream")
        .await
        .assert_error(404, "toxic not found");
    api.delete("/proxies/nope/toxics/x")
        .await
        .assert_error(404, "proxy not found");
    assert_eq!(
        api.get("/proxies/db/toxics")
            .await
            .json()
            .as_array()
            .expect("array")
            .len(),
        6
    );
}

#[tokio::test]
async fn populate_adds_keeps_and_replaces_proxies() {
    let api = Api::start().await;
    let body = json!([
        {"name": "a", "listen": "127.0.0.1:0", "upstream": api.upstream},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": api.upstream, "enabled": false},
    ])
    .to_string();
    let answer = api.post("/populate", &body).await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.content_type, "application/json");
    let proxies = answer.json()["proxies"]
        .as_array()
        .expect("proxies array")
        .clone();
    assert_eq!(
        answer.json().as_object().expect("object").len(),
        1,
        "only `proxies` when all went well"
    );
    assert_eq!(proxies.len(), 2);
    assert_eq!(proxies[0]["name"], json!("a"));
    assert_eq!(proxies[0]["enabled"], json!(true));
    assert_eq!(proxies[0]["toxics"], json!([]));
    assert_eq!(proxies[1]["enabled"], json!(false));

    // An identical proxy (same listen and upstream) is kept with its toxics.
    let a_listen = proxies[0]["listen"].as_str().expect("listen").to_owned();
    assert_eq!(
        api.post("/proxies/a/toxics", r#"{"type":"latency"}"#)
            .await
            .status,
        200
    );
    let again = api
        .post(
            "/populate",
            &json!([{"name": "a", "listen": a_listen, "upstream": api.upstream}]).to_string(),
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(
        again.json()["proxies"][0]["toxics"]
            .as_array()
            .expect("toxics")
            .len(),
        1
    );

    let empty = api.post("/populate", "[]").await;
    assert_eq!(empty.status, 201);
    assert_eq!(
        empty.body, r#"{"proxies":null}"#,
        "Go marshals the empty result as null"
    );

    let missing = api.post("/populate", r#"[{"name":"c"}]"#).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.body,
        r#"{"error":"missing required field: upstream at proxy 1","status":400,"proxies":null}"#
    );
    let not_a_list = api.post("/populate", r#"{"proxies":[]}"#).await;
    assert_eq!(not_a_list.status, 400);
    assert!(
        api.get("/proxies/c").await.status == 404,
        "nothing created from a failed populate"
    );
}

#[tokio::test]
async fn reset_reenables_every_proxy_and_removes_every_toxic() {
    let api = Api::start().await;
    api.create("a").await;
    api.create("b").await;
    assert_eq!(
        api.post(
            "/proxies/a/toxics",
            r#"{"type":"latency","stream":"upstream"}"#
        )
        .await
        .status,
        200
    );
    assert_eq!(
        api.post("/proxies/a/toxics", r#"{"type":"latency"}"#)
            .await
            .status,
        200
    );
    assert_eq!(
        api.patch("/proxies/b", r#"{"enabled":false}"#).await.status,
        200
    );

    let reset = api.post("/reset", "").await;
    assert_eq!(reset.status, 204);
    assert_eq!(reset.body, "");
    let index = api.get("/proxies").await.json();
    for name in ["a", "b"] {
        assert_eq!(index[name]["enabled"], json!(true), "{name} re-enabled");
        assert_eq!(
            index[name]["toxics"],
            json!([]),
            "{name} has no toxics left, in both directions"
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_browsers_are_refused_like_toxiproxy() {
    let api = Api::start().await;
    let missing = api.get("/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, "404 page not found\n");
    let browser = api
        .http
        .get(format!("{}/proxies", api.server.url()))
        .header("User-Agent", "Mozilla/5.0")
        .send()
        .await
        .expect("API answers");
    assert_eq!(browser.status().as_u16(), 403);
    assert_eq!(
        browser.text().await.expect("body"),
        "User agent not allowed\n"
    );
    api.server.shutdown().await.expect("clean shutdown");
}
