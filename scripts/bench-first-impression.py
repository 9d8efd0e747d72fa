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

Two kinds of kubesh runs, interleaved with the rest:
- host: `KUBESH_LOCAL_IMAGES=host`, the pod runs `python` from this
  machine's PATH, as on a machine with no Docker engine (a fresh machine
  with nothing but the binary);
- engine (where a Docker engine answers): the pod runs in an image through
  the engine, as where one is installed. No registry is reachable here, so
  the image is a stand-in built by the script from this machine's Debian
  Python (`/usr/bin/python3.11`, its standard library and
  `/usr/lib/python3/dist-packages`, the C libraries it needs and a static
  busybox: about the size of `python:3.12-slim`), named by
  `PYTHON_IMAGE`. Two cases: "engine, new image" gives each run a new,
  empty cache directory (XDG_CACHE_HOME) too, so each run pays the image's
  export and unpack, as a user's first run of an image does; "engine" keeps
  one cache directory across runs, as a user's is, so a new cluster finds
  the image an earlier one unpacked (the engine has the image in both).

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


STAND_IN = "kubesh-bench/python:3.11"


def stand_in_image():
    """Builds the stand-in Python image; None (with why) without an engine."""
    if shutil.which("docker") is None or not os.path.exists("/usr/bin/python3.11"):
        return None
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return None
    with tempfile.TemporaryDirectory() as context:
        def copy(path):
            target = os.path.join(context, "root", path.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.isdir(path):
                shutil.copytree(path, target, symlinks=True)
            else:
                shutil.copy2(path, target)
        for path in ["/usr/bin/python3.11", "/usr/lib/python3.11", "/usr/lib/python3/dist-packages",
                     "/lib64/ld-linux-x86-64.so.2", "/bin/busybox"]:
            copy(path)
        for library in ["libc.so.6", "libm.so.6", "libz.so.1", "libexpat.so.1"]:
            copy(os.path.join("/lib/x86_64-linux-gnu", library))
        with open(os.path.join(context, "Dockerfile"), "w") as out:
            out.write(
                "FROM scratch\nCOPY root /\n"
                'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
                "RUN ln -s python3.11 /usr/bin/python && ln -s python3.11 /usr/bin/python3\n"
                "ENV PATH=/usr/local/bin:/usr/bin:/bin\n"
            )
        subprocess.run(["docker", "build", "-q", "-t", STAND_IN, context], check=True, capture_output=True)
    size = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", STAND_IN],
                          capture_output=True, text=True, check=True).stdout.strip()
    return int(size)


def first_impression(work, program_dir, mode):
    data = tempfile.mkdtemp(dir=work, prefix="data-")
    cache = os.path.join(work, "cache") if mode == "engine" else os.path.join(data, "cache")
    env = dict(os.environ, XDG_DATA_HOME=data, XDG_CACHE_HOME=cache,
               KUBESH_LOCAL_IMAGES="host" if mode == "host" else "engine")
    if mode != "host":
        env["PYTHON_IMAGE"] = STAND_IN
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
    size = stand_in_image()
    modes = ["host"] + (["engine", "engine, new image"] if size else [])
    try:
        # One of each first: caches warm.
        plain(program_dir)
        for mode in modes:
            first_impression(work, program_dir, mode)
        python, kubesh = [], {mode: [] for mode in modes}
        for _ in range(RUNS):
            python.append(plain(program_dir))
            for mode in modes:
                kubesh[mode].append(first_impression(work, program_dir, mode))
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        print(f"first impression, no local cluster running, {RUNS} runs each (ms); "
              f"load average after: {load}")
        if size:
            print(f"engine: the stand-in image {STAND_IN}, {size / 1e6:.0f} MB")
        else:
            print("engine: not measured (no Docker engine answers, or no /usr/bin/python3.11)")
        print(f"  {'':66} {'median':>8} {'p95':>8} {'max':>8}")
        rows = [("python3 hello.py", python)]
        for mode in modes:
            rows += [
                (f"{mode}: the local cluster started", [k[0] for k in kubesh[mode]]),
                (f"{mode}: kubesh --local -c 'python hello.py': output", [k[1] for k in kubesh[mode]]),
                (f"{mode}: kubesh --local -c 'python hello.py': ended", [k[2] for k in kubesh[mode]]),
            ]
        for label, times in rows:
            median, p95, most = figures(times)
            print(f"  {label:66} {median:8.1f} {p95:8.1f} {most:8.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
