#!/usr/bin/env python3
"""Programs that bring a Dockerfile, in one run on kubesh's local cluster in
engine mode (pods run in their images through the Docker engine):

1. Build time of a small image, cold and cached, beside `docker build` of
   the same directory. Cold: the file the Dockerfile copies first changed,
   so every step after the base image runs again (the base is local). Cached:
   the same files again — `docker build` finds every step in its cache;
   kubesh finds the image of those files by its content tag and does not
   build at all. kubesh's figure is the one it prints ("built ... in").
2. Launch -> ready of the program in the background (`kubesh --local -c
   'sh app.sh &'`, until kubesh exits once the program answers on its
   port): built from its Dockerfile (cold: a build included; cached: none)
   beside the same program with no Dockerfile, in a stock runtime image.

No registry is reachable here, so the base image and the stock runtime image
are one stand-in built by the script: a static busybox from scratch, with a
`bash` that runs its `sh` (Debian's busybox-static), named by `SHELL_IMAGE`
for the stock program.

Usage: scripts/bench-build.py KUBESH [RUNS]
(a release build: cargo build --release)
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BASE = "kubesh-bench/busybox-bash:1"
APP = """mkdir -p /tmp/www
cat /built /app/app.sh > /tmp/www/index.html 2>/dev/null || echo stock > /tmp/www/index.html
exec httpd -f -p "0.0.0.0:$PORT" -h /tmp/www
"""
DOCKERFILE = f"""FROM {BASE}
COPY nonce /nonce
RUN cat /nonce > /built && mkdir -p /srv && echo built >> /built
COPY app.sh /app/app.sh
"""


def run(command, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def base_image():
    with tempfile.TemporaryDirectory() as context:
        shutil.copy("/bin/busybox", os.path.join(context, "busybox"))
        with open(os.path.join(context, "Dockerfile"), "w") as out:
            out.write(
                "FROM scratch\nCOPY busybox /bin/busybox\n"
                'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
                "RUN printf '#!/bin/sh\\nexec sh \"$@\"\\n' > /bin/bash && chmod +x /bin/bash\n"
            )
        result = run(["docker", "build", "-q", "-t", BASE, context])
        if result.returncode != 0:
            sys.exit(f"docker build of the base image failed: {result.stderr}")


def program(work, name, dockerfile):
    directory = os.path.join(work, name)
    os.makedirs(directory)
    with open(os.path.join(directory, "app.sh"), "w") as out:
        out.write(APP)
    if dockerfile:
        with open(os.path.join(directory, "Dockerfile"), "w") as out:
            out.write(DOCKERFILE)
        with open(os.path.join(directory, "nonce"), "w") as out:
            out.write("0\n")
    return directory


def kubesh(env, directory, line):
    return run([KUBESH, "--local", "-c", line], cwd=directory, env=env, timeout=300)


def launch(env, directory):
    """Seconds from `sh app.sh &` to kubesh's exit once ready, and the build
    time kubesh printed (None when it did not build)."""
    began = time.monotonic()
    result = kubesh(env, directory, "sh app.sh &")
    took = time.monotonic() - began
    if result.returncode != 0 or "ready in" not in result.stdout + result.stderr:
        sys.exit(f"the launch failed ({result.returncode}): {result.stdout}{result.stderr}")
    built = re.search(r"built \S+ from \S+ in ([0-9.]+) s", result.stderr)
    ended = kubesh(env, directory, "kill app")
    if ended.returncode != 0:
        sys.exit(f"kill app failed: {ended.stdout}{ended.stderr}")
    return took * 1000, float(built.group(1)) * 1000 if built else None


def docker_build(directory, tag):
    began = time.monotonic()
    result = run(["docker", "build", "-q", "-t", tag, directory])
    if result.returncode != 0:
        sys.exit(f"docker build failed: {result.stderr}")
    return (time.monotonic() - began) * 1000


def line(label, samples):
    ordered = sorted(samples)
    p95 = ordered[max(0, round(len(ordered) * 0.95) - 1)]
    print(f"  {label:58} {statistics.median(ordered):8.0f} {p95:8.0f} {ordered[-1]:8.0f}")


def main():
    base_image()
    work = tempfile.mkdtemp()
    env = dict(os.environ, XDG_DATA_HOME=os.path.join(work, "data"), KUBESH_LOCAL_IMAGES="engine",
               SHELL_IMAGE=BASE)
    env.pop("KUBECONFIG", None)
    built_dir = program(work, "built", dockerfile=True)
    stock_dir = program(work, "stock", dockerfile=False)
    nonce = os.path.join(built_dir, "nonce")
    figures = {key: [] for key in [
        "docker build, cold", "kubesh's build, cold", "docker build, cached",
        "launch -> ready, Dockerfile, cold (build included)",
        "launch -> ready, Dockerfile, cached (no build)",
        "launch -> ready, stock runtime image",
    ]}
    try:
        # Warm up: the cluster started, the base image unpacked once.
        launch(env, stock_dir)
        for i in range(RUNS):
            with open(nonce, "w") as out:
                out.write(f"kubesh {i} {time.time_ns()}\n")
            took, build = launch(env, built_dir)
            if build is None:
                sys.exit("kubesh did not build changed files")
            figures["launch -> ready, Dockerfile, cold (build included)"].append(took)
            figures["kubesh's build, cold"].append(build)
            took, build = launch(env, built_dir)
            if build is not None:
                sys.exit("kubesh built the same files again")
            figures["launch -> ready, Dockerfile, cached (no build)"].append(took)
            figures["launch -> ready, stock runtime image"].append(launch(env, stock_dir)[0])
            with open(nonce, "w") as out:
                out.write(f"docker {i} {time.time_ns()}\n")
            figures["docker build, cold"].append(docker_build(built_dir, f"kubesh-bench/docker-built:{i}"))
            figures["docker build, cached"].append(docker_build(built_dir, f"kubesh-bench/docker-built:{i}"))
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        print(f"programs with a Dockerfile, {RUNS} runs each (ms); load average after: {load}")
        print(f"  {'':58} {'median':>8} {'p95':>8} {'max':>8}")
        for label, samples in figures.items():
            line(label, samples)
    finally:
        run([KUBESH, "local-cluster", "stop"], env=env)
        shutil.rmtree(work, ignore_errors=True)


KUBESH = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else sys.exit(__doc__)
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 10

if __name__ == "__main__":
    main()
