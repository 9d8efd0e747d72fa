#!/usr/bin/env python3
"""Reliability figures: hostile input and credential-like files.

1. Hostile input: LINES generated scripts (seeded, so a run can be
   repeated), each fed to one `kubesh` reading its script from standard
   input, with a kubeconfig whose server does not answer. Counted: panics
   (exit status 101 or a panic message), hangs (no exit within 10 s), and
   errors shown in Rust's debug form (`Os {`, `Error {`, `kind:`), which a
   user must never see.
2. Credentials: a program directory holding the credential-like files
   users keep beside their programs (kubeconfigs under other names, cloud,
   registry and login files, private keys, state files, keystores), each
   with realistic content. `kubesh --dry-run` shows the bundle it would
   ship; the script unpacks it and counts the credential files inside.

Usage: scripts/reliability.py [PATH_TO_KUBESH] [LINES]   (cargo build first)
"""

import base64
import concurrent.futures
import io
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile

KUBESH = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/debug/kubesh")
LINES = int(sys.argv[2]) if len(sys.argv) > 2 else 2000

KUBECONFIG = """apiVersion: v1
kind: Config
current-context: nowhere
contexts:
- name: nowhere
  context: {cluster: c, user: u}
clusters:
- name: c
  cluster: {server: 'https://127.0.0.1:9'}
users:
- name: u
  user: {token: not-a-real-token}
"""

FRAGMENTS = [
    "echo", "cd", "export", "unset", "ps", "logs", "kill", "env", "curl", "cat", "set -x", "set -e",
    "exit", "source", "history", "help", "jobs", "fg", "wait", "scale", "watch", "forward", "exec",
    "python", "node", "./x.py", "x.py", "-c", "-m", "-e", "--dry-run", "&", "&&", "||", ";", "|", ">",
    ">>", "<", "2>&1", "'", '"', "\\", "$", "${", "}", "$(", ")", "`", "$((", "))", "*", "?", "[", "]",
    "~", "#", "=", "A=", "PATH=", "SERVICE_PORT=", "REPLICAS=-1", "REPLICAS=99999", "SERVICE_NAME=Bad_Name",
    "\t", "\r", "\x1b[31m", "\x00", "\xff", "é", "🙂", "\u202e", "%s%n", "../../..", "/", "/dev/zero",
    "0" * 40, "-" * 3, "x" * 5000, "$" * 50, "(" * 200, "'" * 101, "\\" * 99,
]


def hostile_line(rng):
    words = rng.choices(FRAGMENTS, k=rng.randint(1, 12))
    joiner = rng.choice(["", " ", " ", "\n"])
    return joiner.join(words)


def run_one(args):
    index, script, env = args
    try:
        done = subprocess.run([KUBESH], input=script.encode("utf-8", "surrogatepass"), env=env,
                              cwd=env["HOME"], capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return index, "hang", script
    stderr = done.stderr.decode(errors="replace")
    if done.returncode == 101 or "panicked" in stderr:
        return index, "panic", script
    if re.search(r"\bOs \{|\bError \{|\bkind: [A-Z]", stderr):
        return index, "debug", script
    return index, "ok", script


def hostile(work):
    home = os.path.join(work, "home")
    os.makedirs(home)
    kubeconfig = os.path.join(work, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(KUBECONFIG)
    env = dict(os.environ, HOME=home, KUBECONFIG=kubeconfig, XDG_DATA_HOME=os.path.join(work, "data"),
               XDG_CONFIG_HOME=os.path.join(work, "config"))
    rng = random.Random(11)
    cases = [(i, hostile_line(rng), env) for i in range(LINES)]
    outcomes = {"ok": 0, "panic": 0, "hang": 0, "debug": 0}
    bad = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for index, outcome, script in pool.map(run_one, cases):
            outcomes[outcome] += 1
            if outcome != "ok":
                bad.append((outcome, index, script))
    print(f"hostile input: {LINES} scripts (seed 11): {outcomes['panic']} panics, {outcomes['hang']} hangs, "
          f"{outcomes['debug']} errors in debug form")
    for outcome, index, script in bad[:10]:
        print(f"  {outcome} #{index}: {script[:120]!r}")
    return len(bad)


PEM_KEY = "-----BEGIN {} PRIVATE KEY-----\n" + "\n".join(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" * 1] * 12) + "\n-----END {} PRIVATE KEY-----\n"
KUBE = """apiVersion: v1
kind: Config
clusters:
- cluster: {server: 'https://203.0.113.7:6443'}
  name: prod
users:
- name: admin
  user:
    token: eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl
contexts:
- context: {cluster: prod, user: admin}
  name: prod
current-context: prod
"""

CREDENTIALS = {
    "admin.conf": KUBE,
    "my-cluster.yaml": KUBE,
    "kubeconfig": KUBE,
    ".kube/config": KUBE,
    ".aws/credentials": "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    "aws.env": "AWS_ACCESS_KEY_ID=AKIA2E0A8F3B244C9986\nAWS_SECRET_ACCESS_KEY=7oXw2kPq9Lz4Rt8Vb1Nc6Hy3Jm5Df0Gs\n",
    ".npmrc": "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789\n",
    ".netrc": "machine api.example.com login me password s3cret\n",
    ".docker/config.json": '{"auths": {"https://index.docker.io/v1/": {"auth": "bWU6czNjcmV0"}}}\n',
    ".git-credentials": "https://me:ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com\n",
    ".pgpass": "db.example.com:5432:app:me:s3cret\n",
    ".pypirc": "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6\n",
    "service-account.json": '{"type": "service_account", "project_id": "p", "private_key_id": "abc", '
                            '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n", '
                            '"client_email": "x@p.iam.gserviceaccount.com"}\n',
    "gcp-key.json": '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n'
                    '-----END PRIVATE KEY-----\\n", "client_email": "y@p.iam.gserviceaccount.com"}\n',
    "terraform.tfstate": '{"version": 4, "terraform_version": "1.6.0", "resources": []}\n',
    "prod.tfstate.backup": '{"version": 4, "terraform_version": "1.6.0", "resources": []}\n',
    "keystore.jks": "\xfe\xed\xfe\xed binary keystore",
    "store.p12": "0\x82 binary pkcs12",
    "htpasswd": "admin:$apr1$abc$0123456789abcdefghijkl\n",
    ".htpasswd": "me:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
    ".envrc": "export DATABASE_PASSWORD=s3cret\n",
    ".env": "SECRET_KEY=abc\nDB_PASSWORD=s3cret\n",
    "id_rsa": PEM_KEY.format("RSA", "RSA"),
    "id_ed25519": PEM_KEY.format("OPENSSH", "OPENSSH"),
    "deploy.pem": PEM_KEY.format("EC", "EC"),
    "server.key": PEM_KEY.format("RSA", "RSA"),
    "tls/private.txt": PEM_KEY.format("ENCRYPTED", "ENCRYPTED"),
    "notes-key.txt": PEM_KEY.format("RSA", "RSA"),
    ".azure/accessTokens.json": '[{"accessToken": "eyJ0eXAiOiJKV1Qi", "refreshToken": "0.AAAA", "tokenType": "Bearer"}]\n',
    "credentials.json": '{"installed": {"client_id": "x.apps.googleusercontent.com", "client_secret": "GOCSPX-abc"}}\n',
    "secrets.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: czNjcmV0}\n",
    "gh-token": "ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
    "slack.env": "SLACK_TOKEN=xoxb-123456789012-123456789012-abcdefghijklmnopqrstuvwx\n",
    ".config/gcloud/application_default_credentials.json":
        '{"client_id": "x.apps.googleusercontent.com", "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty", '
        '"refresh_token": "1//0abc", "type": "authorized_user"}\n',
}


def bundle_names(dry_run_output):
    """The file names in the bundle a --dry-run shows (all its chunks)."""
    chunks = {}
    lines = dry_run_output.splitlines()
    i = 0
    while i < len(lines):
        found = re.match(r"\s*(bundle\.tgz|part-\d+):\s*>?-?\s*(\S*)$", lines[i])
        if found:
            key, text = found.group(1), found.group(2)
            indent = None
            i += 1
            while i < len(lines):
                line = lines[i]
                stripped = line.lstrip()
                depth = len(line) - len(stripped)
                if indent is None:
                    indent = depth
                if not stripped or depth < indent or ":" in stripped:
                    break
                text += stripped
                i += 1
            chunks.setdefault(key, text)
            continue
        i += 1
    data = b"".join(base64.b64decode(chunks[k]) for k in sorted(chunks))
    if not data:
        return []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return [m.name.lstrip("./") for m in tar.getmembers() if m.isfile()]


def credentials(work):
    app = os.path.join(work, "app")
    os.makedirs(app)
    with open(os.path.join(app, "main.py"), "w") as f:
        f.write("print('hello')\n")
    for name, text in CREDENTIALS.items():
        path = os.path.join(app, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(text.encode("latin-1", "replace") if "\xfe" in text or "\x82" in text else text.encode())
    with open(os.path.join(work, "kubeconfig"), "w") as f:
        f.write(KUBECONFIG)
    env = dict(os.environ, HOME=os.path.join(work, "home"), KUBECONFIG=os.path.join(work, "kubeconfig"),
               XDG_DATA_HOME=os.path.join(work, "data"), XDG_CONFIG_HOME=os.path.join(work, "config"))
    done = subprocess.run([KUBESH, "--dry-run", "-c", "python3 main.py &"], cwd=app, env=env,
                          capture_output=True, text=True, timeout=60)
    shipped = bundle_names(done.stdout)
    if "main.py" not in shipped:
        raise SystemExit(f"the bundle could not be read from --dry-run:\n{done.stdout[:2000]}{done.stderr}")
    leaked = sorted(name for name in CREDENTIALS if name in shipped)
    print(f"credentials: {len(CREDENTIALS)} credential-like files beside a program: {len(leaked)} shipped"
          + (": " + ", ".join(leaked) if leaked else "") + f"; {len(shipped)} files shipped in all")
    return len(leaked)


def main():
    work = tempfile.mkdtemp()
    failures = hostile(os.path.join(work, "hostile")) if LINES else 0
    failures += credentials(os.path.join(work, "credentials"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
