#!/usr/bin/env python3
"""Foreground figures: what `python hello.py` costs at kubesh's prompt on the
local cluster, beside the same program run by the plain interpreter.

In one run, against one local cluster (started here), RUNS times each:

  python -u hello.py                 the program alone, as the pod runs it
                                     (the python runtime's command line)
  kubesh -c 'python hello.py'        the program as a foreground pod

and prints, for each, the median, the 95th percentile and the maximum wall
time, then kubesh's overhead (its time minus the plain run's, at the median
and at the 95th percentile). Each kubesh run is a new process, so the
overhead includes kubesh starting and connecting, the objects created, the
pod started, its output streamed and its exit status read.

Usage: scripts/bench-foreground.py [PATH_TO_KUBESH] [RUNS]   (cargo build --release first)
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

KUBESH = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/kubesh")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
# What the pod runs (runtimes/python.toml): the same `python` on PATH, so
# that the difference is kubesh and the cluster, not two interpreters.
PLAIN = ["python", "-u", "hello.py"]


def timed(command, cwd, env):
    started = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    took = (time.monotonic() - started) * 1000
    if result.returncode != 0 or result.stdout != "hello\n":
        sys.exit(f"{command} failed ({result.returncode}): {result.stdout}{result.stderr}")
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
    kubeconfig = os.path.join(work, "kubeconfig")
    cluster = subprocess.Popen(
        [KUBESH, "local-cluster", "--kubeconfig", kubeconfig, "--state", os.path.join(work, "state")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in cluster.stdout:
        if line.startswith("kubeconfig:"):
            break
    env = dict(os.environ, KUBECONFIG=kubeconfig, XDG_DATA_HOME=work, XDG_CONFIG_HOME=work)
    try:
        # One of each first: caches warm, the cluster's first pod made.
        timed(PLAIN, program_dir, env)
        timed([KUBESH, "-c", "python hello.py"], program_dir, env)
        plain, shell = [], []
        for _ in range(RUNS):
            plain.append(timed(PLAIN, program_dir, env))
            shell.append(timed([KUBESH, "-c", "python hello.py"], program_dir, env))
        print(f"foreground `python hello.py`, {RUNS} runs each (ms)")
        print(f"  {'':28} {'median':>8} {'p95':>8} {'max':>8}")
        for label, times in [("python -u hello.py", plain), ("kubesh -c 'python hello.py'", shell)]:
            median, p95, most = figures(times)
            print(f"  {label:28} {median:8.1f} {p95:8.1f} {most:8.1f}")
        plain_median, plain_p95, _ = figures(plain)
        shell_median, shell_p95, _ = figures(shell)
        print(f"  kubesh's overhead            {shell_median - plain_median:8.1f} "
              f"{shell_p95 - plain_p95:8.1f}")
    finally:
        cluster.terminate()
        cluster.wait(timeout=30)


if __name__ == "__main__":
    main()
