// toxiproxy-node-client (npm) against the embedded Toxiproxy. Each case asserts the exact
// answer the real Toxiproxy 2.x gives. Run by tests/conformance_toxiproxy.rs with
// FIREDRILL_TOXIPROXY_URL set.
"use strict";
const assert = require("node:assert/strict");
const net = require("node:net");
const { Toxiproxy } = require("toxiproxy-node-client");

const base = process.env.FIREDRILL_TOXIPROXY_URL.replace(/\/$/, "");
const toxiproxy = new Toxiproxy(base);
const cases = [];
const test = (name, fn) => cases.push([name, fn]);

let upstream;
function echoServer() {
  return new Promise((resolve) => {
    const s = net.createServer((c) => c.pipe(c));
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}

function roundtrip(listen, payload = "ping") {
  const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), Number(listen.slice(listen.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const c = net.connect(port, host, () => c.write(payload));
    c.setTimeout(5000, () => reject(new Error("timeout")));
    c.on("data", (d) => { resolve(d.toString()); c.destroy(); });
    c.on("error", reject);
  });
}

async function raw(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return [res.status, text ? JSON.parse(text) : null];
}

test("version is 2.x", async () => {
  const version = JSON.parse(await toxiproxy.getVersion());
  assert.match(version.version, /^2\./);
});

test("createProxy binds a port and proxies data", async () => {
  const proxy = await toxiproxy.createProxy({ name: "node_echo", listen: "127.0.0.1:0", upstream });
  assert.equal(proxy.upstream, upstream);
  assert.match(proxy.listen, /^127\.0\.0\.1:[1-9][0-9]*$/);
  assert.equal(await roundtrip(proxy.listen), "ping");
});

test("addToxic stores latency with its defaults and getToxic reads it back", async () => {
  const proxy = await toxiproxy.get("node_echo");
  await proxy.addToxic({ type: "latency", name: "lag", stream: "downstream", toxicity: 1, attributes: { latency: 250, jitter: 10 } });
  const toxic = await proxy.getToxic("lag");
  assert.deepEqual(toxic.toJson(), { name: "lag", type: "latency", stream: "downstream", toxicity: 1, attributes: { latency: 250, jitter: 10 } });
});

test("a toxic update changes its toxicity and attributes only", async () => {
  const proxy = await toxiproxy.get("node_echo");
  const toxic = await proxy.getToxic("lag");
  const updated = await toxic.update({ toxicity: 0.5, attributes: { latency: 300 } });
  assert.deepEqual(updated.toJson(), { name: "lag", type: "latency", stream: "downstream", toxicity: 0.5, attributes: { latency: 300, jitter: 10 } });
});

test("latency -5, toxicity 1.5 and stream UPSTREAM are stored as the real Toxiproxy stores them", async () => {
  const [code, toxic] = await raw("POST", "/proxies/node_echo/toxics", { type: "latency", stream: "UPSTREAM", toxicity: 1.5, attributes: { latency: -5 } });
  assert.equal(code, 200);
  assert.deepEqual(toxic, { attributes: { latency: -5, jitter: 0 }, name: "latency_UPSTREAM", type: "latency", stream: "UPSTREAM", toxicity: 1.5 });
  assert.equal(await roundtrip((await toxiproxy.get("node_echo")).listen), "ping");
});

test("a bad stream, an unknown type and a duplicate toxic are refused with Toxiproxy's errors", async () => {
  assert.deepEqual(await raw("POST", "/proxies/node_echo/toxics", { type: "latency", stream: "sideways" }),
    [400, { error: "stream was invalid, can be either upstream or downstream", status: 400 }]);
  assert.deepEqual(await raw("POST", "/proxies/node_echo/toxics", { type: "lag" }),
    [400, { error: "invalid toxic type", status: 400 }]);
  assert.deepEqual(await raw("POST", "/proxies/node_echo/toxics", { type: "latency", name: "lag" }),
    [409, { error: "toxic already exists", status: 409 }]);
  const proxy = await toxiproxy.get("node_echo");
  await assert.rejects(proxy.addToxic({ type: "latency", name: "lag", attributes: {} }), /Request failed with status code 409/);
});

test("an attribute of the wrong type is a 400 with Go's decoding message", async () => {
  const [code, body] = await raw("POST", "/proxies/node_echo/toxics", { type: "latency", name: "typed", attributes: { latency: "100" } });
  assert.deepEqual([code, body], [400, { error: "bad request body: json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of type int64", status: 400 }]);
});

test("update disables and enables the proxy", async () => {
  const proxy = await toxiproxy.get("node_echo");
  const down = await proxy.update({ enabled: false, listen: proxy.listen, upstream });
  assert.equal(down.enabled, false);
  await assert.rejects(roundtrip(proxy.listen));
  const up = await down.update({ enabled: true, listen: proxy.listen, upstream });
  assert.equal(up.enabled, true);
});

test("populate creates what is missing and keeps what matches", async () => {
  const proxies = await toxiproxy.populate([
    { name: "node_echo", listen: (await toxiproxy.get("node_echo")).listen, upstream },
    { name: "node_two", listen: "127.0.0.1:0", upstream },
  ]);
  assert.deepEqual(Object.keys(proxies).sort(), ["node_echo", "node_two"]);
  assert.deepEqual(Object.keys(await toxiproxy.getAll()).sort(), ["node_echo", "node_two"]);
});

test("reset removes every toxic", async () => {
  await toxiproxy.reset();
  assert.deepEqual(await raw("GET", "/proxies/node_echo/toxics"), [200, []]);
});

test("remove deletes the proxies", async () => {
  for (const name of ["node_echo", "node_two"]) await (await toxiproxy.get(name)).remove();
  assert.deepEqual(await raw("GET", "/proxies/node_echo"), [404, { error: "proxy not found", status: 404 }]);
});

(async () => {
  const server = await echoServer();
  upstream = `127.0.0.1:${server.address().port}`;
  let failed = 0;
  for (const [name, fn] of cases) {
    try {
      await fn();
      console.log(`ok - ${name}`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL - ${name}\n${e.stack}`);
    }
  }
  console.log(`${cases.length - failed} passed, ${failed} failed`);
  server.close();
  process.exit(failed ? 1 : 0);
})();
