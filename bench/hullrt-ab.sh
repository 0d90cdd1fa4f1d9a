#!/usr/bin/env bash
# bench/hullrt-ab.sh OLD_BINARY NEW_BINARY [N] : A/B of two hullrt builds through ../shared/oci/bench.sh,
# alternated in ROUNDS (default 6) rounds of N (default 10) iterations, so that a noisy shared machine
# hits both alike. Prints the medians (ms) of every step for each, and new/old. Used to decide whether a
# change to hullrt is kept.
set -uo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
[ $# -ge 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY [N]" >&2; exit 2; }
N=${3:-10}
ROUNDS=${ROUNDS:-6}
OUT=$(mktemp -d /tmp/hullrt-ab.XXXX)
trap 'rm -rf "$OUT"' EXIT
cp "$1" "$OUT/hullrt-old" && cp "$2" "$OUT/hullrt-new" || exit 1
res=${OCIBASE_DIR:-/tmp/hull-ocibase}/results
steps="a_create a_start a_delete a_total b_run c_exec"
for ((r = 0; r < ROUNDS; r++)); do
    order="old new"; ((r % 2)) && order="new old"
    for v in $order; do
        bash "$SHARED/oci/bench.sh" "$OUT/hullrt-$v" "$N" > "$OUT/$v.$r.txt" 2>&1 || echo "bench.sh $v round $r had failures" >&2
        for f in $steps; do cat "$res/bench-hullrt-$v/$f.us" >> "$OUT/$v.$f" 2>/dev/null; done
    done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) printf "%.2f", a[(NR+1)/2]/1000; else printf "%.2f", (a[NR/2]+a[NR/2+1])/2000}'; }
printf '%-10s %8s %8s %8s\n' step old_ms new_ms new/old
for f in $steps; do
    o=$(median "$OUT/old.$f"); n=$(median "$OUT/new.$f")
    printf '%-10s %8s %8s %8s\n' "$f" "$o" "$n" "$(awk -v a="$n" -v b="$o" 'BEGIN{printf "%.2f", a/b}')"
done
echo "(medians over $ROUNDS alternated rounds of $N iterations; load $(cut -d' ' -f1-3 /proc/loadavg))"
