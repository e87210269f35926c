#!/usr/bin/env bash
# Install checkov (PyPI) into its own virtualenv, once, under ~/.cache/kubevox/checkov-venv/<version>.
# Prints the venv's bin directory. It lives apart from .venv because checkov pins many
# dependencies that would fight the project's own.
#
# KUBEVOX_CHECKOV_DIR pointing at a directory holding an executable `checkov` skips the install.
set -euo pipefail

CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
PYTHON="${PYTHON:-python3}"

if [[ -n "${KUBEVOX_CHECKOV_DIR:-}" && -x "${KUBEVOX_CHECKOV_DIR}/checkov" ]]; then
  echo "${KUBEVOX_CHECKOV_DIR}"
  exit 0
fi

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
venv="$cache/checkov-venv/${CHECKOV_VERSION}"
# Scripts in a venv carry its absolute path: build it in place, mark it complete last.
if [[ -f "$venv/.complete" && -x "$venv/bin/checkov" ]]; then
  echo "$venv/bin"
  exit 0
fi

echo "installing checkov ${CHECKOV_VERSION} into $venv (first time only)" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$PYTHON" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==${CHECKOV_VERSION}" >&2
touch "$venv/.complete"
echo "$venv/bin"
