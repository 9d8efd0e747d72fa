#!/usr/bin/env python3
"""Figures of the local cluster's store, two server builds side by side in
one run (the build before the store and this one):

1. Write latency: 1,000 ConfigMap creates, one after the other on one
   keep-alive connection (plain HTTP + bearer token on the server's port),
   after 100 to warm up: median and p95.
2. List of 1,000 ConfigMaps (the ones just created), 50 times: median, p95.
3. Start-up with 100 stored pods (builds with a store only): 100 pods
   (`sleep`) run, the server is killed with SIGKILL and started again on
   the same state directory: time until it serves, and until all 100 pods
   are Running again.

Beside them, the cost of one fdatasync of a 4 KiB append in the state
directory's file system, which a store that syncs every write would pay on
each create.

Usage: scripts/bench-store.py BEFORE AFTER
where each is a standalone server binary (`local-cluster`, release build:
cargo build --release -p local-cluster --bin local-cluster).
"""

import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def percentile(samples, p):
    samples = sorted(samples)
    return samples[min(len(samples) - 1, round((len(samples) - 1) * p))]


def figure(samples):
    return f"median {statistics.median(samples):6.2f} ms   p95 {percentile(samples, 0.95):6.2f} ms"


class Server:
    def __init__(self, binary, state, kubeconfig):
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [binary, "--state", state, "--kubeconfig", kubeconfig],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.time() + 60
        for line in self.process.stdout:
            if line.startswith("kubeconfig:"):
                break
            if time.time() > deadline:
                raise SystemExit("the server did not start within 60 s")
        self.serving = (time.perf_counter() - self.started) * 1000.0
        with open(kubeconfig) as f:
            text = f.read()
        self.token = next(l.split(":", 1)[1].strip() for l in text.splitlines() if l.strip().startswith("token:"))
        server = next(l.split("server:", 1)[1].strip() for l in text.splitlines() if "server:" in l)
        self.port = int(server.rsplit(":", 1)[1])
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise SystemExit(f"{method} {path}: {response.status} {data[:300]!r}")
        return data

    def kill(self):
        self.process.kill()
        self.process.wait()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def writes_and_list(binary, work):
    server = Server(binary, os.path.join(work, "state"), os.path.join(work, "kubeconfig"))
    path = "/api/v1/namespaces/default/configmaps"
    try:
        for i in range(100):
            server.request("POST", path, {"metadata": {"name": f"warm-{i}"}, "data": {"a": "b"}})
        for i in range(100):
            server.request("DELETE", f"{path}/warm-{i}")
        writes = []
        for i in range(1000):
            body = {"metadata": {"name": f"cm-{i}", "labels": {"bench": "yes"}}, "data": {"key": "value " * 20}}
            start = time.perf_counter()
            server.request("POST", path, body)
            writes.append((time.perf_counter() - start) * 1000.0)
        lists = []
        for _ in range(50):
            start = time.perf_counter()
            data = server.request("GET", path)
            lists.append((time.perf_counter() - start) * 1000.0)
        count = len(json.loads(data)["items"])
        if count != 1000:
            raise SystemExit(f"the list held {count} ConfigMaps, not 1,000")
        return writes, lists, server.serving
    finally:
        server.stop()


def pods_running(server):
    data = json.loads(server.request("GET", "/api/v1/namespaces/default/pods?labelSelector=bench%3Dyes"))
    return sum(1 for p in data["items"] if p.get("status", {}).get("phase") == "Running")


def start_up_with_pods(binary, work):
    state, kubeconfig = os.path.join(work, "state"), os.path.join(work, "kubeconfig")
    server = Server(binary, state, kubeconfig)
    for i in range(100):
        server.request(
            "POST",
            "/api/v1/namespaces/default/pods",
            {
                "metadata": {"name": f"p-{i}", "labels": {"bench": "yes"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "100000"]}],
                },
            },
        )
    deadline = time.time() + 120
    while pods_running(server) < 100:
        if time.time() > deadline:
            raise SystemExit("100 pods did not run within 120 s")
        time.sleep(0.05)
    server.kill()
    restarted = Server(binary, state, kubeconfig)
    deadline = time.time() + 120
    try:
        while pods_running(restarted) < 100:
            if time.time() > deadline:
                raise SystemExit("the 100 pods did not run again within 120 s")
            time.sleep(0.02)
        all_running = (time.perf_counter() - restarted.started) * 1000.0
        return restarted.serving, all_running
    finally:
        restarted.stop()


def fdatasync_cost(directory):
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    samples = []
    try:
        for _ in range(200):
            start = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fdatasync(fd)
            samples.append((time.perf_counter() - start) * 1000.0)
    finally:
        os.close(fd)
        os.remove(path)
    return samples


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    builds = {"before": sys.argv[1], "after": sys.argv[2]}
    root = tempfile.mkdtemp(prefix="bench-store-")
    try:
        print(f"fdatasync of a 4 KiB append here: {figure(fdatasync_cost(root))}")
        for name, binary in builds.items():
            work = os.path.join(root, name)
            os.makedirs(work)
            writes, lists, serving = writes_and_list(binary, work)
            print(f"{name}: start-up, empty state       {serving:8.1f} ms")
            print(f"{name}: create ConfigMap (1,000)    {figure(writes)}")
            print(f"{name}: list 1,000 ConfigMaps (50)  {figure(lists)}")
        work = os.path.join(root, "pods")
        os.makedirs(work)
        serving, all_running = start_up_with_pods(builds["after"], work)
        print(f"after: start-up with 100 stored pods: serving in {serving:.1f} ms, all 100 Running again in {all_running:.1f} ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
