#!/usr/bin/env bash
# bench/hulld-bench.sh [N=15] (0 skips the cycles) : hulld vs Debian's containerd 1.6 in one run, side by side.
#   1. crictl-cycle.sh (../shared/critest) N cycles on each: per-step medians, runp+create+start median
#   2. CRITEST_BENCHMARK=1 run-critest.sh on each (critest's own pod/container benchmarks)   [CRITEST=0 skips]
#   3. memory per running pod: MemAvailable drop over PODS pods (busybox sleep), caches dropped [PODS=0 skips]
# Prints ratios hulld/containerd. hulld runs from a fresh build with a private config, dirs and CNI bridge.
# Needs root, ../shared/critest/setup.sh done, and the containerd peer (../shared/peers/containerd).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-15}; PODS=${PODS:-30}
SHARED=${SHARED:-$(cd .. && pwd)/shared}
source hack/lib.sh
H=${HARNESS_DIR:-/tmp/hull-harness}; export HARNESS_DIR=$H
OUT=${OUT:-/tmp/hull-bench-hulld}; rm -rf "$OUT"; mkdir -p "$OUT/bin"
D=$OUT/hulld; mkdir -p "$D/cni" "$D/logs"
IMG=127.0.0.1:5000/e2e-test-images/busybox:1.29-2
export PATH=/usr/local/go/bin:$PATH
go build -o "$OUT/bin/" ./cmd/hulld ./cmd/hull-monitor ./cmd/hull-pause ./cmd/hullrt
hull_test_config "$D" bench "hbench0" "10.229.1.0/24"
HSOCK=$D/hull.sock; CSOCK=$H/containerd.sock
crictl() { "$H/bin/crictl" --config /dev/null -r "unix://$1" -i "unix://$1" --timeout 120s "${@:2}" 2>>"$OUT/crictl.err"; }
HPID=
start_hulld() {
  setsid "$OUT/bin/hulld" --config "$D/hull.toml" --listen "unix://$HSOCK" --root "$D/root" --state "$D/state" >>"$D/hulld.log" 2>&1 </dev/null &
  HPID=$!
  for _ in $(seq 100); do crictl "$HSOCK" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "hulld did not start"; tail "$D/hulld.log"; exit 1
}
rm_pods() { for p in $(crictl "$1" pods -q 2>/dev/null); do crictl "$1" stopp "$p" >/dev/null 2>&1; crictl "$1" rmp -f "$p" >/dev/null 2>&1; done; }
cleanup() {
  [ -n "$HPID" ] && { rm_pods "$HSOCK"; kill "$HPID" 2>/dev/null; wait "$HPID" 2>/dev/null || true; }
  rm_pods "$CSOCK" 2>/dev/null || true
  WIPE=1 bash "$SHARED/peers/containerd/stop.sh" >/dev/null 2>&1 || true
  ip link del hbench0 2>/dev/null || true; ip link del harness0 2>/dev/null || true
  for m in $(awk -v d="$D/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
start_hulld
WIPE=1 bash "$SHARED/peers/containerd/stop.sh" >/dev/null 2>&1 || true
bash "$SHARED/peers/containerd/start.sh" mirror >/dev/null
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
cyc() { CYCLE_OUT=$OUT/cycle-$1 bash "$SHARED/critest/crictl-cycle.sh" "unix://$2" "$N" >/dev/null; awk 'NR>1 {print $2+$3+$4}' "$OUT/cycle-$1/cycles.txt" | median; }
if [ "$N" -gt 0 ]; then
# alternate the two so that load from elsewhere hits both alike
h1=$(cyc hull1 "$HSOCK"); c1=$(cyc ctrd1 "$CSOCK"); h2=$(cyc hull2 "$HSOCK"); c2=$(cyc ctrd2 "$CSOCK")
h=$(printf '%s\n%s\n' "$h1" "$h2" | median); c=$(printf '%s\n%s\n' "$c1" "$c2" | median)
echo "runp+create+start median (crictl-cycle.sh, 2x$N cycles each): hulld $h ms, containerd $c ms, ratio $(echo "scale=2; $h/$c" | bc)"
echo "per step (hulld first run):"; cat "$OUT/cycle-hull1/summary.txt" | head -8
echo "per step (containerd first run):"; cat "$OUT/cycle-ctrd1/summary.txt" | head -8
fi
if [ "${CRITEST:-1}" = 1 ]; then
  for x in "hulld $HSOCK" "containerd $CSOCK"; do set -- $x
    CRITEST_BENCHMARK=1 CRITEST_MODE=mirror CRITEST_OUT=$OUT/critest-bench-$1 bash "$SHARED/critest/run-critest.sh" "unix://$2" >"$OUT/critest-bench-$1.log" 2>&1 || true
    echo "critest benchmark $1:"; grep -iE "median|pod\+container|CreatePod|StartContainer" "$OUT/critest-bench-$1.log" | head -12 || true
  done
fi
if [ "$PODS" -gt 0 ]; then
  avail() { sync; echo 3 > /proc/sys/vm/drop_caches; awk '/MemAvailable/ {print $2}' /proc/meminfo; }
  mem() { # mem SOCK NAME -> "kB-per-pod-MemAvailable kB-per-pod-PSS"
    local a0 a1 ids=""; crictl "$1" pull "$IMG" >/dev/null; a0=$(avail)
    for i in $(seq "$PODS"); do
      echo "{\"metadata\":{\"name\":\"m$i\",\"namespace\":\"bench\",\"uid\":\"m$i-$2\",\"attempt\":0},\"log_directory\":\"$OUT/mlogs/$2/$i\",\"linux\":{}}" > "$OUT/mp.json"
      echo "{\"metadata\":{\"name\":\"c\"},\"image\":{\"image\":\"$IMG\"},\"command\":[\"sleep\",\"3600\"],\"log_path\":\"c.log\",\"linux\":{}}" > "$OUT/mc.json"
      P=$(crictl "$1" runp "$OUT/mp.json"); C=$(crictl "$1" create "$P" "$OUT/mc.json" "$OUT/mp.json"); crictl "$1" start "$C" >/dev/null
      ids="$ids $P $C"
    done
    sleep 2; a1=$(avail); echo "$(( (a0-a1)/PODS )) $(( $(pss_of $ids)/PODS ))"; rm_pods "$1"
  }
  # pss_of ID...: summed PSS (kB) of the per-pod processes whose command line names one of the ids
  # (hull-monitor's state dir, containerd-shim's -id) and all their descendants (pause, the container).
  # Unlike MemAvailable this ignores other load on a shared machine.
  pss_of() {
    local all="" p c id
    for id in "$@"; do
      for p in $(pgrep -f "(hull-monitor|containerd-shim).*$id" || true); do
        all="$all $p"; for c in $(pgrep -P "$p" || true); do all="$all $c $(pgrep -P "$c" || true)"; done
      done
    done
    for p in $(echo $all | tr ' ' '\n' | sort -u); do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '{s+=$1} END {print s+0}'
  }
  read hm hp <<< "$(mem "$HSOCK" hull)"; read cm cp <<< "$(mem "$CSOCK" ctrd)"
  echo "memory per running pod ($PODS pods), MemAvailable drop (noisy on a shared machine): hulld $hm kB, containerd $cm kB"
  echo "memory per running pod ($PODS pods), PSS of monitor/shim + pause + container: hulld $hp kB, containerd $cp kB, ratio $(echo "scale=2; $hp/$cp" | bc)"
fi
