"""The local cluster through the official Python client (`kubernetes` on
PyPI): list, watch, create, patch, delete with propagation, logs, exec with
stdin as text and as bytes, port-forward.

Run by tests/python_client.rs with KUBECONFIG set to a fresh local cluster.
Prints one `ok: STEP` line per step; any failure raises, so the script exits
non-zero with Python's traceback naming the step. Every wait is bounded.
"""

import socket
import sys
import time
import uuid

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import portforward, stream

NS = "py-" + uuid.uuid4().hex[:6]
TIMEOUT = 30


def ok(step):
    print("ok:", step, flush=True)


def wait_until(what, check, timeout=TIMEOUT):
    """Polls `check` until it returns something true; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.1)


def pod_manifest(name, command, labels=None, stdin=False):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": "python:3.12", "command": command, "stdin": stdin}
            ],
        },
    }


def wait_running(core, name):
    """Waits, through a watch, until the pod is Running."""
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_pod,
        NS,
        field_selector="metadata.name=" + name,
        timeout_seconds=TIMEOUT,
    ):
        if event["object"].status.phase == "Running":
            w.stop()
            return
    raise AssertionError("pod %s did not run within %ss" % (name, TIMEOUT))


def main():
    config.load_kube_config()
    core = client.CoreV1Api()
    apps = client.AppsV1Api()

    # List and create.
    names = [ns.metadata.name for ns in core.list_namespace().items]
    assert "default" in names and "kube-system" in names, names
    core.create_namespace({"metadata": {"name": NS}})
    ok("list and create namespaces")

    # Watch: an object created after the list arrives as ADDED, from the
    # list's resourceVersion.
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(
        NS, {"metadata": {"name": "settings", "labels": {"app": "py"}}, "data": {"a": "1"}}
    )
    w = watch.Watch()
    seen = None
    for event in w.stream(
        core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=TIMEOUT
    ):
        if event["type"] == "ADDED" and event["object"].metadata.name == "settings":
            seen = event["object"]
            w.stop()
    assert seen is not None and seen.data == {"a": "1"}, seen
    ok("watch from a resourceVersion")

    # Patch (strategic merge, the client's default for a dict) and select.
    core.patch_namespaced_config_map("settings", NS, {"data": {"b": "2"}})
    cm = core.read_namespaced_config_map("settings", NS)
    assert cm.data == {"a": "1", "b": "2"}, cm.data
    listed = core.list_namespaced_config_map(NS, label_selector="app=py").items
    assert [c.metadata.name for c in listed] == ["settings"], listed
    try:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "settings"}})
        raise AssertionError("a second configmap of the same name was created")
    except ApiException as e:
        assert e.status == 409 and e.reason == "Conflict", e
    ok("patch, label selector and 409 on a duplicate")

    # A Deployment, its ReplicaSet and pods, deleted with Foreground
    # propagation: the Deployment goes once its dependents are gone.
    apps.create_namespaced_deployment(
        NS,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {"name": "web", "image": "python:3.12", "command": ["sleep", "1000"]}
                        ],
                    },
                },
            },
        },
    )
    wait_until(
        "two pods of the deployment",
        lambda: len(core.list_namespaced_pod(NS, label_selector="app=web").items) == 2,
    )
    rs = apps.list_namespaced_replica_set(NS, label_selector="app=web").items
    assert len(rs) == 1 and rs[0].metadata.owner_references[0].kind == "Deployment", rs
    apps.delete_namespaced_deployment(
        "web", NS, body=client.V1DeleteOptions(propagation_policy="Foreground")
    )

    def deployment_gone():
        try:
            apps.read_namespaced_deployment("web", NS)
            return False
        except ApiException as e:
            return e.status == 404

    wait_until("the deployment to be deleted", deployment_gone)
    wait_until(
        "the deployment's replicaset and pods to be deleted",
        lambda: not apps.list_namespaced_replica_set(NS, label_selector="app=web").items
        and not core.list_namespaced_pod(NS, label_selector="app=web").items,
    )
    ok("create a deployment, delete it with Foreground propagation")

    # Orphan: the ReplicaSet stays, without its owner reference.
    apps.create_namespaced_replica_set(
        NS,
        {
            "metadata": {"name": "kept", "labels": {"app": "kept"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "kept"}},
                "template": {
                    "metadata": {"labels": {"app": "kept"}},
                    "spec": {
                        "containers": [
                            {"name": "c", "image": "python:3.12", "command": ["sleep", "1000"]}
                        ]
                    },
                },
            },
        },
    )
    core.create_namespaced_config_map(
        NS,
        {
            "metadata": {
                "name": "owned",
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": "kept",
                        "uid": apps.read_namespaced_replica_set("kept", NS).metadata.uid,
                    }
                ],
            }
        },
    )
    apps.delete_namespaced_replica_set(
        "kept", NS, body=client.V1DeleteOptions(propagation_policy="Orphan")
    )
    wait_until(
        "the orphaned configmap to lose its owner reference",
        lambda: not core.read_namespaced_config_map("owned", NS).metadata.owner_references,
    )
    ok("delete with Orphan propagation")

    # Logs.
    core.create_namespaced_pod(NS, pod_manifest("talker", ["sh", "-c", "echo hello from py; sleep 1000"]))
    wait_running(core, "talker")
    logs = wait_until(
        "the pod's log line",
        lambda: core.read_namespaced_pod_log("talker", NS) or None,
    )
    assert logs == "hello from py\n", repr(logs)
    ok("logs")

    # Exec, not interactive: output on both streams and the exit code.
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        "talker",
        NS,
        command=["sh", "-c", "echo out; echo err >&2; exit 3"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=TIMEOUT)
    assert resp.read_stdout() == "out\n" and resp.read_stderr() == "err\n"
    assert resp.returncode == 3, resp.returncode
    ok("exec: stdout, stderr and the exit code")

    # Exec, interactive: stdin written as text (a text WebSocket message),
    # then as bytes (a binary one), each answered before the next.
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        "talker",
        NS,
        command=["cat"],
        stderr=True,
        stdin=True,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    for sent, kind in (("line as text\n", "text"), (b"line as bytes\n", "bytes")):
        resp.write_stdin(sent)
        expected = sent if isinstance(sent, str) else sent.decode()
        got = ""
        deadline = time.monotonic() + TIMEOUT
        while got != expected:
            if time.monotonic() > deadline or not resp.is_open():
                raise AssertionError("stdin as %s: cat echoed %r, not %r" % (kind, got, expected))
            resp.update(timeout=1)
            got += resp.read_stdout(timeout=0) if resp.peek_stdout() else ""
        ok("exec: stdin as " + kind)
    # Closing stdin (v5) ends cat, which exits 0.
    resp.close_channel(0)
    resp.run_forever(timeout=TIMEOUT)
    assert not resp.is_open() and resp.returncode == 0, resp.returncode
    ok("exec: closing stdin ends the command")

    # Port-forward over the WebSocket protocol the client speaks (to a port
    # free on this machine too: pods without a sandbox share its network).
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = (
        "import socket\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('0.0.0.0', %d)); s.listen(1)\n"
        "while True:\n"
        "    c, _ = s.accept(); c.sendall(b'pong:' + c.recv(100)); c.close()\n"
    ) % port
    core.create_namespaced_pod(NS, pod_manifest("listener", [sys.executable, "-c", server]))
    wait_running(core, "listener")

    def forwarded():
        # Until the program listens, the connection ends at once.
        pf = portforward(core.connect_get_namespaced_pod_portforward, "listener", NS, ports=str(port))
        sock = pf.socket(port)
        sock.settimeout(TIMEOUT)
        answer = b""
        try:
            sock.sendall(b"ping")
            while True:
                chunk = sock.recv(100)
                if not chunk:
                    break
                answer += chunk
        except OSError:
            pass
        sock.close()
        return answer if answer == b"pong:ping" else None

    wait_until("an answer through port-forward", forwarded)
    ok("port-forward")

    # Deleting the namespace removes what is in it.
    core.delete_namespace(NS)

    def namespace_gone():
        try:
            core.read_namespace(NS)
            return False
        except ApiException as e:
            return e.status == 404

    wait_until("the namespace to be deleted", namespace_gone, timeout=60)
    ok("delete the namespace")


if __name__ == "__main__":
    main()
