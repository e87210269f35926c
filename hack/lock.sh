#!/usr/bin/env bash
# The Python lock: uv.lock (one universal resolution of kubevox with every extra and group, for
# every platform, with hashes) and its exports in requirements/, which every install reads with
# `pip install --no-deps --require-hashes`:
#
#   requirements/operator.txt   the operator image: the API and the operator extra
#   requirements/runtime.txt    the runtime image: the voice stack, knowledge bases, offline LLM
#   requirements/dev.txt        .venv (make venv, CI): everything, with the development tools
#   requirements/build.txt      pip, setuptools and wheel: installing kubevox itself
#   requirements/checkov.txt    the checkov virtualenv (its own resolution: its pins fight ours)
#
#   bash hack/lock.sh            re-lock after editing pyproject.toml (keeps every other pin)
#   bash hack/lock.sh --upgrade  move every package to the newest version pyproject.toml allows
#   bash hack/lock.sh --check    offline: fail when pyproject.toml, uv.lock and the exports
#                                disagree (tests/deploy/test_lock.py runs it)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

uv="${UV:-.venv/bin/uv}"
[[ -x "$uv" ]] || uv="$(command -v uv)" || { echo "uv not found: run make venv first" >&2; exit 1; }

# The checkov version the deploy tests scan with.
CHECKOV_VERSION="3.3.30"

# The export profiles: file name, then uv export's selection.
exports() {
  local dir="$1"
  one() {
    local out="$1"; shift
    "$uv" export --frozen --offline --quiet --format requirements-txt --no-emit-project \
      --no-header "$@" --output-file "$dir/$out"
  }
  one operator.txt --extra operator
  one runtime.txt --extra voice --extra knowledge --group offline-llm
  one dev.txt --all-extras --group offline-llm
}

if [[ "${1:-}" == "--check" ]]; then
  # Offline, a pyproject.toml that asks for something new cannot even be resolved when uv's
  # cache lacks it (a fresh machine): uv then says so, not that the lock is stale. Either way the
  # lock is not pyproject's, and the answer is the same.
  "$uv" lock --check --offline --quiet \
    || { echo "uv.lock is not pyproject.toml's lock: run make lock" >&2; exit 1; }
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  exports "$tmp"
  for f in "$tmp"/*.txt; do
    diff -u "requirements/$(basename "$f")" "$f" >&2 \
      || { echo "requirements/$(basename "$f") is not uv.lock's export: run make lock" >&2; exit 1; }
  done
  exit 0
fi

"$uv" lock "$@"
exports requirements
# Not part of kubevox's resolution: the build requirements of pyproject.toml with pip itself,
# and checkov. uv pip compile keeps the pins already in the output file unless --upgrade.
build_requires="$(python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')"
compile() {
  local out="$1"; shift
  "$uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes --no-header \
    "$@" --output-file "$out" -
}
upgrade=(); [[ " $* " == *" --upgrade "* ]] && upgrade=(--upgrade)
printf '%s\npip\n' "$build_requires" | compile requirements/build.txt "${upgrade[@]}"
echo "checkov==${CHECKOV_VERSION}" | compile requirements/checkov.txt "${upgrade[@]}"
echo "locked: uv.lock and requirements/*.txt" >&2
