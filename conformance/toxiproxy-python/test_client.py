"""toxiproxy-python (PyPI `toxiproxy-python`) against the embedded Toxiproxy.

Each case asserts the exact answer the real Toxiproxy 2.x gives (its Go source is the reference:
toxic_collection.go decodes toxics without validating attribute values, lower-cases only the
stream's direction, and defaults the name to `<type>_<stream>` as sent). Run by
tests/conformance_toxiproxy.rs with FIREDRILL_TOXIPROXY_URL set.
"""

import json
import os
import socket
import sys
import threading
import traceback
from urllib.parse import urlparse

from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

url = urlparse(os.environ["FIREDRILL_TOXIPROXY_URL"])
server = Toxiproxy()
server.update_api_consumer(url.hostname, url.port)
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def echo_server():
    """A TCP echo server on loopback; returns its address."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)

    def serve():
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=lambda c=conn: [c.sendall(d) for d in iter(lambda: c.recv(4096), b"")], daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return "127.0.0.1:%d" % sock.getsockname()[1]


UPSTREAM = echo_server()


def roundtrip(listen, payload=b"ping"):
    host, port = listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(payload)
        return s.recv(4096)


def toxics_json(name):
    return APIConsumer.get("/proxies/%s/toxics" % name).json()


@case
def version_is_json():
    body = json.loads(server.version())
    assert body == {"version": body["version"]} and body["version"].startswith("2."), body


@case
def create_binds_a_port_and_proxies_data():
    proxy = server.create(upstream=UPSTREAM, name="py_echo")
    host, port = proxy.listen.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0, proxy.listen
    assert proxy.enabled is True
    assert roundtrip(proxy.listen) == b"ping"


@case
def proxies_lists_by_name():
    proxies = server.proxies()
    assert list(proxies) == ["py_echo"], list(proxies)
    assert proxies["py_echo"].upstream == UPSTREAM


@case
def latency_toxic_is_stored_with_its_defaults():
    proxy = server.get_proxy("py_echo")
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    assert toxics_json("py_echo") == [
        {"attributes": {"latency": 100, "jitter": 0}, "name": "latency_downstream", "type": "latency", "stream": "downstream", "toxicity": 1.0}
    ], toxics_json("py_echo")


@case
def negative_latency_is_accepted_as_the_real_toxiproxy_does():
    proxy = server.get_proxy("py_echo")
    proxy.add_toxic(type="latency", name="negative", attributes={"latency": -5})
    assert proxy.get_toxic("negative").attributes == {"latency": -5, "jitter": 0}
    assert roundtrip(proxy.listen) == b"ping", "a negative latency delays nothing"
    proxy.destroy_toxic("negative")


@case
def toxicity_above_one_is_accepted_as_the_real_toxiproxy_does():
    proxy = server.get_proxy("py_echo")
    proxy.add_toxic(type="bandwidth", name="wide", toxicity=1.5, attributes={"rate": 1000})
    assert proxy.get_toxic("wide").toxicity == 1.5
    proxy.destroy_toxic("wide")


@case
def an_upper_case_stream_is_accepted_and_kept_as_sent():
    proxy = server.get_proxy("py_echo")
    proxy.add_toxic(type="latency", stream="UPSTREAM", attributes={"latency": 1})
    toxic = proxy.get_toxic("latency_UPSTREAM")
    assert (toxic.stream, toxic.name) == ("UPSTREAM", "latency_UPSTREAM"), (toxic.stream, toxic.name)
    proxy.destroy_toxic("latency_UPSTREAM")


@case
def an_unknown_type_or_stream_is_a_400():
    proxy = server.get_proxy("py_echo")
    for toxic, error in [
        ({"type": "lag"}, "invalid toxic type"),
        ({"type": "latency", "stream": "sideways"}, "stream was invalid, can be either upstream or downstream"),
    ]:
        try:
            proxy.add_toxic(**toxic)
        except InvalidToxic as e:
            assert json.loads(e.args[0]) == {"error": error, "status": 400}, e.args
        else:
            raise AssertionError("%s was accepted" % toxic)


@case
def a_duplicate_proxy_is_a_409():
    try:
        APIConsumer.post("/proxies", json={"name": "py_echo", "upstream": UPSTREAM, "listen": "127.0.0.1:0"})
    except ProxyExists as e:
        assert json.loads(e.args[0]) == {"error": "proxy already exists", "status": 409}, e.args
    else:
        raise AssertionError("a second py_echo was created")


@case
def down_refuses_connections_until_it_is_up():
    proxy = server.get_proxy("py_echo")
    with proxy.down():
        assert server.get_proxy("py_echo").enabled is False
        try:
            roundtrip(proxy.listen)
        except OSError:
            pass
        else:
            raise AssertionError("a disabled proxy accepted a connection")
    assert roundtrip(proxy.listen) == b"ping"


@case
def reset_removes_toxics_and_enables_proxies():
    assert server.reset() is True
    assert toxics_json("py_echo") == []


@case
def destroy_removes_the_proxy():
    assert server.get_proxy("py_echo").destroy() is True
    try:
        APIConsumer.get("/proxies/py_echo")
    except NotFound as e:
        assert json.loads(e.args[0]) == {"error": "proxy not found", "status": 404}, e.args
    else:
        raise AssertionError("the proxy is still there")


failed = 0
for fn in CASES:
    try:
        fn()
        print("ok - %s" % fn.__name__)
    except Exception:  # noqa: BLE001 - every failure is reported with its traceback
        failed += 1
        print("FAIL - %s" % fn.__name__)
        traceback.print_exc(file=sys.stdout)
print("%d passed, %d failed" % (len(CASES) - failed, failed))
sys.exit(1 if failed else 0)
