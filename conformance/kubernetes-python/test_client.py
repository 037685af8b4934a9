"""The Python `kubernetes` client against the embedded Kubernetes API server.

Each case asserts the exact answer a real API server gives. Run by tests/conformance_kube.rs
with FIREDRILL_KUBECONFIG and CONTEXT set; prints one line per case and exits non-zero when
one fails.
"""

import datetime
import os
import sys
import time
import traceback

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=os.environ["FIREDRILL_KUBECONFIG"], context=os.environ["CONTEXT"])
core = client.CoreV1Api()
apps = client.AppsV1Api()
NS = "conformance-python"
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def wait_for(what, check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


def status_of(call):
    try:
        call()
    except ApiException as e:
        return e.status, e.reason
    raise AssertionError("the call succeeded")


@case
def version_is_served():
    v = client.VersionApi().get_code()
    assert (v.major, v.minor) == ("1", "34"), (v.major, v.minor)


@case
def namespace_is_created_active():
    ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    assert ns.status.phase == "Active", ns.status
    assert ns.metadata.labels == {"kubernetes.io/metadata.name": NS}, ns.metadata.labels


@case
def timestamps_are_on_the_wall_clock():
    cm = core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="clock")))
    now = datetime.datetime.now(datetime.timezone.utc)
    skew = (now - cm.metadata.creation_timestamp).total_seconds()
    assert 0 <= skew < 3, f"creationTimestamp is {skew:.1f}s from the wall clock"


@case
def secret_string_data_becomes_data():
    s = core.create_namespaced_secret(
        NS, client.V1Secret(metadata=client.V1ObjectMeta(name="db"), string_data={"password": "s3cr3t"})
    )
    assert s.data == {"password": "czNjcjN0"}, s.data
    assert s.string_data is None, s.string_data
    assert s.type == "Opaque", s.type


@case
def lists_page_with_limit_and_continue():
    for i in range(5):
        core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"page-{i}")))
    names, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map(NS, limit=2, _continue=token, label_selector="")
        pages += 1
        names += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert pages == 3, pages
    assert names == ["clock", "page-0", "page-1", "page-2", "page-3", "page-4"], names


@case
def services_get_a_cluster_ip_and_endpoints():
    labels = {"app": "py"}
    apps.create_namespaced_deployment(
        NS,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="py"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[
                            client.V1Container(
                                name="app",
                                image="registry.example/py:1",
                                ports=[client.V1ContainerPort(name="http", container_port=8080)],
                            )
                        ]
                    ),
                ),
            ),
        ),
    )
    svc = core.create_namespaced_service(
        NS,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="py"),
            spec=client.V1ServiceSpec(selector=labels, ports=[client.V1ServicePort(port=80, target_port="http")]),
        ),
    )
    assert svc.spec.cluster_ip.startswith("10."), svc.spec.cluster_ip
    assert svc.spec.cluster_ips == [svc.spec.cluster_ip], svc.spec.cluster_ips
    assert svc.spec.ports[0].protocol == "TCP", svc.spec.ports
    def ready_endpoints():
        try:
            e = core.read_namespaced_endpoints("py", NS)
        except ApiException as err:
            if err.status == 404:  # the endpoints controller has not written it yet
                return None
            raise
        return e if e.subsets and len(e.subsets[0].addresses or []) == 2 else None

    ep = wait_for("two ready addresses", ready_endpoints)
    assert [p.port for p in ep.subsets[0].ports] == [8080], ep.subsets[0].ports
    pods = core.list_namespaced_pod(NS, label_selector="app=py").items
    assert sorted(a.ip for a in ep.subsets[0].addresses) == sorted(p.status.pod_ip for p in pods)
    slices = client.DiscoveryV1Api().list_namespaced_endpoint_slice(NS, label_selector="kubernetes.io/service-name=py")
    assert len(slices.items) == 1, slices.items
    assert len(slices.items[0].endpoints) == 2
    assert all(e.conditions.ready for e in slices.items[0].endpoints)


@case
def scale_subresource_reads_and_writes_replicas():
    scale = apps.read_namespaced_deployment_scale("py", NS)
    assert scale.spec.replicas == 2, scale.spec
    apps.patch_namespaced_deployment_scale("py", NS, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("py", NS).spec.replicas == 3


@case
def a_watch_sees_a_new_config_map():
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched")))
    w = watch.Watch()
    seen = []
    for event in w.stream(core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=10):
        seen.append((event["type"], event["object"].metadata.name))
        if event["object"].metadata.name == "watched":
            w.stop()
    assert seen == [("ADDED", "watched")], seen


@case
def self_subject_review_names_the_user():
    review = client.AuthenticationV1Api().create_self_subject_review(client.V1SelfSubjectReview(metadata={}))
    assert review.status.user_info.username == "firedrill", review.status
    assert review.status.user_info.groups == ["system:authenticated"], review.status


@case
def jobs_are_not_served():
    got = status_of(lambda: client.BatchV1Api().list_namespaced_job(NS))
    assert got == (404, "Not Found"), got


@case
def a_missing_object_is_not_found_with_its_status():
    try:
        core.read_namespaced_config_map("nope", NS)
    except ApiException as e:
        import json

        body = json.loads(e.body)
        assert e.status == 404
        assert body["reason"] == "NotFound", body
        assert body["message"] == 'configmaps "nope" not found', body
        assert body["details"] == {"name": "nope", "kind": "configmaps"}, body
        return
    raise AssertionError("read of a missing config map succeeded")


@case
def namespace_is_deleted():
    core.delete_namespace(NS)
    got = status_of(lambda: core.read_namespace(NS))
    assert got == (404, "Not Found"), got


failed = 0
for fn in CASES:
    try:
        fn()
        print(f"ok - {fn.__name__}")
    except Exception:  # noqa: BLE001 - every failure is reported with its traceback
        failed += 1
        print(f"FAIL - {fn.__name__}")
        traceback.print_exc(file=sys.stdout)
print(f"{len(CASES) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
