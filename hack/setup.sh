#!/usr/bin/env bash
# hack/setup.sh: make a fresh Debian 12 machine ready to build and test hull (idempotent).
#   1. Debian packages (busybox-static for test rootfs, runc/crun/containerd as peers, CNI plugins,
#      libseccomp-dev for the seccomp tests' libseccomp oracle (hull's compiler is pure Go), jq/bc/time for the harness, gawk for bench/)
#   2. Go tools: staticcheck, gVisor's runsc
#   3. the shared CRI harness (crictl, critest, crane, registry on 127.0.0.1:5000 with test images)
#   4. go build -o bin/ ./cmd/...
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH
PKGS="busybox-static runc crun containerd containernetworking-plugins iptables iproute2 jq bc gawk python3 time make gcc pkg-config libseccomp-dev"
missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "[setup] apt-get install $missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if ! command -v staticcheck >/dev/null; then
  echo "[setup] go install staticcheck"
  GOBIN=$HOME/go/bin go install honnef.co/go/tools/cmd/staticcheck@latest
fi
# gVisor's runsc: the untrusted-pod runtime handler that the end-to-end tests run beside hullrt and runc.
RUNSC_VERSION=${RUNSC_VERSION:-v0.0.0-20260905035102-160fafc42237}
if ! [ -x "$HOME/go/bin/runsc" ] && ! command -v runsc >/dev/null; then
  echo "[setup] go install gvisor.dev/gvisor/runsc@$RUNSC_VERSION (a few minutes)"
  CGO_ENABLED=0 GOBIN=$HOME/go/bin go install "gvisor.dev/gvisor/runsc@$RUNSC_VERSION"
fi
SHARED=${SHARED:-$(cd .. && pwd)/shared}
if [ -x "$SHARED/critest/setup.sh" ] || [ -f "$SHARED/critest/setup.sh" ]; then
  H=${HARNESS_DIR:-/tmp/hull-harness}
  if ! "$H/bin/crane" digest 127.0.0.1:5000/e2e-test-images/busybox:1.29-2 >/dev/null 2>&1; then
    echo "[setup] shared CRI harness (registry, crictl, critest)"
    bash "$SHARED/critest/setup.sh" > /tmp/hull-harness-setup.log 2>&1 || { tail -20 /tmp/hull-harness-setup.log; exit 1; }
  fi
  bash "$SHARED/oci/bundle.sh" >/dev/null
fi
echo "[setup] go build -o bin/ ./cmd/..."
mkdir -p bin
go build -o bin/ ./cmd/...
