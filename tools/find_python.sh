#!/usr/bin/env bash
# Prints the path of a Python >= 3.12 interpreter, or explains and fails.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for c in "${PYTHON:-}" python3.13 python3.12 python3; do
  [ -n "$c" ] || continue
  if command -v "$c" >/dev/null 2>&1 && ok "$c"; then command -v "$c"; exit 0; fi
done
# pyenv installs interpreters that its shims may not activate
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for p in "$root"/versions/3.13*/bin/python3 "$root"/versions/3.12*/bin/python3; do
    if [ -x "$p" ] && ok "$p"; then echo "$p"; exit 0; fi
  done
fi
echo "error: mfg_solvers needs Python >= 3.12 (tried python3.13, python3.12, python3 and pyenv)." >&2
echo "       Install one, or run: make PYTHON=/path/to/python3.12 <target>" >&2
exit 1
