#!/usr/bin/env bash
# Build Helm from its Go module, once, into ~/.cache/kubevox/helm/<version>/bin. Prints that
# directory. helm.sh/helm/v3's go.mod has no replace directives, so `go install` works.
#
# KUBEVOX_HELM_DIR pointing at a directory holding an executable `helm` skips the build.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"

if [[ -n "${KUBEVOX_HELM_DIR:-}" && -x "${KUBEVOX_HELM_DIR}/helm" ]]; then
  echo "${KUBEVOX_HELM_DIR}"
  exit 0
fi

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
bin="$cache/helm/${HELM_VERSION}/bin"
if [[ -x "$bin/helm" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build helm (apt-get install golang or see go.dev)" >&2; exit 1; }
echo "building helm ${HELM_VERSION} into $bin (first time only: a few minutes)" >&2
tmp="$bin.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

# The ldflags are the ones Helm's own Makefile sets: the release version, and the Kubernetes
# version `helm template` assumes by default (that of the client-go Helm is built with; without
# it Helm reports v1.20.0 and refuses charts that declare a newer kubeVersion).
gomod="$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "helm.sh/helm/v3@${HELM_VERSION}" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
client_go="$(awk '$1=="k8s.io/client-go" {print $2; exit}' "$gomod")"   # v0.MINOR.PATCH
k8s_minor="$(echo "$client_go" | cut -d. -f2)"
CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitCommit=go-install-${HELM_VERSION} -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${k8s_minor} -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${k8s_minor}" \
  "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
mkdir -p "$(dirname "$bin")"
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
echo "$bin"
