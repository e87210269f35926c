#!/usr/bin/env bash
# Build the node's CoreDNS (the cluster's DNS server), once, into
# ~/.cache/kubevox/node/coredns-<version>-kubevox-<hash>/coredns. Prints that file.
#
# Not `go install github.com/coredns/coredns`, which compiles every plugin CoreDNS ships and
# their cloud SDKs (nearly twice the CPU time): hack/node/coredns/main.go is CoreDNS's main
# with only the plugins kubevox's Corefile (hack/node/coredns.yaml) uses, built with the
# CoreDNS version and dependencies pinned in its go.mod/go.sum. <hash> is that of main.go,
# go.mod and go.sum, so a change of the plugin set or of a version is a new directory (and a new
# image tag, kubevox_devenv.nodeimages); static (CGO_ENABLED=0) so it runs in an image FROM
# scratch.
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/coredns" && pwd)"
COREDNS_VERSION="$(awk '$1=="require" {$1=""; $0=$0} $1=="github.com/coredns/coredns" && $2 ~ /^v/ {print $2; exit}' "$src/go.mod")"
[[ -n "$COREDNS_VERSION" ]] || { echo "no github.com/coredns/coredns version in $src/go.mod" >&2; exit 1; }
hash="$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)"
cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
dir="$cache/node/coredns-${COREDNS_VERSION}-kubevox-${hash}"

if [[ -x "$dir/coredns" ]]; then
  echo "$dir/coredns"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build CoreDNS" >&2; exit 1; }
echo "building CoreDNS ${COREDNS_VERSION} (kubevox's plugins) into $dir (first time only: a few minutes)" >&2
tmp="$dir.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
# GitCommit is what CoreDNS reports as its commit (-version, coredns_build_info, the API
# server's user agent); CoreVersion is a constant of the module, right by itself.
(
  cd "$src"
  CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=kubevox-${hash}" \
    -o "$tmp/coredns" .
) >&2
mkdir -p "$(dirname "$dir")"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir/coredns"
