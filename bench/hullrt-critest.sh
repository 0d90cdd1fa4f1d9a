#!/usr/bin/env bash
# bench/hullrt-critest.sh : Debian's containerd 1.6 with hullrt as its runc binary (BinaryName), driven by
# critest (mirror mode) — the drop-in check of the hullrt issue, on a private containerd instance
# (its own HARNESS_DIR, socket, state, CNI bridge hrt0 on 10.227.0.0/24) so that it never disturbs a
# shared peer. Needs ../shared/critest/setup.sh to have run (crictl, critest, registry on 127.0.0.1:5000).
# Usage: bench/hullrt-critest.sh [HULLRT_BINARY]   (default: builds bin/hullrt)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
SRC_H=${HARNESS_DIR:-/tmp/hull-harness}
H=/tmp/hrt-critest-harness
BIN=${1:-}
if [ -z "$BIN" ]; then mkdir -p bin && go build -o bin/ ./cmd/hullrt && BIN=bin/hullrt; fi
[ -x "$SRC_H/bin/critest" ] || { echo "run $SHARED/critest/setup.sh first" >&2; exit 2; }
export HARNESS_DIR=$H
stop() { bash "$H/peer/stop.sh" >/dev/null 2>&1 || true; WIPE=1 bash "$H/peer/stop.sh" >/dev/null 2>&1 || true; }
[ -d "$H/peer" ] && stop
rm -rf "$H"; mkdir -p "$H"
ln -s "$SRC_H/bin" "$H/bin"
cp "$BIN" "$H/hullrt"
cp -r "$SHARED/peers/containerd" "$H/peer"
sed -i "s#BinaryName = \"/usr/sbin/runc\"#BinaryName = \"$H/hullrt\"#" "$H/peer/config-mirror.toml"
sed -i 's#"harness0"#"hrt0"#; s#10.223.0.0/24#10.227.0.0/24#; s#"harness-net"#"hrt-net"#' "$H"/peer/cni-src/net.d/*
trap stop EXIT
bash "$H/peer/start.sh" mirror >/dev/null
CRITEST_MODE=mirror CRITEST_PARALLEL=${CRITEST_PARALLEL:-2} CRITEST_OUT=$H/critest \
    bash "$SHARED/critest/run-critest.sh" "unix://$H/containerd.sock" 2>&1 | tee "$H/critest.log" | tail -25
grep -E '^[0-9]+ passed, [0-9]+ failed' "$H/critest.log" | tail -1
