#!/usr/bin/env python3
"""Launch figures: a background Python service on the local cluster.

For each of RUNS launches of `SERVICE_PORT=P python web.py &`, kubesh runs
with `debug on`, which prints every API request with its time, the time spent
planning (resolving the runtime, packing the bundle) and the launch's total
time from Enter to "ready". From those lines:

  requests      API requests of the launch, watches not counted
  own           planning + the launch's API requests: kubesh's own time
  total         Enter to "ready", including the cluster starting the pod

Then, side by side against the same cluster, the kubectl command sequence
the 2018 tool ran for a launch (apply, label, get pods, cp, annotate, expose,
exec), each command timed.

Usage: scripts/bench-launch.py [PATH_TO_KUBESH] [RUNS]   (cargo build --release first)
"""

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

KUBESH = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/kubesh")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 10

WEB_PY = """
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok\\n")
http.server.HTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(values):
    return statistics.median(values) if values else float("nan")


def main():
    work = tempfile.mkdtemp()
    program_dir = os.path.join(work, "program")
    os.makedirs(program_dir)
    with open(os.path.join(program_dir, "web.py"), "w") as f:
        f.write(WEB_PY)
    kubeconfig = os.path.join(work, "kubeconfig")
    cluster = subprocess.Popen(
        [KUBESH, "local-cluster", "--kubeconfig", kubeconfig, "--state", os.path.join(work, "state")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in cluster.stdout:
        if line.startswith("kubeconfig:"):
            break
    env = dict(os.environ, KUBECONFIG=kubeconfig, XDG_DATA_HOME=work, XDG_CONFIG_HOME=work)
    rows = []
    try:
        for run in range(RUNS):
            line = f"debug on; SERVICE_NAME=web{run} SERVICE_PORT={free_port()} python web.py &"
            result = subprocess.run([KUBESH, "-c", line], cwd=program_dir, env=env,
                                    capture_output=True, text=True, check=True)
            err = result.stderr
            planned = float(re.search(r"planned in ([\d.]+) ms", err).group(1))
            requests = [float(ms) for path, ms in re.findall(r"debug: \w+ (\S+) → \d+ \(([\d.]+) ms\)", err)
                        if "watch=true" not in path]
            total = float(re.findall(r"debug: status 0 after ([\d.]+) ms", err)[-1])
            rows.append((len(requests), planned + sum(requests), total))
        print(f"kubesh background launch, {RUNS} runs (median):")
        print(f"  API requests (watches not counted)  {median([r[0] for r in rows]):.0f}")
        print(f"  kubesh's own time (plan + requests) {median([r[1] for r in rows]):7.1f} ms")
        print(f"  Enter to ready, in all              {median([r[2] for r in rows]):7.1f} ms")
        print(f"  the cluster's part (pod start)      {median([r[2] - r[1] for r in rows]):7.1f} ms")

        print("the 2018 tool's kubectl sequence for the same launch (one run, each command timed):")
        manifest = os.path.join(work, "old.yaml")
        with open(manifest, "w") as f:
            f.write("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: old}\nspec:\n"
                    "  selector: {matchLabels: {app: old}}\n  template:\n    metadata: {labels: {app: old}}\n"
                    "    spec: {containers: [{name: old, image: python:3.12-slim, command: [sleep, '10000']}]}\n")
        sequence = [
            ["apply", "-f", manifest],
            ["label", "deployment", "old", "dproc=old"],
            ["get", "pods", "-l", "app=old", "-o", "name"],
            ["cp", os.path.join(program_dir, "web.py"), "POD:/tmp/web.py"],
            ["annotate", "deployment", "old", "source=web.py"],
            ["expose", "deployment", "old", "--port", "8080"],
            # The tool started the program over exec; checking the copied
            # file costs the same exec without leaving a server running.
            ["exec", "POD", "--", "test", "-f", "/tmp/web.py"],
        ]
        pod = ""
        total = 0.0
        for args in sequence:
            args = [a.replace("POD", pod) for a in args]
            start = time.perf_counter()
            result = subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, timeout=20)
            ms = (time.perf_counter() - start) * 1000
            total += ms
            if args[0] == "get" and result.stdout.strip():
                pod = result.stdout.strip().splitlines()[0].split("/")[-1]
            state = "ok" if result.returncode == 0 else "failed: " + (result.stderr.strip().splitlines() or ["?"])[-1][:70]
            print(f"  kubectl {args[0]:<9} {ms:7.1f} ms  {state}")
        print(f"  {len(sequence)} kubectl processes, {total:.1f} ms in all, plus the tool's fixed sleeps (2 s + 5 s)")
    finally:
        cluster.terminate()
        cluster.wait()


if __name__ == "__main__":
    main()
