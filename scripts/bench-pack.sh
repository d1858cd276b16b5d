#!/usr/bin/env bash
# Pack benchmark (issue 3, DESIGN.md §9): ~2 GiB of layouts in two archives packed into a
# bundle without and with --gost-digest, chunked and not. Prints MB/s, the GOST/plain ratio,
# and for reference the disk's copy speed and one core's Streebog speed (rhash).
# Goals: without GOST near disk speed; with GOST near Streebog on both cores (~350 MB/s).
#
#   scripts/bench-pack.sh [TOTAL_MIB]     (default 2048)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
total_mib=${1:-2048}
half=$((total_mib / 2))

. scripts/prelude.sh bench-pack --example pack-layouts
pack=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/pack-layouts

echo "making two layouts of ${half} MiB each (4 layers apiece)..."
python3 scripts/mkbig.py "$work/platform" v1.0.0 "$half" --layers 4
python3 scripts/mkbig.py "$work/module" v1.0.0 "$half" --layers 4
bytes=$(du -sb "$work/platform" "$work/module" | awk '{ s += $1 } END { print s }')
sync

seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
now() { date +%s.%N; }
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }

run_pack() {
    local name=$1
    shift
    rm -rf "$work/bundle"
    sync
    local start end
    start=$(now)
    "$pack" "$work/bundle" "$@" platform.tar=:"$work/platform" module-a.tar=modules/a:"$work/module" >/dev/null
    sync
    end=$(now)
    local s
    s=$(seconds "$start" "$end")
    printf '%-28s %7.2f s  %6s MB/s\n' "$name" "$s" "$(rate "$s")" >&2
    echo "$s"
}

echo
echo "reference: the disk and one core"
start=$(now)
cat "$work"/platform/blobs/sha256/* "$work"/module/blobs/sha256/* >"$work/copy"
sync
end=$(now)
disk=$(seconds "$start" "$end")
rm -f "$work/copy"
printf '%-28s %7.2f s  %6s MB/s\n' "disk copy (cat + sync)" "$disk" "$(rate "$disk")"
one=$(find "$work/platform/blobs/sha256" -type f -size +1M | head -n 1)
one_bytes=$(stat -c %s "$one")
start=$(now)
rhash --gost12-256 "$one" >/dev/null
end=$(now)
gost_one=$(seconds "$start" "$end")
awk -v b="$one_bytes" -v s="$gost_one" 'BEGIN { printf "%-28s %7.2f s  %6.0f MB/s\n", "rhash --gost12-256, 1 core", s, b / s / 1e6 }'

echo
awk -v b="$bytes" 'BEGIN { printf "ferry pack of %.0f MB in two archives\n", b / 1e6 }'
plain=$(run_pack "plain")
gost=$(run_pack "--gost-digest" --gost)
run_pack "--gost-digest -c 500MB" --gost --chunk-size 500MB >/dev/null
echo
awk -v p="$plain" -v g="$gost" -v d="$disk" -v b="$bytes" -v ob="$one_bytes" -v og="$gost_one" 'BEGIN {
    two = 2 * ob / og
    printf "plain vs disk copy:          %.2fx the time\n", p / d
    printf "GOST vs plain:               %.2fx the time\n", g / p
    printf "GOST vs Streebog on 2 cores: %.0f of %.0f MB/s (%.0f%%)\n", b / g / 1e6, two / 1e6, 100 * (b / g) / two
}'
