#!/usr/bin/env bash
# Memory benchmark of `ferry copy`: a single 1 GiB blob copied registry -> layout,
# layout -> registry and registry -> registry, with peak RSS measured by /usr/bin/time -v.
# Goal (DESIGN.md §9): peak RSS under 64 MiB whatever the blob size. Prints the figures and
# exits non-zero when a copy fails or exceeds the goal.
#
#   scripts/bench-copy-memory.sh [SIZE_MIB]     (default 1024)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
size_mib=${1:-1024}
limit_kib=$((64 * 1024))

. scripts/prelude.sh bench-copy
echo "making a layout with one ${size_mib} MiB layer..."
python3 scripts/mkbig.py "$work/src" big "$size_mib"

start_registry a
a=$REGISTRY
start_registry b
b=$REGISTRY
echo "seeding the source registry with skopeo..."
skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$work/src:big" "docker://$a/bench/big:v1"

bytes=$((size_mib * 1024 * 1024))
failed=0
measure() {
    local name=$1
    shift
    local out="$work/time.$RANDOM"
    if ! /usr/bin/time -v "$@" --no-progress -q 2>"$out"; then
        cat "$out" >&2
        echo "$name: FAILED" >&2
        failed=1
        return
    fi
    local rss wall secs
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$out")
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$out")
    secs=$(echo "$wall" | awk -F: '{ if (NF == 3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    awk -v n="$name" -v r="$rss" -v s="$secs" -v b="$bytes" \
        'BEGIN { printf "%-22s peak RSS %6.1f MiB   wall %6.2f s   %7.1f MB/s\n", n, r / 1024, s, b / s / 1e6 }'
    if [ "$rss" -gt "$limit_kib" ]; then
        echo "$name: peak RSS ${rss} KiB exceeds the 64 MiB goal" >&2
        failed=1
    fi
}

echo "copying ${size_mib} MiB (one blob):"
measure "registry -> layout" "$ferry" copy --insecure "$a/bench/big:v1" "oci:$work/out:big"
measure "layout -> registry" "$ferry" copy --insecure "oci:$work/out:big" "$b/from-layout/big:v1"
rm -rf "$work/out"
measure "registry -> registry" "$ferry" copy --insecure --tmp-dir "$work/tmp" "$a/bench/big:v1" "$b/bench/big:v1"
exit $failed
