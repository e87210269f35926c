#!/usr/bin/env bash
# Build the Terraform providers the terraform/ module uses (hashicorp/helm, hashicorp/kubernetes)
# from their Go modules, once, into ~/.cache/kubevox/terraform-providers/<versions>/bin, and write
# a Terraform CLI config there (terraform.rc) whose dev_overrides point Terraform at them. Prints
# that directory. With TF_CLI_CONFIG_FILE=<dir>/terraform.rc, `terraform validate`, `plan` and
# `apply` work with no access to registry.terraform.io.
#
# Why pseudo-versions: the providers' go.mod module paths carry no /v2, /v3 suffix, so their
# release tags are not Go module versions; the module proxy serves their main-branch commits as
# v1.x.y-0.<date>-<commit> pseudo-versions, and those go.mod files have no replace directives.
#
# KUBEVOX_TERRAFORM_PROVIDERS_DIR pointing at a directory with terraform.rc skips the build.
set -euo pipefail

HELM_PROVIDER="${HELM_PROVIDER:-v1.3.3-0.20260629194918-a4f1c1d8b008}"
KUBERNETES_PROVIDER="${KUBERNETES_PROVIDER:-v1.13.4-0.20260821094251-3a33fb6cc605}"

if [[ -n "${KUBEVOX_TERRAFORM_PROVIDERS_DIR:-}" && -f "${KUBEVOX_TERRAFORM_PROVIDERS_DIR}/terraform.rc" ]]; then
  echo "${KUBEVOX_TERRAFORM_PROVIDERS_DIR}"
  exit 0
fi

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
out="$cache/terraform-providers/helm-${HELM_PROVIDER}_kubernetes-${KUBERNETES_PROVIDER}"
if [[ -f "$out/terraform.rc" && -x "$out/bin/terraform-provider-helm" && -x "$out/bin/terraform-provider-kubernetes" ]]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the providers (apt-get install golang or see go.dev)" >&2; exit 1; }
echo "building terraform-provider-helm and terraform-provider-kubernetes into $out (first time only: ~10-20 min)" >&2
tmp="$out.tmp.$$"
mkdir -p "$tmp/bin"
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 GOBIN="$tmp/bin" go install -trimpath -ldflags "-s -w" \
  "github.com/hashicorp/terraform-provider-helm@${HELM_PROVIDER}" >&2
CGO_ENABLED=0 GOBIN="$tmp/bin" go install -trimpath -ldflags "-s -w" \
  "github.com/hashicorp/terraform-provider-kubernetes@${KUBERNETES_PROVIDER}" >&2
mkdir -p "$(dirname "$out")"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
cat > "$out/terraform.rc" <<RC
provider_installation {
  dev_overrides {
    "hashicorp/helm"       = "$out/bin"
    "hashicorp/kubernetes" = "$out/bin"
  }
  direct {}
}
RC
echo "$out"
