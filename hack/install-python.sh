#!/usr/bin/env bash
# Create the virtualenv with exactly the lock's packages (requirements/dev.txt, exported from
# uv.lock by `make lock`: every extra and the development tools), then kubevox itself, editable.
# A venv is made anew each time so that it holds the lock and nothing else.
set -euo pipefail
python="${1:-python3}"
venv="${2:-.venv}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "kubevox needs Python >= 3.11 (found: $("$python" --version 2>&1))" >&2
  exit 1
fi
if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
  echo "installing python3-venv" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --require-hashes)
# The lock is complete (uv resolved every dependency), so pip installs it as listed: --no-deps.
"${pip[@]}" -r requirements/build.txt
"${pip[@]}" -r requirements/dev.txt
# The call page's LiveKit browser SDK (spec.web), fetched at build time and checked by its hash.
bash hack/web/fetch-livekit-client.sh >/dev/null
# kubevox itself, built with the locked setuptools rather than an isolated, unpinned one.
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
# The static embedding model is distilled from the bundled MiniLM once (about a minute).
"$venv/bin/python" -m agent_runtime build-static-model
