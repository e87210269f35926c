#!/usr/bin/env bash
# Build promtool (Prometheus's rule checker and rule unit-test runner) from the Go modules pinned
# in hack/tools/promtool/go.mod, once, into ~/.cache/kubevox/promtool/<version>/bin. Prints that
# directory. The deploy tests use it to evaluate the PromQL kubevox ships (prometheus-adapter
# rule, KEDA query, dashboard queries) against synthetic series with `promtool test rules`.
#
# Prometheus 3.x is published as github.com/prometheus/prometheus v0.3XX.Y (v0.313.5 is
# Prometheus 3.13). Its go.mod replaces cloud.google.com/go, so `go install` refuses it; like
# hack/controlplane, our own go.mod repeats that replace and requires promtool as a tool.
# (v0.316.0 has no replace, but requires pseudo-versions the module proxy no longer serves.)
#
# KUBEVOX_PROMTOOL_DIR pointing at a directory holding an executable `promtool` skips the build.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/promtool" && pwd)"
VERSION="$(awk '$1=="github.com/prometheus/prometheus" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")"

if [[ -n "${KUBEVOX_PROMTOOL_DIR:-}" && -x "${KUBEVOX_PROMTOOL_DIR}/promtool" ]]; then
  echo "${KUBEVOX_PROMTOOL_DIR}"
  exit 0
fi

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
bin="$cache/promtool/${VERSION}/bin"
if [[ -x "$bin/promtool" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build promtool (apt-get install golang or see go.dev)" >&2; exit 1; }
echo "building promtool ${VERSION} into $bin (first time only: several minutes)" >&2
minor="${VERSION#v0.}"; minor="${minor%%.*}"          # v0.313.5 -> Prometheus 3.13.5
release="${minor:0:1}.${minor:1}.${VERSION##*.}"
tmp="$bin.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
(
  cd "$here"
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${release}" \
    -o "$tmp/promtool" github.com/prometheus/prometheus/cmd/promtool
) >&2
mkdir -p "$(dirname "$bin")"
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
echo "$bin"
