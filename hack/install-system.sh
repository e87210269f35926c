#!/usr/bin/env bash
# Debian packages kubevox's builds and tests use. Idempotent; needs root (or sudo) only when
# something is missing.
set -euo pipefail

# lua5.1 (Argo CD's dialect) and lua5.4 run the Argo CD health checks in tests/deploy.
# containerd, runc, the CNI plugins and iptables run the local node (make cluster-up, tests/node);
# gcc and libc6-dev build its static pause program.
packages=(git make python3-venv lua5.1 lua5.4
  containerd runc containernetworking-plugins iptables iproute2 gcc libc6-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Headless Chromium places a browser call in tests/e2e/test_browser_call.py (a fake microphone,
# driven over the DevTools protocol). Without its recommends: 25 packages instead of 130.
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium \
    >/dev/null
fi

# Java >= 17 runs S3Proxy (hack/tools/fetch-s3proxy.sh), the S3-compatible server the tests
# upload call recordings to. `java -version` prints e.g. `openjdk version "17.0.15"` (or "1.8.0"
# for Java 8) on stderr.
java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\.*.*/\1/p' | head -n1 || true)"
if ! command -v java >/dev/null || ((${java_major:-0} < 17)); then
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    openjdk-17-jre-headless >/dev/null
fi

# Go builds the control plane, livekit-server and the deploy tools; livekit-server 1.13 and
# hack/controlplane/go.mod declare go 1.26.
if ! command -v go >/dev/null || ! go version | grep -Eq 'go1\.(2[6-9]|[3-9][0-9])'; then
  echo "Go >= 1.26 is required (found: $(go version 2>/dev/null || echo none); https://go.dev/dl)" >&2
  exit 1
fi
