#!/usr/bin/env bash
# Build (once) and cache every program `make test` runs, in three chains side by side: one go
# build leaves cores idle while it downloads its modules and while it links. On 2 cores that
# gains nothing measurable (the builds are bound by the CPU: README, "Measured times").
#
# Each chain runs its steps in order, so that a step reuses what the one before it compiled
# (the node's Kubernetes binaries the control plane's packages, promtool Prometheus'); across
# chains the modules pin different Kubernetes libraries, so no package is compiled twice at once.
# A step that has its program cached prints its directory and returns at once.
#
#   hack/build-all.sh    # prints one line per chain; a failed step's log, then exits 1
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

chains=(
  "kubernetes: controlplane/build.sh node/build-kubernetes.sh"
  "node: node/build-keda.sh livekit/build.sh node/build-coredns.sh"
  "tools: tools/build-helm.sh tools/build-terraform.sh tools/build-terraform-providers.sh
     tools/build-promtool.sh:prometheus tools/build-promtool.sh:promtool tools/build-checkov.sh
     tools/fetch-third-party.sh tools/fetch-s3proxy.sh"
)

logs="$(mktemp -d "${TMPDIR:-/tmp}/kubevox-builds.XXXXXX")"
trap 'rm -rf "$logs"' EXIT

# run STEP: a script under hack/, ":" before its argument.
run() {
  local script="hack/${1%%:*}" arg=""
  [[ "$1" == *:* ]] && arg="${1#*:}"
  # shellcheck disable=SC2086  # $arg: no argument, or one word
  bash "$script" $arg
}

# chain NAME STEP...: the steps one after the other. A step's log is kept whole; what it says
# it builds shows as it starts.
chain() {
  local name="$1" started=$SECONDS step status
  shift
  for step in "$@"; do
    set +e
    run "$step" 2>&1 >/dev/null | tee -a "$logs/$name.log" |
      grep --line-buffered -E '^(building|fetching|installing) ' | sed -u "s/^/[$name] /" >&2
    status="${PIPESTATUS[0]}"
    set -e
    if ((status != 0)); then
      echo "build-all: $name: $step failed; the end of its log:" >&2
      tail -n 40 "$logs/$name.log" | sed "s/^/  [$name] /" >&2
      return 1
    fi
  done
  echo "build-all: $name ready in $((SECONDS - started)) s"
}

pids=()
for spec in "${chains[@]}"; do
  name="${spec%%:*}"
  # shellcheck disable=SC2086  # the steps: words
  chain "$name" ${spec#*:} &
  pids+=("$!")
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit "$failed"
