#!/usr/bin/env python3
"""Pods of one image on the local cluster, in one run: create -> Running
for the first pod of an image (the engine exports it and the cluster
unpacks it) and for the pods after it (the unpacked files are reused),
beside the same pods on a cluster that runs their commands from this
machine (KUBESH_LOCAL_IMAGES=host). The difference between the later pods
and the host-mode pods is what a cache hit costs.

Needs a Docker engine, a static busybox (/bin/busybox, Debian's
busybox-static), the official Python client (pip install kubernetes) and
the standalone server (a release build for figures):

    cargo build --release -p local-cluster --bin local-cluster
    scripts/bench-images.py SERVER [BEFORE]

where SERVER (and BEFORE, a build to compare with in the same run) is a
`local-cluster` binary.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from kubernetes import client, config, watch

LATER = 10


def build_image(tag):
    """The benchmark image: busybox from scratch and 20 MiB of files."""
    with tempfile.TemporaryDirectory() as context:
        shutil.copy("/bin/busybox", os.path.join(context, "busybox"))
        os.makedirs(os.path.join(context, "data"))
        for i in range(20):
            with open(os.path.join(context, "data", f"blob-{i}"), "wb") as out:
                out.write(os.urandom(1024 * 1024))
        with open(os.path.join(context, "Dockerfile"), "w") as out:
            out.write(
                "FROM scratch\nCOPY busybox /bin/busybox\n"
                'RUN ["/bin/busybox", "--install", "-s", "/bin"]\nCOPY data /data\n'
            )
        subprocess.run(["docker", "build", "-q", "-t", tag, context], check=True, capture_output=True)


def start(server, mode, workdir, label):
    kubeconfig = os.path.join(workdir, f"{label}.kubeconfig")
    env = dict(os.environ, KUBESH_LOCAL_IMAGES=mode)
    proc = subprocess.Popen(
        [server, "--kubeconfig", kubeconfig, "--state", os.path.join(workdir, label)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    images_line = ""
    for line in proc.stdout:
        if line.startswith("images:"):
            images_line = line.strip()
        if line.startswith("kubeconfig:"):
            break
    return proc, kubeconfig, images_line


def create_to_running(api, name, image):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": image, "command": ["sleep", "3600"]}],
        },
    }
    rv = api.list_namespaced_pod("default", limit=1).metadata.resource_version
    w = watch.Watch()
    began = time.monotonic()
    api.create_namespaced_pod("default", pod)
    for event in w.stream(api.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=120):
        obj = event["object"]
        if obj.metadata.name == name and obj.status.phase == "Running":
            w.stop()
            return (time.monotonic() - began) * 1000
    raise RuntimeError(f"{name} did not run")


def measure(server, mode, workdir, image, label):
    proc, kubeconfig, images_line = start(server, mode, workdir, label)
    try:
        api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
        first = create_to_running(api, "first", image)
        later = [create_to_running(api, f"later-{i}", image) for i in range(LATER)]
        return images_line, first, later
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    server = sys.argv[1]
    runs = [("engine", server, "engine")]
    if len(sys.argv) == 3:
        runs.append(("engine, the build before", sys.argv[2], "engine"))
    runs.append(("host", server, "host"))
    image = "kubesh-bench/busybox-data:1"
    began = time.monotonic()
    build_image(image)
    print(f"image {image}: busybox and 20 MiB of files (built in {time.monotonic() - began:.1f} s)")
    with tempfile.TemporaryDirectory() as workdir:
        for number, (label, binary, mode) in enumerate(runs):
            line, first, later = measure(binary, mode, workdir, image, f"run-{number}")
            print(f"== {label}: {line}")
            print(f"  first pod of the image: create -> Running {first:.0f} ms")
            print(
                f"  {LATER} later pods: create -> Running median {statistics.median(later):.0f} ms, "
                f"max {max(later):.0f} ms"
            )


if __name__ == "__main__":
    main()
