#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, kubectl and etcd from the Go modules pinned in
# go.mod, once, into ~/.cache/kubevox/controlplane/<versions>/bin. Prints that directory.
#
# KUBEBUILDER_ASSETS (the controller-runtime envtest convention) pointing at a directory with
# kube-apiserver, etcd and kubectl skips the build entirely.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=k8s-build.sh
source "$here/k8s-build.sh"
ETCD_VERSION="$(awk '$1=="go.etcd.io/etcd/server/v3" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")"

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "${KUBEBUILDER_ASSETS}/kube-apiserver" && -x "${KUBEBUILDER_ASSETS}/etcd" ]]; then
  echo "${KUBEBUILDER_ASSETS}"
  exit 0
fi

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
bin="$cache/controlplane/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}/bin"
tools=(kube-apiserver kube-controller-manager kubectl etcd)

complete=1
for t in "${tools[@]}"; do [[ -x "$bin/$t" ]] || complete=0; done
if [[ $complete == 1 ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the control plane (apt-get install golang or see go.dev)" >&2; exit 1; }
echo "building Kubernetes ${K8S_VERSION} and etcd ${ETCD_VERSION} into $bin (first time only: ~15-25 min on 2 cores)" >&2
tmp="$bin.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
(
  k8s_build "$tmp" kube-apiserver kube-controller-manager kubectl
  cd "$here"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
) >&2
mkdir -p "$(dirname "$bin")"
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
echo "$bin"
