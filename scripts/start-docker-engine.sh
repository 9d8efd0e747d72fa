#!/usr/bin/env bash
# Starts a Docker engine (dockerd, as root, in the background) for the
# tests that build and run images, unless one already answers at the
# default socket. Tries the default storage driver, then vfs (which works
# on any file system). Waits at most 60 s for the engine's socket; prints
# one line saying what it did. Its log is $DOCKERD_LOG (default:
# dockerd.log in the system's temporary directory).
set -uo pipefail

socket=/var/run/docker.sock
log=${DOCKERD_LOG:-${TMPDIR:-/tmp}/dockerd.log}

answers() {
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

if answers; then
    echo "docker engine: already running ($(docker version --format '{{.Server.Version}}'))"
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "docker engine: dockerd is not installed; the image tests will say they were skipped"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "docker engine: not started (dockerd needs root); the image tests will say they were skipped"
    exit 0
fi

start() {
    # Not a child of this script's shell: it outlives it, as a service.
    setsid dockerd "$@" >>"$log" 2>&1 </dev/null &
    local pid=$!
    for _ in $(seq 300); do
        if answers; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.2
    done
    kill "$pid" 2>/dev/null
    return 1
}

if start; then
    echo "docker engine: started ($(docker info --format '{{.Driver}}' 2>/dev/null) storage driver; log in $log)"
elif start --storage-driver vfs; then
    echo "docker engine: started with the vfs storage driver (the default one failed; log in $log)"
else
    echo "docker engine: did not answer at $socket within 60 s (log in $log: $(tail -n 1 "$log")); the image tests will say they were skipped"
fi
exit 0
