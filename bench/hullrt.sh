#!/usr/bin/env bash
# bench/hullrt.sh [N] : hullrt vs runc vs crun in one run, with ../shared/oci/bench.sh (same bundle, same
# private mount namespace, same cgroup layout for all three). Prints per runtime the medians (ms) of
#   lifecycle = create + start + wait-for-exit + delete of /bin/true
#   run       = run (foreground) of /bin/true
#   exec      = exec /bin/true into a running container
# plus peak RSS of create (KiB), then hullrt's ratios to runc and crun (targets: <= 0.5x runc, <= 1.0x crun).
# The runtimes are measured in ROUNDS interleaved rounds of N iterations each (default 3 x 20), so that
# background load on a shared machine hits all of them alike; the medians are over every round's samples.
set -uo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
N=${1:-20}
ROUNDS=${ROUNDS:-3}
mkdir -p bin && go build -o bin/ ./cmd/hullrt || exit 1
OUT=$(mktemp -d /tmp/hullrt-bench.XXXX)
trap 'rm -rf "$OUT"' EXIT
RTS=("$PWD/bin/hullrt" "$(command -v runc)" "$(command -v crun)")
res=${OCIBASE_DIR:-/tmp/hull-ocibase}/results
for ((r = 0; r < ROUNDS; r++)); do
    for rt in "${RTS[@]}"; do
        n=$(basename "$rt")
        bash "$SHARED/oci/bench.sh" "$rt" "$N" > "$OUT/$n.$r.txt" 2>&1 || echo "bench.sh $n round $r had failures" >&2
        for f in a_total b_run c_exec d_create; do
            ext=us; [ $f = d_create ] && ext=kb
            cat "$res/bench-$n/$f.$ext" >> "$OUT/$n.$f" 2>/dev/null
        done
    done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
printf '%-8s %12s %10s %10s %14s\n' runtime lifecycle_ms run_ms exec_ms create_rss_kb
declare -A M
for rt in "${RTS[@]}"; do
    n=$(basename "$rt")
    for f in a_total b_run c_exec; do M[$n.$f]=$(awk -v u="$(median "$OUT/$n.$f")" 'BEGIN{printf "%.2f", u/1000}'); done
    M[$n.rss]=$(median "$OUT/$n.d_create")
    printf '%-8s %12s %10s %10s %14s\n' "$n" "${M[$n.a_total]}" "${M[$n.b_run]}" "${M[$n.c_exec]}" "${M[$n.rss]}"
done
for peer in runc crun; do
    printf 'hullrt/%-5s' "$peer"
    for f in a_total b_run c_exec; do printf ' %s=%.2fx' "${f#*_}" "$(awk -v a="${M[hullrt.$f]}" -v b="${M[$peer.$f]}" 'BEGIN{print a/b}')"; done
    echo
done
echo "(medians over $ROUNDS interleaved rounds of $N iterations; $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg))"
