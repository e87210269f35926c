#!/usr/bin/env bash
# Fetch S3Proxy (Apache-2.0, https://github.com/gaul/s3proxy), once, from Maven Central into
# ~/.cache/kubevox/s3proxy/<version>/s3proxy.jar. Prints that directory. S3Proxy serves the S3 API
# from a local directory (its `filesystem` backend): the tests upload call recordings to a real
# S3-compatible server with the same client code that talks to AWS S3 or MinIO in production,
# and read the stored objects back from disk. The jar bundles its dependencies; it runs with
# `java -jar` and needs Java >= 17 (hack/install-system.sh installs it; this script does not).
# The download is checked against a pinned sha256 (that of the artefact whose .sha1 Maven
# Central publishes), so a changed or truncated file is refused rather than cached.
#
# KUBEVOX_S3PROXY_DIR pointing at a directory holding `s3proxy.jar` skips the download.
set -euo pipefail

S3PROXY_VERSION="4.1.0"
S3PROXY_SHA256="a4d025969aaf796616ed4b1e2491d87d455ce84bb28cb9db086b2e6aaa68b48d"
url="https://repo1.maven.org/maven2/org/gaul/s3proxy/${S3PROXY_VERSION}/s3proxy-${S3PROXY_VERSION}-jar-with-dependencies.jar"

if [[ -n "${KUBEVOX_S3PROXY_DIR:-}" && -f "${KUBEVOX_S3PROXY_DIR}/s3proxy.jar" ]]; then
  echo "${KUBEVOX_S3PROXY_DIR}"
  exit 0
fi

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
dir="$cache/s3proxy/${S3PROXY_VERSION}"
if [[ -f "$dir/s3proxy.jar" ]]; then
  echo "$dir"
  exit 0
fi

command -v curl >/dev/null || { echo "curl is required to fetch s3proxy (apt-get install curl)" >&2; exit 1; }
echo "fetching s3proxy ${S3PROXY_VERSION} into $dir (first time only: 55 MB)" >&2
mkdir -p "$dir"
tmp="$dir/s3proxy.jar.tmp.$$"
trap 'rm -f "$tmp"' EXIT
curl -fsSL --retry 3 -o "$tmp" "$url"
got="$(sha256sum "$tmp" | cut -d' ' -f1)"
if [[ "$got" != "$S3PROXY_SHA256" ]]; then
  echo "s3proxy ${S3PROXY_VERSION}: sha256 $got, expected $S3PROXY_SHA256 ($url)" >&2
  exit 1
fi
mv "$tmp" "$dir/s3proxy.jar"
trap - EXIT
echo "$dir"
