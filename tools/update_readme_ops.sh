#!/usr/bin/env bash
# Rewrites README.md's list of supported ONNX ops from the importer's own table
# (`tq import --list-ops`); tests/tools fails while the two disagree.
#   bash tools/update_readme_ops.sh [build/bin/tq]
set -euo pipefail
cd "$(dirname "$0")/.."
TQ="${1:-build/bin/tq}"
/usr/bin/python3 - "$TQ" <<'PY'
import subprocess, sys
ops = subprocess.run([sys.argv[1], "import", "--list-ops"], capture_output=True, text=True, check=True).stdout
s = open("README.md").read()
b, e = "<!-- onnx-ops:begin -->\n", "<!-- onnx-ops:end -->"
i, j = s.index(b) + len(b), s.index(e)
open("README.md", "w").write(s[:i] + ops + s[j:])
PY
echo "README.md: op list updated"
