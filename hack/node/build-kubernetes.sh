#!/usr/bin/env bash
# Build kubelet, kube-scheduler and kube-proxy from the k8s.io/kubernetes module pinned in
# hack/controlplane/go.mod, once, into ~/.cache/kubevox/node/k8s-<version>/bin. Prints that
# directory.
#
# A directory of its own, beside the control plane's (which running control planes use and must
# never be replaced under them); the shared packages come from Go's build cache when the control
# plane was built first, so only the node's own packages are compiled.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../controlplane" && pwd)"
K8S_VERSION="$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")"

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
bin="$cache/node/k8s-${K8S_VERSION}/bin"
tools=(kubelet kube-scheduler kube-proxy)

complete=1
for t in "${tools[@]}"; do [[ -x "$bin/$t" ]] || complete=0; done
if [[ $complete == 1 ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the node (apt-get install golang or see go.dev)" >&2; exit 1; }
echo "building kubelet, kube-scheduler and kube-proxy ${K8S_VERSION} into $bin (first time only: ~4 min on 2 cores after the control plane)" >&2
tmp="$bin.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
(
  cd "$here"
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean" \
    -o "$tmp/" \
    k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kube-proxy
) >&2
mkdir -p "$(dirname "$bin")"
# Only ever an incomplete directory is replaced (the check above returned for a complete one).
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
echo "$bin"
