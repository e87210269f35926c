#!/usr/bin/env bash
# Build Terraform from its Go module, once, into ~/.cache/kubevox/terraform/<version>/bin. Prints
# that directory. Used only for `terraform fmt -check` / `terraform validate` of terraform/.
#
# Why v1.5.7: it is the last MPL-2.0 release, and its go.mod has no replace directives, so
# `go install` works. Releases from v1.9 on replace their remote-state backends with local paths
# (`go install` refuses them); OpenTofu's go.mod replaces hashicorp/hcl (same problem).
#
# KUBEVOX_TERRAFORM_DIR pointing at a directory holding an executable `terraform` (or `tofu`
# symlinked as terraform) skips the build.
set -euo pipefail

TERRAFORM_VERSION="${TERRAFORM_VERSION:-v1.5.7}"

if [[ -n "${KUBEVOX_TERRAFORM_DIR:-}" && -x "${KUBEVOX_TERRAFORM_DIR}/terraform" ]]; then
  echo "${KUBEVOX_TERRAFORM_DIR}"
  exit 0
fi

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
bin="$cache/terraform/${TERRAFORM_VERSION}/bin"
if [[ -x "$bin/terraform" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build terraform (apt-get install golang or see go.dev)" >&2; exit 1; }
echo "building terraform ${TERRAFORM_VERSION} into $bin (first time only: several minutes)" >&2
tmp="$bin.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
# Release builds set the prerelease to "" (otherwise `terraform version` says -dev).
CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath \
  -ldflags "-s -w -X github.com/hashicorp/terraform/version.dev=no" \
  "github.com/hashicorp/terraform@${TERRAFORM_VERSION}" >&2
mkdir -p "$(dirname "$bin")"
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
echo "$bin"
