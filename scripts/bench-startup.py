#!/usr/bin/env python3
"""Start-up figures for kubesh, side by side with Python in the same run.

1. Wall time of `kubesh -c 'echo x'` and of `python3 -c 'print(1)'`,
   interleaved, over many runs (median, p95, mean).
2. Peak memory (VmHWM) of an idle interactive kubesh session, started in a
   pseudo-terminal and measured once its first prompt is shown.

Usage: scripts/bench-startup.py [PATH_TO_KUBESH] [RUNS]
(build first: cargo build --release)
"""

import os
import pty
import statistics
import subprocess
import sys
import time

KUBESH = sys.argv[1] if len(sys.argv) > 1 else "target/release/kubesh"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 200


def timed(argv):
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - start) * 1000.0


def summary(samples):
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    return f"median {statistics.median(samples):6.2f} ms   p95 {p95:6.2f} ms   mean {statistics.mean(samples):6.2f} ms"


def startup():
    commands = {
        "kubesh -c 'echo x'": [KUBESH, "-c", "echo x"],
        # The interpreter itself, not a version-manager shim in front of it.
        "python3 -c 'print(1)'": [sys.executable, "-c", "print(1)"],
    }
    samples = {name: [] for name in commands}
    for name, argv in commands.items():  # warm the page cache
        timed(argv)
    for _ in range(RUNS):
        for name, argv in commands.items():
            samples[name].append(timed(argv))
    print(f"start-up, {RUNS} runs each, interleaved (python3 is the interpreter itself):")
    for name, values in samples.items():
        print(f"  {name:<24} {summary(values)}")


def idle_memory():
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.execv(KUBESH, [KUBESH])
    output = b""
    deadline = time.time() + 10
    while b"$ " not in output and time.time() < deadline:
        output += os.read(fd, 4096)
    time.sleep(0.5)  # idle at the prompt
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    os.write(fd, b"exit\r")
    os.waitpid(pid, 0)
    print("idle interactive session (after the first prompt):")
    print(f"  peak RSS (VmHWM) {fields['VmHWM'].strip()}   current RSS (VmRSS) {fields['VmRSS'].strip()}")


if __name__ == "__main__":
    startup()
    idle_memory()
