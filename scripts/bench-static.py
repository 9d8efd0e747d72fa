#!/usr/bin/env python3
"""The static binary beside the ordinary build: file size, and start-up
time of `kubesh -c 'echo x'` and `kubesh --version`, interleaved over many
runs (median, p95, mean).

Usage: scripts/bench-static.py ORDINARY STATIC [RUNS]
(build first: cargo build --release; scripts/build-static.sh)
"""

import os
import statistics
import subprocess
import sys
import time

if len(sys.argv) < 3:
    sys.exit(__doc__)
BINARIES = {"ordinary": sys.argv[1], "static": sys.argv[2]}
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 200


def timed(argv):
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - start) * 1000.0


def summary(samples):
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    return (
        f"median {statistics.median(samples):6.2f} ms   "
        f"p95 {p95:6.2f} ms   mean {statistics.mean(samples):6.2f} ms"
    )


def version(path):
    return subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def main():
    print("size:")
    for name, path in BINARIES.items():
        size = os.path.getsize(path)
        print(f"  {name:<9} {size / 1048576:6.1f} MiB  ({size} bytes)  {version(path)}")
    commands = {}
    for name, path in BINARIES.items():
        commands[f"{name} -c 'echo x'"] = [path, "-c", "echo x"]
        commands[f"{name} --version"] = [path, "--version"]
    samples = {name: [] for name in commands}
    for argv in commands.values():  # warm the page cache
        timed(argv)
    for _ in range(RUNS):
        for name, argv in commands.items():
            samples[name].append(timed(argv))
    print(f"start-up, {RUNS} runs each, interleaved:")
    for name, values in samples.items():
        print(f"  {name:<26} {summary(values)}")


if __name__ == "__main__":
    main()
