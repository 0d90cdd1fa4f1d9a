#!/usr/bin/env bash
# bench/hullrt-phases.sh BIN [N]: where the time of `BIN run` (/bin/true) goes. Runs it N times (default 20)
# with HULLRT_TRACE=1 inside ../shared/oci/nsrun.sh and prints, per traced phase in time order, the median
# ms since the previous phase (+) and since the start (@). BIN is hullrt or any build of it. Needs gawk.
set -uo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
BIN=$(readlink -f "$1"); N=${2:-20}
bash "$SHARED/oci/lc/setup.sh" >/dev/null || exit 1
B=${OCIBASE_DIR:-/tmp/hull-ocibase}/run/bundles/true
ROOT=$(mktemp -d /tmp/hullrt-phases.XXXX)
trap 'rm -rf "$ROOT"' EXIT
for i in $(seq "$N"); do
    HULLRT_TRACE=1 bash "$SHARED/oci/nsrun.sh" "$BIN" --root "$ROOT" run --bundle "$B" "ph$i-$$" 2>&1 >/dev/null |
        awk '$1 == "trace" {t = $4; sub("ms", "", t); $1 = $2 = $3 = $4 = ""; sub(/^ +/, ""); print t "|" $0}' |
        sort -t'|' -k1,1n | awk -F'|' 'NR == 1 {b = $1; p = $1} {printf "%s|%.3f|%.3f\n", $2, $1 - p, $1 - b; p = $1}'
done | gawk -F'|' '
    !($1 in seen) {seen[$1] = 1; order[++n] = $1}
    {d[$1] = d[$1] " " $2; t[$1] = t[$1] " " $3}
    function med(s,   a, k) { k = split(s, a, " "); asort(a); return a[int((k + 1) / 2)] }
    END {for (i = 1; i <= n; i++) printf "%-32s +%.2f  @%.2f\n", order[i], med(d[order[i]]), med(t[order[i]])}'
