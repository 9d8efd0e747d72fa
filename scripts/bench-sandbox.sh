#!/usr/bin/env bash
# The local cluster's pod sandbox, measured against pods run directly on
# this machine, in one run: the figures bench (local-cluster/benches) twice,
# once as is and once with KUBESH_LOCAL_SANDBOX=off. The difference in
# "create → Running" is what the sandbox (namespaces, the pod's network,
# the mount view) costs per pod.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -q -p local-cluster --bench figures --no-run 2>/dev/null
for mode in sandbox direct; do
  echo "== pods: $mode"
  if [ "$mode" = direct ]; then
    export KUBESH_LOCAL_SANDBOX=off
  fi
  cargo bench -q -p local-cluster --bench figures 2>/dev/null
done
