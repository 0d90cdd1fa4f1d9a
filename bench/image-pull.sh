#!/usr/bin/env bash
# bench/image-pull.sh [ROUNDS] : cold pull + unpack of a ~200 MB, 10-layer image from the local registry,
# hull's image store (bench/imagepull; MODE=hulld: a private hulld per round, pulled with crictl) against
# Debian's containerd 1.6 (crictl pull through ../shared/peers/containerd), alternating, fresh state and
# dropped page cache before every pull. Prints every time, the medians and the ratio hull/containerd.
# Needs root and ../shared/critest/setup.sh (registry on 127.0.0.1:5000, crane, crictl).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$(cd "$ROOT/../shared" && pwd)}
SH=${HARNESS_DIR:-/tmp/hull-harness}
ROUNDS=${1:-5}
IMG=${IMG:-127.0.0.1:5000/bench/image-pull:10x20m}
CRANE=$SH/bin/crane CRICTL=$SH/bin/crictl
WORK=$(mktemp -d /tmp/hull-image-bench.XXXXXX)
# A private harness dir gives this run its own containerd (state, socket, pid):
# others may be using the shared one at the same time.
export HARNESS_DIR=$WORK/harness H=$WORK/harness
mkdir -p "$H" && ln -s "$SH/bin" "$H/bin"
cleanup() { WIPE=1 "$SHARED/peers/containerd/stop.sh" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

if ! "$CRANE" digest "$IMG" >/dev/null 2>&1; then
  echo "building $IMG (10 layers x 20 MB of random data + 200 small files each)"
  args=()
  for i in $(seq 1 10); do
    mkdir -p "$WORK/l$i/data$i"; head -c 20000000 /dev/urandom > "$WORK/l$i/data$i/blob"
    for j in $(seq 1 200); do echo "file $j of layer $i" > "$WORK/l$i/data$i/small-$j.txt"; done
    tar -C "$WORK/l$i" -cf "$WORK/l$i.tar" . ; args+=(-f "$WORK/l$i.tar")
  done
  "$CRANE" append -b 127.0.0.1:5000/e2e-test-images/busybox:1.29-2 "${args[@]}" -t "$IMG" >/dev/null
  rm -rf "$WORK"/l[0-9]*
fi

MODE=${MODE:-store}
(cd "$ROOT" && go build -o "$WORK/imagepull" ./bench/imagepull)
[ "$MODE" = hulld ] && (cd "$ROOT" && go build -o "$WORK/bin/" ./cmd/...)
HPID=
start_hulld() { # fresh root and state every round: a cold pull
  local d=$WORK/hulld; rm -rf "$d"; mkdir -p "$d/cni"
  printf '[registry]\ninsecure = ["127.0.0.1:5000"]\n[cni]\nconf_dir = "%s"\n' "$d/cni" > "$d/hull.toml"
  setsid "$WORK/bin/hulld" --config "$d/hull.toml" --listen "unix://$d/hull.sock" --root "$d/root" \
    --state "$d/state" >>"$WORK/hulld.log" 2>&1 </dev/null &
  HPID=$!
  for _ in $(seq 1 100); do
    "$CRICTL" --config /dev/null -r "unix://$d/hull.sock" --timeout 2s version >/dev/null 2>&1 && return 0
    kill -0 "$HPID" 2>/dev/null || break; sleep 0.1
  done
  echo "hulld did not start: $(tail -3 "$WORK/hulld.log")" >&2; exit 1
}
stop_hulld() { [ -n "$HPID" ] && kill "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null; HPID=; rm -rf "$WORK/hulld"; }
trap 'stop_hulld; cleanup' EXIT
ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }

HT=() CT=()
for r in $(seq 1 "$ROUNDS"); do
  rm -rf "$WORK/hull"
  [ "$MODE" = hulld ] && start_hulld
  cold
  t0=$(ms)
  if [ "$MODE" = hulld ]; then
    "$CRICTL" --config /dev/null -r "unix://$WORK/hulld/hull.sock" --timeout 300s pull "$IMG" >/dev/null
  else
    "$WORK/imagepull" -root "$WORK/hull" "$IMG" >/dev/null
  fi
  HT+=($(( $(ms) - t0 )))
  [ "$MODE" = hulld ] && stop_hulld
  rm -rf "$WORK/hull"

  WIPE=1 "$SHARED/peers/containerd/stop.sh" >/dev/null 2>&1 || true
  "$SHARED/peers/containerd/start.sh" >/dev/null
  cold
  t0=$(ms)
  "$CRICTL" --config /dev/null -r "unix://$H/containerd.sock" --timeout 300s pull "$IMG" >/dev/null
  CT+=($(( $(ms) - t0 )))
  "$CRICTL" --config /dev/null -r "unix://$H/containerd.sock" rmi "$IMG" >/dev/null || true
  WIPE=1 "$SHARED/peers/containerd/stop.sh" >/dev/null 2>&1 || true
  echo "round $r: hull ${HT[-1]} ms, containerd ${CT[-1]} ms"
done
h=$(printf '%s\n' "${HT[@]}" | median); c=$(printf '%s\n' "${CT[@]}" | median)
echo "cold pull+unpack $IMG ($MODE): hull median ${h} ms (${HT[*]}), containerd median ${c} ms (${CT[*]}), ratio $(echo "scale=2; $h/$c" | bc) (target <= 0.7)"
