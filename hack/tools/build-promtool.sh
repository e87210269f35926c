#!/usr/bin/env bash
# Build a Prometheus command from the Go modules pinned in hack/tools/promtool/go.mod, once, into
# ~/.cache/kubevox/<command>/<version>/bin. Prints that directory.
#
#   build-promtool.sh               promtool: the deploy tests evaluate the PromQL kubevox ships
#                                   (KEDA query, dashboard queries) with `promtool test rules`.
#   build-promtool.sh prometheus    the Prometheus server the node's dev install runs as a pod
#                                   (hack/images/prometheus.Dockerfile).
#
# Prometheus 3.x is published as github.com/prometheus/prometheus v0.3XX.Y (v0.313.5 is
# Prometheus 3.13). Its go.mod replaces cloud.google.com/go, so `go install` refuses it; like
# hack/controlplane, our own go.mod repeats that replace and requires both commands as tools.
# (v0.316.0 has no replace, but requires pseudo-versions the module proxy no longer serves.)
# Both are built with Kubernetes service discovery alone (Prometheus's own build tags): the other
# twenty discovery plugins would pull every cloud SDK into the build (5 of a cold run's minutes
# for promtool alone), and with the same tags promtool reuses the server's compiled packages.
# promtool only tests and checks rules here; a scrape config naming another discovery would
# not parse.
#
# KUBEVOX_PROMTOOL_DIR pointing at a directory holding an executable `promtool` skips the build.
set -euo pipefail

cmd="${1:-promtool}"
case "$cmd" in
  promtool | prometheus) tags="remove_all_sd,enable_kubernetes_sd" ;;
  *) echo "usage: $0 [promtool|prometheus]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/promtool" && pwd)"
VERSION="$(awk '$1=="github.com/prometheus/prometheus" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")"

if [[ "$cmd" == promtool && -n "${KUBEVOX_PROMTOOL_DIR:-}" && -x "${KUBEVOX_PROMTOOL_DIR}/promtool" ]]; then
  echo "${KUBEVOX_PROMTOOL_DIR}"
  exit 0
fi

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
bin="$cache/$cmd/${VERSION}/bin"
if [[ -x "$bin/$cmd" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build $cmd (apt-get install golang or see go.dev)" >&2; exit 1; }
echo "building $cmd ${VERSION} into $bin (first time only: several minutes)" >&2
minor="${VERSION#v0.}"; minor="${minor%%.*}"          # v0.313.5 -> Prometheus 3.13.5
release="${minor:0:1}.${minor:1}.${VERSION##*.}"
tmp="$bin.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
(
  cd "$here"
  CGO_ENABLED=0 go build -trimpath -tags "$tags" \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${release}" \
    -o "$tmp/$cmd" "github.com/prometheus/prometheus/cmd/$cmd"
) >&2
mkdir -p "$(dirname "$bin")"
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
echo "$bin"
