#!/usr/bin/env bash
# The LiveKit browser SDK (livekit-client, Apache-2.0) for the call page, fetched from the npm
# registry at build time (no CDN at run time) and checked against the registry's integrity hash:
# its UMD build is self-contained (no dependencies to bundle). Cached under
# ~/.cache/kubevox/web; copied to agent_runtime/web/static/vendor/ (not in git).
set -euo pipefail
VERSION=2.23.0
INTEGRITY="sha512-j9Kg86nJjBjNFUD+ukp2jwMCGa0k+YD5gU//RzAM+ZY3pbG631QCte7fQjwqWMmtBzhDJL9nKYuOLMv/9IbAxg=="

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}/web/livekit-client-$VERSION"
target="$repo/agent_runtime/web/static/vendor/livekit-client.umd.js"

if [[ ! -f "$cache/livekit-client.umd.js" ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  curl -fsSL --retry 3 -o "$tmp/pkg.tgz" \
    "https://registry.npmjs.org/livekit-client/-/livekit-client-$VERSION.tgz"
  got="sha512-$(openssl dgst -sha512 -binary "$tmp/pkg.tgz" | base64 -w0)"
  if [[ "$got" != "$INTEGRITY" ]]; then
    echo "livekit-client $VERSION: integrity mismatch ($got)" >&2
    exit 1
  fi
  tar -xzf "$tmp/pkg.tgz" -C "$tmp" package/dist/livekit-client.umd.js package/LICENSE
  mkdir -p "$cache"
  cp "$tmp/package/dist/livekit-client.umd.js" "$tmp/package/LICENSE" "$cache/"
fi
mkdir -p "$(dirname "$target")"
cp "$cache/livekit-client.umd.js" "$target"
cp "$cache/LICENSE" "$(dirname "$target")/livekit-client.LICENSE"
echo "$target"
