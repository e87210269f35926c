#!/usr/bin/env bash
# Fetch, once, the third-party CRDs that kubevox's optional manifests use, from the Go module
# proxy (the projects' own published source; no GitHub access needed), into
# ~/.cache/kubevox/third-party/<versions>/. Prints that directory. The deploy tests install the
# CRDs into the local control plane so ServiceMonitor/PodMonitor, KEDA ScaledObject and Argo CD
# Application manifests get a real server-side dry-run, and reuse Argo CD's KServe health check
# and its test data to prove the Lua test harness reproduces Argo CD's own expectations.
# KEDA's own install manifests (config/) are kept too: `make install` deploys KEDA with them.
set -euo pipefail

PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
KEDA_VERSION="${KEDA_VERSION:-v2.21.0}"
ARGOCD_VERSION="${ARGOCD_VERSION:-v3.5.7}"   # v3.6 declares go 1.27

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
LAYOUT=2  # what this script copies; bumped when that changes
out="$cache/third-party/po-${PROMETHEUS_OPERATOR_VERSION}_keda-${KEDA_VERSION}_argocd-${ARGOCD_VERSION}_${LAYOUT}"
if [[ -f "$out/.complete" ]]; then
  echo "$out"
  exit 0
fi
command -v go >/dev/null || { echo "go is required to fetch modules (apt-get install golang or see go.dev)" >&2; exit 1; }

moddir() {  # module@version -> its extracted directory in the module cache
  (cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
}
po="$(moddir "github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}")"
keda="$(moddir "github.com/kedacore/keda/v2@${KEDA_VERSION}")"
argocd="$(moddir "github.com/argoproj/argo-cd/v3@${ARGOCD_VERSION}")"
[[ -d "$po" && -d "$keda" && -d "$argocd" ]] || { echo "go mod download failed" >&2; exit 1; }

tmp="$out.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/crds" "$tmp/argocd"
cp "$po/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
   "$po/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml" \
   "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" \
   "$keda/config/crd/bases/keda.sh_triggerauthentications.yaml" \
   "$argocd/manifests/crds/application-crd.yaml" \
   "$tmp/crds/"
cp -r "$argocd/resource_customizations/serving.kserve.io/InferenceService" "$tmp/argocd/"
cp -r "$keda/config" "$tmp/keda-config"
chmod -R u+w "$tmp"
touch "$tmp/.complete"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
trap - EXIT
echo "$out"
