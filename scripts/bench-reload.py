#!/usr/bin/env python3
"""Hot reload figures: save → first response carrying the new content.

Starts the local cluster and two watching kubesh sessions, each with a
background Node.js service. The first reloads on the live path (files
written into the running pod over exec, the program restarted by its
supervisor); the second runs the same program with a runtime whose image
is declared to have no shell (`shell = false`), so every save is a rolling
update. Edits alternate between the two, in one run. After each save the
script asks the service through the API server's service proxy, over one
kept-alive HTTPS connection, until the page carries the new content.

Printed: median and p95 of save → new page for each path, and the time
kubesh itself reports on its reload line; beside them, in the same run,
the two costs no reload can avoid: one exec round trip into the live
pod (a new TLS connection, the WebSocket upgrade of `pods/exec`, `true`
run in the container, until the connection closes — as kubesh execs),
and the program's bare start-up (`node web.js` on this machine, no
cluster, from the start of the process to its first answer, in the
environment a pod's program gets).

Usage: scripts/bench-reload.py [PATH_TO_KUBESH] [EDITS]   (cargo build --release first)
"""

import base64
import http.client
import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

KUBESH = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/kubesh")
EDITS = int(sys.argv[2]) if len(sys.argv) > 2 else 50

WEB_JS = 'require("http").createServer((q, s) => s.end("PAGE\\n")).listen(process.env.PORT);\n'

NO_SHELL_NODE = """description = "Node.js, image without a shell"
extensions = ["js"]
commands = ["node"]
image = "gcr.io/distroless/nodejs22-debian12"
run = ["node", "{file}"]
port = 8080
shell = false
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Session:
    """A watching kubesh session with one background service."""

    def __init__(self, name, work, kubeconfig, config_dir):
        self.name = name
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.file = os.path.join(self.dir, "web.js")
        self.write(f"{name} start")
        self.port = free_port()
        env = dict(os.environ, KUBECONFIG=kubeconfig, XDG_DATA_HOME=work, XDG_CONFIG_HOME=config_dir)
        line = f"SERVICE_NAME={name} SERVICE_PORT={self.port} node web.js & sleep 100000"
        self.process = subprocess.Popen([KUBESH, "--watch", "-c", line], cwd=self.dir, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.reported = []
        self.lines = []
        threading.Thread(target=self.read, daemon=True).start()

    def write(self, text):
        with open(self.file, "w") as f:
            f.write(WEB_JS.replace("PAGE", text))

    def read(self):
        for line in self.process.stderr:
            self.lines.append(line)
            found = re.search(r"↻ \S+ +\d+ files? +(\d+) ms", line)
            if found:
                self.reported.append(float(found.group(1)))


class Proxy:
    """GETs through the API server's service proxy on one connection."""

    def __init__(self, kubeconfig):
        text = open(kubeconfig).read()
        server = re.search(r"server: *https://([\d.]+):(\d+)", text)
        self.host, self.port = server.group(1), int(server.group(2))
        self.token = re.search(r"token: *(\S+)", text).group(1)
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self.connection = None

    def get(self, service, port):
        path = f"/api/v1/namespaces/default/services/{service}:{port}/proxy/"
        for _ in range(2):
            try:
                if self.connection is None:
                    self.connection = http.client.HTTPSConnection(self.host, self.port, context=self.context)
                self.connection.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
                response = self.connection.getresponse()
                body = response.read().decode(errors="replace")
                return body if response.status == 200 else None
            except (OSError, http.client.HTTPException):
                self.connection = None
        return None


def pod_of(proxy, service):
    """The name of the running pod of a service, through the API."""
    path = f"/api/v1/namespaces/default/pods?labelSelector=app.kubernetes.io/name%3D{service}"
    proxy.connection = http.client.HTTPSConnection(proxy.host, proxy.port, context=proxy.context)
    proxy.connection.request("GET", path, headers={"Authorization": f"Bearer {proxy.token}"})
    pods = json.loads(proxy.connection.getresponse().read())["items"]
    return next(p["metadata"]["name"] for p in pods if "deletionTimestamp" not in p["metadata"])


def exec_round_trip(proxy, pod):
    """Milliseconds for `true` run in the pod over `pods/exec`: a new TLS
    connection, the WebSocket upgrade, the command, until the server
    closes the stream (the exit status has come by then)."""
    started = time.perf_counter()
    with socket.create_connection((proxy.host, proxy.port)) as raw:
        with proxy.context.wrap_socket(raw) as s:
            path = (f"/api/v1/namespaces/default/pods/{pod}/exec"
                    "?command=true&container=main&stdout=true&stderr=true")
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall((f"GET {path} HTTP/1.1\r\nHost: {proxy.host}\r\n"
                       f"Authorization: Bearer {proxy.token}\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n").encode())
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(65536)
            head, data = data.split(b"\r\n\r\n", 1)
            if b" 101 " not in head.split(b"\r\n")[0]:
                raise SystemExit(f"exec refused: {head.decode(errors='replace')}")
            while True:  # server frames, unmasked; until the close frame
                while len(data) < 2:
                    data += s.recv(65536)
                opcode, length, at = data[0] & 0x0F, data[1] & 0x7F, 2
                if length == 126:
                    length, at = int.from_bytes(data[2:4], "big"), 4
                elif length == 127:
                    length, at = int.from_bytes(data[2:10], "big"), 10
                while len(data) < at + length:
                    data += s.recv(65536)
                data = data[at + length:]
                if opcode == 8:
                    break
    return (time.perf_counter() - started) * 1000


def bare_start(directory):
    """Milliseconds from starting `node web.js` on this machine to its
    first answer."""
    port = free_port()
    started = time.perf_counter()
    # The environment a pod's program has: this shell's may hold variables
    # that slow Node.js down (NODE_EXTRA_CA_CERTS: 100 ms more here).
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "LANG": "C.UTF-8",
           "PORT": str(port)}
    node = subprocess.Popen(["node", "web.js"], cwd=directory, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    if s.recv(100):
                        return (time.perf_counter() - started) * 1000
            except OSError:
                time.sleep(0.001)
    finally:
        node.kill()
        node.wait()


def wait_for(proxy, session, text, limit=120.0):
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if proxy.get(session.name, session.port) == text + "\n":
            return
        time.sleep(0.002)
    raise SystemExit(f"{session.name}: {text!r} never answered:\n{''.join(session.lines)}")


def main():
    work = tempfile.mkdtemp()
    kubeconfig = os.path.join(work, "kubeconfig")
    cluster = subprocess.Popen(
        [KUBESH, "local-cluster", "--kubeconfig", kubeconfig, "--state", os.path.join(work, "state")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in cluster.stdout:
        if line.startswith("kubeconfig:"):
            break
    rollout_config = os.path.join(work, "rollout-config")
    os.makedirs(os.path.join(rollout_config, "kubesh", "runtimes"))
    with open(os.path.join(rollout_config, "kubesh", "runtimes", "node.toml"), "w") as f:
        f.write(NO_SHELL_NODE)
    proxy = Proxy(kubeconfig)
    sessions = [Session("live", work, kubeconfig, os.path.join(work, "live-config")),
                Session("rollout", work, kubeconfig, rollout_config)]
    timings = {s.name: [] for s in sessions}
    execs, starts = [], []
    try:
        for s in sessions:
            wait_for(proxy, s, f"{s.name} start")
        for edit in range(EDITS):
            for s in sessions:
                reloads = len(s.reported)
                text = f"{s.name} edit {edit}"
                saved = time.perf_counter()
                s.write(text)
                wait_for(proxy, s, text)
                timings[s.name].append((time.perf_counter() - saved) * 1000)
                # The reload line comes once the reload is over: the next
                # save must not fall into this one.
                deadline = time.perf_counter() + 60
                while len(s.reported) <= reloads and time.perf_counter() < deadline:
                    time.sleep(0.005)
            # The floor, measured between the edits so the load is the same.
            execs.append(exec_round_trip(proxy, pod_of(proxy, "live")))
            starts.append(bare_start(sessions[0].dir))
        print(f"save → first response with the new content, through the service proxy, {EDITS} edits each:")
        print(f"  {'path':<9} {'median':>9} {'p95':>9} {'max':>9}   kubesh's reload line (median)")
        for s in sessions:
            t = timings[s.name]
            print(f"  {s.name:<9} {statistics.median(t):7.0f} ms {percentile(t, 95):6.0f} ms {max(t):6.0f} ms"
                  f"   {statistics.median(s.reported):6.0f} ms")
        for label, t in [("exec round trip into the live pod", execs),
                         ("node web.js, bare start to first answer", starts)]:
            print(f"  {label}: median {statistics.median(t):.0f} ms, p95 {percentile(t, 95):.0f} ms")
        for s in sessions:
            t = timings[s.name]
            slowest = sorted(range(len(t)), key=lambda i: -t[i])[:3]
            print(f"  slowest {s.name} edits: " + ", ".join(f"#{i} {t[i]:.0f} ms" for i in slowest))
        paths = {s.name: [line.strip() for line in s.lines if "↻" in line][-1] for s in sessions}
        for name, line in paths.items():
            print(f"  last {name} line: {line}")
    finally:
        for s in sessions:
            s.process.kill()
        cluster.terminate()
        cluster.wait()


if __name__ == "__main__":
    main()
