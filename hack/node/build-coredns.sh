#!/usr/bin/env bash
# Build CoreDNS (the cluster's DNS server) from its Go module, once, into
# ~/.cache/kubevox/node/coredns-<version>/coredns. Prints that file.
#
# `go install module@version` builds exactly the module's own go.mod (CoreDNS has no replace
# directives), static (CGO_ENABLED=0) so it runs in an image FROM scratch.
set -euo pipefail

COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
dir="$cache/node/coredns-${COREDNS_VERSION}"

if [[ -x "$dir/coredns" ]]; then
  echo "$dir/coredns"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build CoreDNS" >&2; exit 1; }
echo "building CoreDNS ${COREDNS_VERSION} into $dir (first time only: a few minutes)" >&2
tmp="$dir.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
  "github.com/coredns/coredns@${COREDNS_VERSION}" >&2
mkdir -p "$(dirname "$dir")"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir/coredns"
