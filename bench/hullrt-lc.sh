#!/usr/bin/env bash
# bench/hullrt-lc.sh [N] RUNTIME... : the scorecard's hullrt-speed measurement for any set of runtimes
# (absolute paths; hullrt builds, crun, runc): ../shared/oci/lc/one.sh lifecycle, run and execfull, N
# (default 30) iterations of each op, the runtimes alternated within every iteration, all inside
# ../shared/oci/nsrun.sh. Prints the median ms per op and runtime, and each one's ratio to the first.
# Honours OCIBASE_DIR like the shared scripts.
set -uo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
N=30
[[ ${1:-} =~ ^[0-9]+$ ]] && { N=$1; shift; }
[ $# -ge 1 ] || { echo "usage: $0 [N] RUNTIME..." >&2; exit 2; }
bash "$SHARED/oci/lc/setup.sh" >/dev/null || exit 1
T=$(mktemp -d /tmp/hullrt-lc.XXXX)
trap 'rm -rf "$T"' EXIT
# Copies under distinct names: one.sh keys its state dir by the binary's name.
i=0; rts=()
for r in "$@"; do
    i=$((i + 1)); cp "$r" "$T/rt$i-${r##*/}" || exit 1; rts+=("$T/rt$i-${r##*/}")
done
cat > "$T/loop.sh" <<L
t() { local s=\$EPOCHREALTIME; bash "$SHARED/oci/lc/one.sh" "\$1" "\$2" >/dev/null 2>&1 || echo FAIL \$1 \$2 >&2; echo "\${1##*/} \$2 \$(( (\${EPOCHREALTIME/./} - \${s/./}) ))"; }
for op in lifecycle run execfull; do for i in \$(seq $N); do for r in ${rts[*]}; do t \$r \$op; done; done; done
L
bash "$SHARED/oci/nsrun.sh" bash "$T/loop.sh" > "$T/times" 2> "$T/err"
grep FAIL "$T/err" | sort | uniq -c >&2
med() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) printf "%.1f", a[(NR+1)/2]/1000; else printf "%.1f", (a[NR/2]+a[NR/2+1])/2000}'; }
printf '%-28s %10s %10s %10s\n' runtime lifecycle run execfull
declare -A first
for r in "${rts[@]}"; do
    n=${r##*/}; line=$(printf '%-28s' "${n#rt*-}")
    for op in lifecycle run execfull; do
        m=$(awk -v n="$n" -v o=$op '$1==n && $2==o {print $3}' "$T/times" | med)
        [ -z "${first[$op]:-}" ] && first[$op]=$m
        line+=$(printf ' %5s %4sx' "$m" "$(awk -v a="$m" -v b="${first[$op]}" 'BEGIN{printf "%.2f", a/b}')")
    done
    echo "$line"
done
echo "(medians of $N alternated iterations; load $(cut -d' ' -f1-3 /proc/loadavg))"
