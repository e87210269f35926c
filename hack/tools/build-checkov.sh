#!/usr/bin/env bash
# Install checkov into its own virtualenv, once, from its lock (requirements/checkov.txt, with
# hashes; `make lock` writes it), under ~/.cache/kubevox/checkov-venv/<lock hash>. Prints the
# venv's bin directory. It lives apart from .venv because checkov pins many dependencies that
# would fight the project's own.
#
# KUBEVOX_CHECKOV_DIR pointing at a directory holding an executable `checkov` skips the install.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lock="$here/../../requirements/checkov.txt"
PYTHON="${PYTHON:-python3}"

if [[ -n "${KUBEVOX_CHECKOV_DIR:-}" && -x "${KUBEVOX_CHECKOV_DIR}/checkov" ]]; then
  echo "${KUBEVOX_CHECKOV_DIR}"
  exit 0
fi

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
version="$(sed -n 's/^checkov==\([^ ]*\).*/\1/p' "$lock")"
venv="$cache/checkov-venv/${version}-$(sha256sum "$lock" | cut -c1-12)"
# Scripts in a venv carry its absolute path: build it in place, mark it complete last.
if [[ -f "$venv/.complete" && -x "$venv/bin/checkov" ]]; then
  echo "$venv/bin"
  exit 0
fi

echo "installing checkov ${version} into $venv (first time only)" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$PYTHON" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
  -r "$lock" >&2
touch "$venv/.complete"
echo "$venv/bin"
