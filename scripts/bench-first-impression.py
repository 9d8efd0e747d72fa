#!/usr/bin/env python3
"""The first impression: `kubesh --local -c 'python hello.py'` on a machine
where no local cluster runs yet, from nothing to the program's output,
beside `python3 hello.py` in the same run, interleaved.

Each kubesh run gets a new, empty data directory (XDG_DATA_HOME), so that it
finds no local cluster and starts one; after the run the cluster it started
is stopped (`kubesh local-cluster stop`, not timed) and its directory
deleted. For each run it notes when kubesh said it started the local
cluster (the cluster is up), when `hello` came out, and when kubesh ended;
and prints, for each, the median, the 95th percentile and the maximum.
Both sides find `python3` (and the pod `python`) on the same PATH.

Usage: scripts/bench-first-impression.py [PATH_TO_KUBESH] [RUNS]
(cargo build --release first)
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

KUBESH = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/kubesh")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 20


def first_impression(work, program_dir):
    data = tempfile.mkdtemp(dir=work, prefix="data-")
    env = dict(os.environ, XDG_DATA_HOME=data)
    env.pop("KUBECONFIG", None)
    started = time.monotonic()
    process = subprocess.Popen(
        [KUBESH, "--local", "-c", "python hello.py"],
        cwd=program_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    up = None
    for line in process.stderr:
        if "started the local cluster at" in line:
            up = time.monotonic()
            break
    output = process.stdout.readline()
    shown = time.monotonic()
    process.stdout.read()
    errors = process.stderr.read()
    status = process.wait()
    ended = time.monotonic()
    # The cluster this run started (the user's cluster outlives kubesh).
    subprocess.run([KUBESH, "local-cluster", "stop"], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    shutil.rmtree(data, ignore_errors=True)
    if status != 0 or output != "hello\n" or up is None:
        sys.exit(f"kubesh failed ({status}): {output}{errors}")
    return [(up - started) * 1000, (shown - started) * 1000, (ended - started) * 1000]


def plain(program_dir):
    started = time.monotonic()
    result = subprocess.run(["python3", "hello.py"], cwd=program_dir,
                            capture_output=True, text=True, check=False)
    took = (time.monotonic() - started) * 1000
    if result.stdout != "hello\n":
        sys.exit(f"python3 hello.py failed: {result.stdout}{result.stderr}")
    return took


def figures(times):
    ordered = sorted(times)
    p95 = ordered[max(0, round(len(ordered) * 0.95) - 1)]
    return statistics.median(ordered), p95, ordered[-1]


def main():
    work = tempfile.mkdtemp()
    program_dir = os.path.join(work, "program")
    os.makedirs(program_dir)
    with open(os.path.join(program_dir, "hello.py"), "w") as f:
        f.write('print("hello")\n')
    try:
        # One of each first: caches warm.
        plain(program_dir)
        first_impression(work, program_dir)
        python, kubesh = [], []
        for _ in range(RUNS):
            python.append(plain(program_dir))
            kubesh.append(first_impression(work, program_dir))
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        print(f"first impression, no local cluster running, {RUNS} runs each (ms); "
              f"load average after: {load}")
        print(f"  {'':46} {'median':>8} {'p95':>8} {'max':>8}")
        rows = [
            ("python3 hello.py", python),
            ("kubesh --local: the local cluster started", [k[0] for k in kubesh]),
            ("kubesh --local -c 'python hello.py': output", [k[1] for k in kubesh]),
            ("kubesh --local -c 'python hello.py': ended", [k[2] for k in kubesh]),
        ]
        for label, times in rows:
            median, p95, most = figures(times)
            print(f"  {label:46} {median:8.1f} {p95:8.1f} {most:8.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
