#!/usr/bin/env bash
# Print the path of a working Python 3.13 interpreter, or explain how to get one and fail.
# pyenv's `python3.13` shim fails unless pyenv selects 3.13, so try the real binaries too.
set -u
candidates=(python3.13)
if command -v pyenv >/dev/null 2>&1; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$' | sort -rV); do
    candidates+=("$(pyenv root)/versions/$v/bin/python3.13")
  done
fi
candidates+=("$HOME"/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13)
for c in "${candidates[@]}"; do
  if out=$("$c" -c 'import sys; assert sys.version_info[:2] == (3, 13); print(sys.executable)' 2>/dev/null); then
    echo "$out"; exit 0
  fi
done
echo "error: no Python 3.13 found (Lambda runs python3.13). Install it, e.g. 'pyenv install 3.13'," >&2
echo "       or 'apt-get install python3.13' on Debian 13, then run make again." >&2
exit 1
