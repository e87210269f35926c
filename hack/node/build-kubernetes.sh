#!/usr/bin/env bash
# Build kubelet, kube-scheduler and kube-proxy from the k8s.io/kubernetes module pinned in
# hack/controlplane/go.mod, once, into ~/.cache/kubevox/node/k8s-<version>/bin. Prints that
# directory.
#
# A directory of its own, beside the control plane's (which running control planes use and must
# never be replaced under them); the shared packages come from Go's build cache when the control
# plane was built first, so only the node's own packages are compiled.
set -euo pipefail

# shellcheck source=../controlplane/k8s-build.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../controlplane" && pwd)/k8s-build.sh"

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
k8s_build "$tmp" kubelet kube-scheduler kube-proxy >&2
mkdir -p "$(dirname "$bin")"
# Only ever an incomplete directory is replaced (the check above returned for a complete one).
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
echo "$bin"
