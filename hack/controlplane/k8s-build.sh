# Sourced by hack/controlplane/build.sh and hack/node/build-kubernetes.sh: the Kubernetes
# version pinned in go.mod, and one `go build` of k8s.io/kubernetes commands with the version
# stamped in as Kubernetes' own release builds do.
K8S_MODULE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$K8S_MODULE_DIR/go.mod")"

# k8s_build OUT_DIR CMD...: build k8s.io/kubernetes/cmd/<CMD> for each CMD into OUT_DIR.
k8s_build() {
  local out="$1"; shift
  local minor pkgs=()
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  for cmd in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  (
    cd "$K8S_MODULE_DIR"
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean" \
      -o "$out/" "${pkgs[@]}"
  )
}
