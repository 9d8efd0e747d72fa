#!/usr/bin/env bash
# kubesh end to end, against the cluster of the current kubeconfig (kind,
# kubeadm, minikube, a cloud cluster, or kubesh's local cluster):
#
#   KUBECONFIG=… scripts/e2e-real-cluster.sh
#
# Runs target/release/kubesh (or $KUBESH) in a namespace of its own, made
# for the run and deleted at the end, whatever happens. Needs kubectl, and
# permission to create namespaces. The plan it automates, and the parts
# run by hand, are in docs/real-clusters.md.
#
# Each check prints `ok` or `FAIL` with what was seen; the exit status is
# the number of failures (0: all passed).
set -uo pipefail

KUBESH=${KUBESH:-target/release/kubesh}
KUBESH=$(cd "$(dirname "$KUBESH")" && pwd)/$(basename "$KUBESH")
[ -x "$KUBESH" ] || { echo "no kubesh at $KUBESH: cargo build --release, or set KUBESH" >&2; exit 100; }
command -v kubectl >/dev/null || { echo "kubectl is needed on PATH" >&2; exit 100; }

run_id=$(printf '%04x%04x' $RANDOM $RANDOM)
ns=kubesh-e2e-$run_id
strict=kubesh-e2e-$run_id-restricted
work=$(mktemp -d)
failures=0

clean_up() {
    kubectl delete namespace "$ns" "$strict" --ignore-not-found --wait=false >/dev/null 2>&1
    rm -rf "$work"
}
trap clean_up EXIT

# check NAME EXPECTED-TEXT ACTUAL-OUTPUT
check() {
    if grep -qF -- "$2" <<<"$3"; then
        echo "ok    $1"
    else
        echo "FAIL  $1: expected to see: $2"
        sed 's/^/      | /' <<<"$3" | head -20
        failures=$((failures + 1))
    fi
}

# ks SCRIPT: kubesh in the run's namespace, from the programs' directory,
# bounded (a wait that never ends is a failure too).
ks() {
    (cd "$work" && timeout 300 "$KUBESH" --namespace "$ns" -c "$1" 2>&1)
}

kubectl create namespace "$ns" >/dev/null || exit 100
kubectl create namespace "$strict" >/dev/null || exit 100
kubectl label namespace "$strict" pod-security.kubernetes.io/enforce=restricted >/dev/null || exit 100
echo "kubesh e2e in namespace $ns of $(kubectl config current-context 2>/dev/null || echo '?')"

cat >"$work/hello.py" <<'EOF'
import sys
print("hello from python", sys.argv[1:])
EOF
cat >"$work/fail.py" <<'EOF'
raise SystemExit(3)
EOF
cat >"$work/hello.js" <<'EOF'
console.log("hello from node");
EOF
mkdir -p "$work/web" "$work/local"
cat >"$work/web/web.py" <<'EOF'
import http.server, os
class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"web says {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("", int(os.environ["PORT"])), Page).serve_forever()
EOF
mkdir -p "$work/nodeweb"
cat >"$work/nodeweb/api.js" <<'EOF'
require("http").createServer((req, res) => res.end(`api says ${req.url}\n`)).listen(process.env.PORT);
EOF
cat >"$work/local/loopback.py" <<'EOF'
import http.server, os
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), http.server.SimpleHTTPRequestHandler).serve_forever()
EOF

# Foreground programs: output, arguments and exit status.
out=$(ks 'python3 hello.py a b; echo status=$?')
check "python in the foreground" "hello from python ['a', 'b']" "$out"
check "its exit status" "status=0" "$out"
out=$(ks 'set +e; python3 fail.py; echo status=$?')
check "a failing program's status is \$?" "status=3" "$out"
out=$(ks 'node hello.js')
check "node in the foreground" "hello from node" "$out"

# A background service: ready, reached with and without a port, listed,
# logged, killed, and nothing of it left.
out=$(ks 'cd web; python3 web.py &')
check "a background service becomes ready" "web  ready in" "$out"
out=$(ks 'curl web:8080/with-port; curl web/without-port')
check "curl NAME:PORT/path" "web says /with-port" "$out"
check "curl NAME/path (no port)" "web says /without-port" "$out"
out=$(ks 'ps')
check "ps lists it" "web" "$out"
id=$(awk '/http:\/\/web:/ {print $1; exit}' <<<"$out")
check "ps shows its dproc id" "dp-" "$id"
out=$(ks 'logs web')
check "logs shows its requests" "GET /with-port" "$out"
out=$(ks 'kill web')
check "kill removes it" "killed web" "$out"
left=
for _ in $(seq 60); do
    left=$(kubectl get deployments,replicasets,pods,services,configmaps -n "$ns" \
        -l "kubesh.dev/dproc=$id" -o name 2>&1)
    [ -z "$left" ] && break
    sleep 1
done
check "nothing of it is left after kill (garbage collection)" "nothing left" "${left:-nothing left}"

# Node in the background too.
out=$(ks 'cd nodeweb; node api.js &')
check "node in the background becomes ready" "api  ready in" "$out"
out=$(ks 'curl api:8080/hi; kill api')
check "and answers" "api says /hi" "$out"

# A program bound to loopback never serves its Service: kubesh says so.
out=$(ks 'cd local; python3 loopback.py &')
check "a loopback-bound program is named" "listens on 127.0.0.1:8080" "$out"
ks 'kill loopback' >/dev/null

# A namespace enforcing Pod Security `restricted`: kubesh reads its label
# and launches with the restricted profile (a non-root user); with the
# image's own user (POD_SECURITY=default), the refusal in the API server's
# words, within the bound.
out=$(cd "$work" && timeout 300 "$KUBESH" --namespace "$strict" -c 'cd web; python3 web.py &
curl web/in-strict' 2>&1)
check "a restricted namespace runs a program" "web says /in-strict" "$out"
out=$(cd "$work" && timeout 120 "$KUBESH" --namespace "$strict" -c 'cd web; POD_SECURITY=default SERVICE_NAME=web2 python3 web.py &' 2>&1)
check "a restricted namespace's refusal is reported" "violates PodSecurity" "$out"

echo "$failures failure(s)"
exit "$failures"
