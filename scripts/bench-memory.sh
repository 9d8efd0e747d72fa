#!/usr/bin/env bash
# The local cluster's memory with 100 idle pods, for one or more builds of
# its server, one after the other in one run (to put a change beside the
# build before it):
#
#   scripts/bench-memory.sh target/release/local-cluster OTHER/local-cluster
#
# For each binary: a server on a fresh state directory, 100 pods running
# `sleep` created with kubectl, then its resident memory (all of it, and the
# anonymous part: the file-backed rest is the binary's own code, shared
# with the page cache). Pod processes are not counted. Needs kubectl.
set -euo pipefail
[ $# -gt 0 ] || set -- target/release/local-cluster
rss() { grep -E "^$2:" "/proc/$1/status" | awk '{ printf "%.1f MiB", $2 / 1024 }'; }
for binary in "$@"; do
    dir=$(mktemp -d)
    "$binary" --port 0 --kubeconfig "$dir/kubeconfig" --state "$dir/state" >"$dir/log" 2>&1 &
    server=$!
    export KUBECONFIG="$dir/kubeconfig"
    ready=
    for _ in $(seq 100); do
        if [ -f "$KUBECONFIG" ] && kubectl get namespaces >/dev/null 2>&1; then
            ready=1
            break
        fi
        sleep 0.1
    done
    [ -n "$ready" ] || { echo "$binary: the server did not start" >&2; cat "$dir/log" >&2; exit 1; }
    idle="$(rss $server VmRSS)"
    for i in $(seq 0 99); do
        printf -- '---\napiVersion: v1\nkind: Pod\nmetadata: {name: idle-%d}\nspec: {containers: [{name: main, image: busybox, command: [sleep, "3600"]}]}\n' "$i"
    done >"$dir/pods.yaml"
    kubectl apply -f "$dir/pods.yaml" >/dev/null
    running=0
    for _ in $(seq 240); do
        running=$(kubectl get pods --no-headers 2>/dev/null | grep -c ' Running ' || true)
        [ "$running" -ge 100 ] && break
        sleep 0.5
    done
    # Settled: the status writes and events of the last starts are done.
    sleep 3
    echo "$binary: idle $idle; 100 idle pods ($running running): $(rss $server VmRSS), anonymous $(rss $server RssAnon)"
    kill "$server"
    wait "$server" 2>/dev/null || true
    rm -rf "$dir"
done
