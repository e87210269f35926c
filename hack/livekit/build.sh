#!/usr/bin/env bash
# Build livekit-server from its Go module, once, into ~/.cache/kubevox/livekit/<version>/bin.
# Prints that directory. LIVEKIT_SERVER_BIN pointing at an existing binary skips the build.
set -euo pipefail

VERSION="${LIVEKIT_SERVER_VERSION:-v1.13.5}"   # tags v1.13.2-v1.13.5 carry no replace directives

if [[ -n "${LIVEKIT_SERVER_BIN:-}" && -x "${LIVEKIT_SERVER_BIN}" ]]; then
  dirname "${LIVEKIT_SERVER_BIN}"
  exit 0
fi

cache="${KUBEVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubevox}"
bin="$cache/livekit/$VERSION/bin"
if [[ -x "$bin/livekit-server" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build livekit-server" >&2; exit 1; }
echo "building livekit-server $VERSION into $bin (first time only: a few minutes)" >&2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
  "github.com/livekit/livekit-server/cmd/server@$VERSION" >&2
mkdir -p "$bin"
mv "$tmp/server" "$bin/livekit-server"
echo "$bin"
