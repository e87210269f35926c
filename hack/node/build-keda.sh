#!/usr/bin/env bash
# Build KEDA's operator and its metrics API server (the bridge from Prometheus's
# kubevox_active_calls to the autoscaler; prometheus-adapter's module is not served here) from
# the module pinned in hack/node/keda/go.mod, once, into ~/.cache/kubevox/node/keda-<version>/bin.
# Prints that directory. One `go build` of both commands: they share nearly every package.
#
# KEDA's go.mod has a replace directive, so `go install module@version` refuses it; our own
# go.mod repeats it and requires both commands as tools (as hack/controlplane does).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/keda" && pwd)"
VERSION="$(awk '$1=="github.com/kedacore/keda/v2" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")"
cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
bin="$cache/node/keda-${VERSION}/bin"

if [[ -x "$bin/operator" && -x "$bin/adapter" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build KEDA (apt-get install golang or see go.dev)" >&2; exit 1; }
echo "building KEDA ${VERSION} into $bin (first time only: several minutes)" >&2
tmp="$bin.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
(
  cd "$here"
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=${VERSION#v}" \
    -o "$tmp/" github.com/kedacore/keda/v2/cmd/operator github.com/kedacore/keda/v2/cmd/adapter
) >&2
mkdir -p "$(dirname "$bin")"
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
echo "$bin"
