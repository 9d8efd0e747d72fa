#!/usr/bin/env bash
# Rewrites README.md's builtins table from the pages in builtins/ (the test
# `readme_table_matches_the_pages` prints the expected table when they differ).
set -euo pipefail
cd "$(dirname "$0")/.."
table="$(cargo test -q --bin kubesh readme_table_matches_the_pages 2>&1 | sed -n '/replace it with:/,/^note:/p' | grep '^|' || true)"
if [ -z "$table" ]; then
  echo "README.md's table is up to date"
  exit 0
fi
TABLE="$table" python3 - <<'PY'
import os
readme = open("README.md").read()
start = readme.index("| builtin | scope |")
end = readme.index("### Variables")
open("README.md", "w").write(readme[:start] + os.environ["TABLE"] + "\n\n" + readme[end:])
PY
echo "README.md's table updated"
