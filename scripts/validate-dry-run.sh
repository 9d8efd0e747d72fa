#!/usr/bin/env bash
# Validates the objects kubesh creates, for every runtime, in the background
# and in the foreground, with either security profile, against the official Kubernetes schemas
# (kubernetes-validate --strict, from PyPI).
# Usage: scripts/validate-dry-run.sh [PATH_TO_KUBESH]
set -euo pipefail
kubesh="$(realpath "${1:-target/debug/kubesh}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/program" "$work/objects"
cd "$work/program"

echo 'console.log("hi")' > app.js
echo 'print("hi")' > app.py
echo 'puts "hi"' > app.rb
echo 'echo hi' > app.sh
echo 'print "hi\n";' > app.pl
echo '<?php echo "hi";' > app.php
echo 'class App { public static void main(String[] a) { System.out.println("hi"); } }' > App.java
cp /bin/true ./app-binary
echo '{"name": "app"}' > package.json

status=0
for program in app.js app.py app.rb app.sh app.pl app.php App.java ./app-binary; do
  for mode in background foreground; do
    for profile in default restricted; do
      line="POD_SECURITY=$profile $program"
      [ "$mode" = background ] && line="$line &"
      out="$work/objects/$(echo "$program" | tr -c 'a-zA-Z0-9\n' '-')-$mode-$profile.yaml"
      "$kubesh" --dry-run -c "$line" > "$out"
      if kubernetes-validate --strict --quiet "$out"; then
        echo "valid: $program ($mode, $profile profile)"
      else
        echo "INVALID: $program ($mode, $profile profile)"
        status=1
      fi
    done
  done
done
exit $status
