#!/usr/bin/env bash
# Benchmarks of ferry against peer tools, measured in the same run on 127.0.0.1 (DESIGN.md §9).
# Every figure is the median of ROUNDS runs, the tools alternating. The machine is noisy: read
# the ratios, not the absolute times.
#
#   scripts/bench.sh pull [SIZE_MIB] [ROUNDS]   (default 1024 MiB, 3 rounds)
#   scripts/bench.sh push [SIZE_MIB] [ROUNDS]
#   scripts/bench.sh serve [SIZE_MIB] [ROUNDS]
#
# pull: SIZE_MIB of random layers in four images (four layers each) in a local registry, pulled
#   - by ferry into one tar, and by `skopeo sync --all --preserve-digests` to a dir plus
#     `tar cf` (goal: ferry <= 0.5x);
#   - by ferry with --gost-digest, into one tar and in 256 MB chunks, each held to the Streebog
#     limit measured in the same run: ferry's own Streebog-256 on one core over the bundle's
#     bytes, timed by the CPU it got (examples/streebog-speed.rs). Goals: one tar adds <= 1.05 x bundle / that speed,
#     chunks add <= 1.1 x bundle / (2 x that speed);
#   - through scripts/fault-proxy.py --rate 100 (a 100 MB/s line), with and without
#     --gost-digest (goal: <= 1.05x);
#   peak RSS (/usr/bin/time; goal <= 64 MiB) and peak disk use of the bundle directory with its
#   work directory (sampled; goal <= bundle + 1%).
# push: the same images pulled into a bundle (256 MB chunks, GOST sums), then
#   - ferry push, and `skopeo copy --all --preserve-digests` of each image from the layouts GNU
#     tar extracts from the bundle (extraction not counted) (goal: ferry <= 0.5x);
#   - the same again onto a target that has everything (goal: ferry <= 0.2x skopeo's);
#   - peak RSS (goal <= 64 MiB) and bytes ferry writes to disk during a push (goal 0);
#   - ferry verify --gost against `sha256sum -c SHA256SUMS` + `rhash -c GOSTSUMS`
#     (goal: <= 0.3x), and against the two-core Streebog limit, bundle / (2 x one core's
#     Streebog speed) measured in the same run (goal: <= 1.1x), beside its floor: the same
#     read also runs SHA-256 twice (the files' sums, the blobs' digests), so two cores need at
#     least (bundle / Streebog speed + 2 x bundle / SHA-256 speed) / 2.
# serve: the same images pulled into a bundle (256 MB chunks, GOST sums), then four parallel
#   `skopeo copy --all --preserve-digests` (one per image, to dir:) from
#   - `ferry serve` of the bundle (bytes straight from the chunks), and
#   - the distribution registry holding the same images on its filesystem storage (filled by
#     ferry push) (goal: ferry <= 0.8x);
#   the same blobs fetched by four parallel curl to /dev/null from each (what the servers
#   themselves can give, with skopeo's digest checks and disk writes out of the way);
#   peak RSS of ferry serve over all rounds (goal <= 64 MiB) and its start-up time (launch to
#   the readiness line).
# scale: the scale profile (issue 21) of N component images (default 2000; the second argument is
#   N, not MiB) seeded over the HTTP API (FERRY_SEED_SCALE, scripts/seed-http.py); its big layers
#   are FERRY_BENCH_BIG_MIB/2, FERRY_BENCH_BIG_MIB and twice that (default 100). Then
#   - ferry pull of everything (platform, modules, security) vs `skopeo sync --all
#     --preserve-digests --scoped` of exactly the tags of the bundle (`ferry ls --json`) to a dir
#     plus `tar cf` (goal: <= 0.1x);
#   - ferry push of the bundle vs `skopeo sync --src dir --dest docker` of that dir, each to a
#     fresh registry of its own per round (goal: <= 0.2x), and again onto the target that has
#     everything (goal: <= 0.1x);
#   - requests per run, from the registries' access logs, per method and kind, against the
#     minimum of issue 21 (scripts/scale-stats.py) (goal: <= 1.1x);
#   - peak RSS of ferry pull and push (goal <= 64 MiB);
#   - the demo-sized push: the sample distribution (113 tags) pulled once and pushed to a fresh
#     plain registry each round (goal <= 1 s).
#   - the CPU floor of each ferry run: ferry's CPU and the registry's (from /proc) over the
#     cores they share, beside the time taken and the time each goal asks for.
#   FERRY_BENCH_FERRY_ONLY=1 leaves skopeo out (ferry's times, requests and peak RSS only: the
#   N = 10,000 memory figure without an hour of skopeo).
#
# FERRY_REGISTRY_ROOT=DIR keeps every registry's storage under DIR (scripts/prelude.sh), e.g.
# /dev/shm: the registry then no longer waits on this machine's disk (ext4 inode allocation and
# fsync took most of its CPU in a push, by perf), which is what holds ferry back at scale.
#
# FERRY_BASELINE_BIN=/path/to/an/older/ferry also runs that binary in every round, alternating
# with this one (pull: one tar and 256 MB chunks with GOST; push: a push and a re-push; scale:
# pull, push, re-push and the demo-sized push), and
# prints its medians and this build's ratio to them: a change is measured against the commit
# before it in the same run, never against figures of another day.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
what=${1:?usage: scripts/bench.sh pull [SIZE_MIB] [ROUNDS]}
size_mib=${2:-1024}
[ "$what" != scale ] || size_mib=${2:-2000}
rounds=${3:-3}

. scripts/prelude.sh "bench-$what" --bin ferry

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# ferry's own Streebog-256 on one core over (up to 512 MiB of) FILE, in MB/s of CPU time, and
# SHA-256's over the same bytes: "streebog sha256". The limit every GOST figure is held to,
# measured in the same run since the CPU's speed moves between days.
hash_speeds() {
    cargo build --release --locked -q --example streebog-speed
    "${CARGO_TARGET_DIR:-target}/release/examples/streebog-speed" "$1" | cut -d' ' -f1,3
}
# Runs a command, prints "seconds peak_rss_kib".
timed() {
    local out="$work/time.out"
    /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null 2>"$work/last.err" ||
        { cat "$work/last.err" >&2; return 1; }
    cat "$out"
}
# Largest disk use (allocated bytes) of a directory while a command runs; prints it last.
with_disk_peak() {
    local dir=$1
    shift
    local peak_file="$work/peak"
    echo 0 >"$peak_file"
    (
        trap - EXIT
        peak=0
        while :; do
            used=$(du -s -B1 "$dir" 2>/dev/null | cut -f1) || used=
            [ -n "$used" ] && [ "$used" -gt "$peak" ] && peak=$used && echo "$peak" >"$peak_file"
            sleep 0.05
        done
    ) &
    local sampler=$!
    "$@"
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    cat "$peak_file"
}

# Seeds a source registry with four images of SIZE_MIB / 4 each; sets src, layout_file and
# sync_file (a skopeo sync list of the four).
seed_source() {
    start_registry source
    src=$REGISTRY
    local each=$((size_mib / 4))
    echo "making four images of $each MiB (four layers each) and seeding them with skopeo..."
    layout_file="$work/bench.yaml" sync_file="$work/sync.yaml"
    sed '/^  databases:/,$d' layouts/deckhouse.yaml >"$layout_file"
    echo "  databases:" >>"$layout_file"
    printf '%s:\n  tls-verify: false\n  images:\n' "$src" >"$sync_file"
    for i in 1 2 3 4; do
        python3 scripts/mkbig.py "$work/img$i" v1 "$each" --layers 4 >/dev/null
        skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
            "oci:$work/img$i:v1" "docker://$src/bench/ee/security/img$i:1"
        rm -rf "$work/img$i"
        echo "    - { repo: security/img$i, tag: \"1\" }" >>"$layout_file"
        echo "    bench/ee/security/img$i: [\"1\"]" >>"$sync_file"
    done
}

bench_pull() {
    local src layout_file sync_file
    seed_source
    python3 scripts/fault-proxy.py --upstream "$src" --port-file "$work/proxy.port" --rate 100 \
        >/dev/null 2>&1 &
    proxy_pid=$!
    trap 'kill $proxy_pid 2>/dev/null || true; cleanup' EXIT
    for _ in $(seq 100); do [ -f "$work/proxy.port" ] && break; sleep 0.05; done
    local proxy="127.0.0.1:$(cat "$work/proxy.port")"

    local bundle="$work/bundle"
    ferry_pull() {
        local host=$1
        shift
        pull_with "$ferry" "$host" "$@"
    }
    pull_with() {
        local bin=$1 host=$2
        shift 2
        rm -rf "$bundle"
        sync
        timed "$bin" -q pull "$bundle" --source "$host/bench/ee" --insecure \
            --layout "$layout_file" --no-platform --no-modules "$@"
    }
    skopeo_pull() {
        rm -rf "$work/sync" "$work/sync.tar"
        sync
        local start end
        start=$(now)
        skopeo sync --all --preserve-digests --src yaml --dest dir "$sync_file" "$work/sync" \
            >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; return 1; }
        tar cf "$work/sync.tar" -C "$work/sync" .
        sync
        end=$(now)
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f 0\n", b - a }'
        rm -rf "$work/sync" "$work/sync.tar"
    }

    : >"$work/r.plain" >"$work/r.skopeo" >"$work/r.gost" >"$work/r.chunk" >"$work/r.chunkgost"
    : >"$work/r.line" >"$work/r.linegost" >"$work/r.rss" >"$work/r.disk"
    : >"$work/r.base" >"$work/r.basechunkgost"
    for round in $(seq "$rounds"); do
        echo "round $round of $rounds..."
        if [ -n "${FERRY_BASELINE_BIN:-}" ]; then
            pull_with "$FERRY_BASELINE_BIN" "$src" >>"$work/r.base"
            pull_with "$FERRY_BASELINE_BIN" "$src" -c 0.256 --gost-digest >>"$work/r.basechunkgost"
        fi
        ferry_pull "$src" | tee -a "$work/r.plain" | cut -d' ' -f2 >>"$work/r.rss"
        skopeo_pull >>"$work/r.skopeo"
        ferry_pull "$src" --gost-digest | tee -a "$work/r.gost" | cut -d' ' -f2 >>"$work/r.rss"
        ferry_pull "$src" -c 0.256 >>"$work/r.chunk"
        ferry_pull "$src" -c 0.256 --gost-digest >>"$work/r.chunkgost"
        ferry_pull "$proxy" >>"$work/r.line"
        ferry_pull "$proxy" --gost-digest >>"$work/r.linegost"
        rm -rf "$bundle"
        with_disk_peak "$bundle" ferry_pull "$src" --gost-digest | tail -n 1 >>"$work/r.disk"
    done
    kill "$proxy_pid" 2>/dev/null || true
    local bytes
    bytes=$(find "$bundle" -maxdepth 1 -name '*.tar' -printf '%s\n' | awk '{ s += $1 } END { print s }')
    local streebog i
    streebog=$(for i in $(seq "$rounds"); do
        hash_speeds "$(find "$bundle" -maxdepth 1 -name '*.tar' | head -n 1)"
    done | cut -d' ' -f1 | median)

    local plain skopeo gost chunk chunkgost line linegost rss disk
    plain=$(cut -d' ' -f1 "$work/r.plain" | median)
    skopeo=$(cut -d' ' -f1 "$work/r.skopeo" | median)
    gost=$(cut -d' ' -f1 "$work/r.gost" | median)
    chunk=$(cut -d' ' -f1 "$work/r.chunk" | median)
    chunkgost=$(cut -d' ' -f1 "$work/r.chunkgost" | median)
    line=$(cut -d' ' -f1 "$work/r.line" | median)
    linegost=$(cut -d' ' -f1 "$work/r.linegost" | median)
    rss=$(sort -g "$work/r.rss" | tail -n 1)
    disk=$(sort -g "$work/r.disk" | tail -n 1)
    echo
    awk -v b="$bytes" -v r="$rounds" 'BEGIN { printf "ferry pull of %.0f MB (one archive), medians of %d runs\n", b / 1e6, r }'
    awk -v b="$bytes" -v p="$plain" -v s="$skopeo" -v g="$gost" -v c="$chunk" -v cg="$chunkgost" \
        -v l="$line" -v lg="$linegost" -v rss="$rss" -v d="$disk" -v sb="$streebog" 'BEGIN {
        one = b / (sb * 1e6)
        two = one / 2
        printf "%-44s %7.0f MB/s: one tar needs >= %.2f s, two cores %.2f s\n", "Streebog-256 in ferry, one core, these bytes", sb, one, two
        printf "%-44s %7.2f s  %5.0f MB/s\n", "ferry pull", p, b / p / 1e6
        printf "%-44s %7.2f s  %5.0f MB/s\n", "skopeo sync --all --preserve-digests + tar", s, b / s / 1e6
        printf "%-44s %7.2fx   (goal <= 0.5x)\n", "  ferry / skopeo", p / s
        printf "%-44s %7.2f s  +%.2f s = %.2fx the one-core limit (goal <= 1.05x)\n", "ferry pull --gost-digest, one tar", g, g - p, (g - p) / one
        printf "%-44s %7.2f s\n", "ferry pull -c 0.256", c
        printf "%-44s %7.2f s  +%.2f s = %.2fx the two-core limit (goal <= 1.1x)\n", "ferry pull -c 0.256 --gost-digest", cg, cg - c, (cg - c) / two
        printf "%-44s %7.2f s\n", "behind a 100 MB/s line", l
        printf "%-44s %7.2f s  %.2fx (goal <= 1.05x)\n", "behind a 100 MB/s line, --gost-digest", lg, lg / l
        printf "%-44s %7.1f MiB (goal <= 64 MiB)\n", "peak RSS", rss / 1024
        printf "%-44s %7.0f MB = bundle + %.2f%% (goal <= 1%%)\n", "peak disk, bundle dir + work dir", d / 1e6, 100 * (d - b) / b
    }'
    if [ -n "${FERRY_BASELINE_BIN:-}" ]; then
        local base basechunkgost
        base=$(cut -d' ' -f1 "$work/r.base" | median)
        basechunkgost=$(cut -d' ' -f1 "$work/r.basechunkgost" | median)
        awk -v p="$plain" -v bp="$base" -v cg="$chunkgost" -v bcg="$basechunkgost" 'BEGIN {
            printf "%-44s %7.2f s  this build %.2fx\n", "baseline ferry pull", bp, p / bp
            printf "%-44s %7.2f s  this build %.2fx\n", "baseline ferry pull -c 0.256 --gost-digest", bcg, cg / bcg
        }'
    fi
}

bench_push() {
    local src layout_file sync_file
    seed_source
    local bundle="$work/bundle" layouts="$work/layouts"
    "$ferry" -q pull "$bundle" --source "$src/bench/ee" --insecure --layout "$layout_file" \
        --no-platform --no-modules -c 0.256 --gost-digest
    mkdir -p "$layouts"
    cat "$bundle"/security.tar.*.chunk | tar -xf - -C "$layouts"
    local bytes
    bytes=$(du -cb "$bundle"/*.chunk | tail -n 1 | cut -f1)

    # Each tool pushes to registries of its own, fresh each round: skopeo remembers where it
    # saw blobs and would mount them from the other tool's repositories.
    ferry_push() { # prints "seconds rss_kib fs_output_blocks"
        push_with "$ferry" "$1"
    }
    push_with() {
        /usr/bin/time -f '%e %M %O' -o "$work/time.out" "$1" -q push "$bundle" "$2/bench/ee" \
            --insecure >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; return 1; }
        cat "$work/time.out"
    }
    skopeo_push() { # prints seconds
        local start end i
        start=$(now)
        for i in 1 2 3 4; do
            skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
                "oci:$layouts/security/img$i:1" "docker://$1/bench/ee/security/img$i:1"
        done
        end=$(now)
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f\n", b - a }'
    }
    verify_ferry() {
        local start end
        sync
        start=$(now)
        "$ferry" -q verify --gost "$bundle" >/dev/null
        end=$(now)
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f\n", b - a }'
    }
    verify_tools() {
        local start end
        sync
        start=$(now)
        (cd "$bundle" && sha256sum --quiet -c SHA256SUMS && rhash -c --skip-ok GOSTSUMS >/dev/null)
        end=$(now)
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f\n", b - a }'
    }

    : >"$work/r.ferry" >"$work/r.skopeo" >"$work/r.ferry0" >"$work/r.skopeo0"
    : >"$work/r.vferry" >"$work/r.vtools" >"$work/r.base" >"$work/r.base0"
    for round in $(seq "$rounds"); do
        echo "round $round of $rounds..."
        start_registry "ferry$round"
        local ferry_target=$REGISTRY
        start_registry "skopeo$round"
        local skopeo_target=$REGISTRY
        if [ -n "${FERRY_BASELINE_BIN:-}" ]; then
            start_registry "base$round"
            push_with "$FERRY_BASELINE_BIN" "$REGISTRY" >>"$work/r.base"
            push_with "$FERRY_BASELINE_BIN" "$REGISTRY" >>"$work/r.base0"
        fi
        ferry_push "$ferry_target" >>"$work/r.ferry"
        skopeo_push "$skopeo_target" >>"$work/r.skopeo"
        ferry_push "$ferry_target" >>"$work/r.ferry0"
        skopeo_push "$skopeo_target" >>"$work/r.skopeo0"
        verify_ferry >>"$work/r.vferry"
        verify_tools >>"$work/r.vtools"
    done
    local f s f0 s0 vf vt rss written streebog sha256 i
    for i in $(seq "$rounds"); do
        hash_speeds "$(find "$bundle" -maxdepth 1 -name '*.chunk' | sort | head -n 1)"
    done >"$work/r.speeds"
    streebog=$(cut -d' ' -f1 "$work/r.speeds" | median)
    sha256=$(cut -d' ' -f2 "$work/r.speeds" | median)
    f=$(cut -d' ' -f1 "$work/r.ferry" | median)
    s=$(median <"$work/r.skopeo")
    f0=$(cut -d' ' -f1 "$work/r.ferry0" | median)
    s0=$(median <"$work/r.skopeo0")
    vf=$(median <"$work/r.vferry")
    vt=$(median <"$work/r.vtools")
    rss=$(cat "$work/r.ferry" "$work/r.ferry0" | cut -d' ' -f2 | sort -g | tail -n 1)
    written=$(cat "$work/r.ferry" "$work/r.ferry0" | cut -d' ' -f3 | sort -g | tail -n 1)
    echo
    awk -v b="$bytes" -v r="$rounds" 'BEGIN { printf "ferry push of %.0f MB (four images, 256 MB chunks), medians of %d runs\n", b / 1e6, r }'
    awk -v b="$bytes" -v f="$f" -v s="$s" -v f0="$f0" -v s0="$s0" -v vf="$vf" -v vt="$vt" \
        -v rss="$rss" -v w="$written" -v sb="$streebog" -v sha="$sha256" 'BEGIN {
        two = b / (2 * sb * 1e6)
        floor = (b / (sb * 1e6) + 2 * b / (sha * 1e6)) / 2
        printf "%-44s %7.2f s  %5.0f MB/s\n", "ferry push", f, b / f / 1e6
        printf "%-44s %7.2f s  %5.0f MB/s\n", "skopeo copy --all --preserve-digests x4", s, b / s / 1e6
        printf "%-44s %7.2fx   (goal <= 0.5x)\n", "  ferry / skopeo", f / s
        printf "%-44s %7.2f s\n", "ferry push again (target has everything)", f0
        printf "%-44s %7.2f s\n", "skopeo copy again", s0
        printf "%-44s %7.2fx   (goal <= 0.2x)\n", "  ferry / skopeo", f0 / s0
        printf "%-44s %7.1f MiB (goal <= 64 MiB)\n", "peak RSS of ferry push", rss / 1024
        printf "%-44s %7d bytes (goal 0)\n", "written to disk by ferry push", w * 512
        printf "%-44s %7.2f s\n", "ferry verify --gost", vf
        printf "%-44s %7.2f s\n", "sha256sum -c + rhash -c", vt
        printf "%-44s %7.2fx   (goal <= 0.3x)\n", "  ferry / tools", vf / vt
        printf "%-44s %7.0f MB/s: two cores need >= %.2f s\n", "Streebog-256 in ferry, one core, these bytes", sb, two
        printf "%-44s %7.2fx   (goal <= 1.1x)\n", "  ferry verify --gost / the two-core limit", vf / two
        printf "%-44s %7.0f MB/s: with Streebog, two cores need >= %.2f s = %.2fx the limit\n", "SHA-256 (run twice by verify), one core", sha, floor, floor / two
        printf "%-44s %7.2fx\n", "  ferry verify --gost / that floor", vf / floor
    }'
    if [ -n "${FERRY_BASELINE_BIN:-}" ]; then
        local base base0
        base=$(cut -d' ' -f1 "$work/r.base" | median)
        base0=$(cut -d' ' -f1 "$work/r.base0" | median)
        awk -v f="$f" -v b="$base" -v f0="$f0" -v b0="$base0" 'BEGIN {
            printf "%-44s %7.2f s  this build %.2fx\n", "baseline ferry push", b, f / b
            printf "%-44s %7.2f s  this build %.2fx\n", "baseline ferry push again", b0, f0 / b0
        }'
    fi
}

bench_serve() {
    local src layout_file sync_file
    seed_source
    local bundle="$work/bundle"
    "$ferry" -q pull "$bundle" --source "$src/bench/ee" --insecure --layout "$layout_file" \
        --no-platform --no-modules -c 0.256 --gost-digest
    local bytes
    bytes=$(du -cb "$bundle"/*.chunk | tail -n 1 | cut -f1)
    start_registry stored
    local stored=$REGISTRY
    "$ferry" -q push "$bundle" "$stored/bench/ee" --insecure

    # ferry serve under GNU time (its peak RSS), until the end of the benchmark.
    local log="$work/serve.log"
    /usr/bin/time -f '%M' -o "$work/serve.rss" "$ferry" serve --listen 127.0.0.1:0 \
        --prefix bench/ee "$bundle" >"$log" 2>"$work/serve.err" &
    serve_pid=$!
    trap 'kill "$serve_pid" 2>/dev/null || true; cleanup' EXIT
    local served="" i
    for i in $(seq 600); do
        served=$(sed -n 's|.*listening on http://\([0-9.:]*\).*|\1|p' "$log" | head -n 1)
        [ -n "$served" ] && break
        sleep 0.05
    done
    [ -n "$served" ] || { cat "$work/serve.err" >&2; exit 1; }

    copy_all() { # prints seconds for four parallel copies from $1
        local start end i pids=()
        rm -rf "$work/out"
        mkdir -p "$work/out"
        sync
        start=$(now)
        for i in 1 2 3 4; do
            skopeo copy -q --all --preserve-digests --src-tls-verify=false \
                "docker://$1/bench/ee/security/img$i:1" "dir:$work/out/$i" &
            pids+=($!)
        done
        for i in "${pids[@]}"; do wait "$i"; done
        end=$(now)
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f\n", b - a }'
    }
    # Every blob of image N, as "repository/blobs/digest" paths.
    local i
    for i in 1 2 3 4; do
        skopeo inspect --raw --tls-verify=false "docker://$stored/bench/ee/security/img$i:1" |
            python3 -c 'import json, sys
m = json.load(sys.stdin)
for d in [m["config"]] + m["layers"]:
    print("bench/ee/security/img'"$i"'/blobs/" + d["digest"])' >"$work/blobs.$i"
    done
    fetch_all() { # prints seconds for four parallel curls (one per image) from $1
        local start end i pids=()
        start=$(now)
        for i in 1 2 3 4; do
            (while read -r blob; do
                curl -sf -o /dev/null "http://$1/v2/$blob"
            done <"$work/blobs.$i") &
            pids+=($!)
        done
        for i in "${pids[@]}"; do wait "$i"; done
        end=$(now)
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
    }
    startup() { # prints seconds from launch to the readiness line
        local start end out="$work/startup.log" pid
        start=$(now)
        "$ferry" serve --listen 127.0.0.1:0 --prefix bench/ee "$bundle" >"$out" 2>/dev/null &
        pid=$!
        while ! grep -q 'listening on' "$out" 2>/dev/null; do sleep 0.01; done
        end=$(now)
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
    }

    : >"$work/r.ferry" >"$work/r.registry" >"$work/r.startup" >"$work/r.fcurl" >"$work/r.rcurl"
    for round in $(seq "$rounds"); do
        echo "round $round of $rounds..."
        copy_all "$served" >>"$work/r.ferry"
        copy_all "$stored" >>"$work/r.registry"
        fetch_all "$served" >>"$work/r.fcurl"
        fetch_all "$stored" >>"$work/r.rcurl"
        startup >>"$work/r.startup"
    done
    # GNU time reports once its child, ferry, has stopped.
    pkill -TERM -P "$serve_pid" || true
    wait "$serve_pid" || true
    local f r up rss fc rc
    f=$(median <"$work/r.ferry")
    r=$(median <"$work/r.registry")
    fc=$(median <"$work/r.fcurl")
    rc=$(median <"$work/r.rcurl")
    up=$(median <"$work/r.startup")
    rss=$(cat "$work/serve.rss")
    echo
    awk -v b="$bytes" -v r="$rounds" 'BEGIN { printf "serving %.0f MB (four images, 256 MB chunks), medians of %d runs\n", b / 1e6, r }'
    awk -v b="$bytes" -v f="$f" -v r="$r" -v up="$up" -v rss="$rss" -v fc="$fc" -v rc="$rc" 'BEGIN {
        printf "%-44s %7.2f s  %5.0f MB/s\n", "4x skopeo copy from ferry serve", f, b / f / 1e6
        printf "%-44s %7.2f s  %5.0f MB/s\n", "4x skopeo copy from the registry", r, b / r / 1e6
        printf "%-44s %7.2fx   (goal <= 0.8x)\n", "  ferry / registry", f / r
        printf "%-44s %7.3f s  %5.0f MB/s\n", "4x curl of every blob from ferry serve", fc, b / fc / 1e6
        printf "%-44s %7.3f s  %5.0f MB/s\n", "4x curl of every blob from the registry", rc, b / rc / 1e6
        printf "%-44s %7.2fx\n", "  ferry / registry", fc / rc
        printf "%-44s %7.1f MiB (goal <= 64 MiB)\n", "peak RSS of ferry serve", rss / 1024
        printf "%-44s %7.3f s\n", "ferry serve start-up (launch to ready)", up
    }'
}

# Seconds of a command, or of a shell function, as "seconds 0" (no RSS).
wall() {
    local start end
    start=$(now)
    "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; return 1; }
    end=$(now)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f 0\n", b - a }'
}
log_size() { stat -c %s "$1/log"; }
# CPU seconds the registry of DIR has used so far (user + system).
registry_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$(cat "$1/pid")/stat"
}
# Runs a ferry command against the registry of DIR; prints "seconds peak_rss_kib ferry_cpu
# registry_cpu": what each side's CPU was during the run, for the floor two cores set.
timed_cpu() {
    local dir=$1 out="$work/time.out" before
    shift
    before=$(registry_cpu "$dir")
    /usr/bin/time -f '%e %M %U %S' -o "$out" "$@" >/dev/null 2>"$work/last.err" ||
        { cat "$work/last.err" >&2; return 1; }
    awk -v b="$before" -v a="$(registry_cpu "$dir")" '{ printf "%s %s %.2f %.2f\n", $1, $2, $3 + $4, a - b }' "$out"
}
# Requests in registry DIR's access log since byte OFFSET, as one "total" number; the breakdown
# per method and kind goes to FILE.
requests_since() {
    python3 scripts/scale-stats.py log "$1/log" "$2" >"$3"
    python3 scripts/scale-stats.py phases "$1/log" "$2" >"$3.phases"
    sed -n 's/^total //p' "$3"
}

bench_scale() {
    local n=$size_mib big=${FERRY_BENCH_BIG_MIB:-100} ferry_only=${FERRY_BENCH_FERRY_ONLY:-}
    start_registry source
    local src=$REGISTRY src_dir=$REGISTRY_DIR
    echo "seeding the scale profile: $n component images, big layers of $big MiB/2, x1, x2..."
    local start
    start=$(now)
    FERRY_SEED_SCALE=$n FERRY_SEED_BIG_MIB=$big scripts/seed-source.sh "$src" bench/ee >/dev/null
    awk -v a="$start" -v b="$(now)" 'BEGIN { printf "seeded in %.1f s (generation and seed-http.py)\n", b - a }'

    local bundle="$work/bundle" sync_dir="$work/sync"
    scale_pull() { # ferry pull of the whole profile: "seconds rss_kib ferry_cpu registry_cpu"
        rm -rf "$bundle"
        sync
        timed_cpu "$src_dir" "$ferry" -q pull "$bundle" --source "$src/bench/ee" --insecure
    }
    scale_sync() { # skopeo sync of the bundle's tags to a dir, then tar: "seconds 0"
        rm -rf "$sync_dir" "$work/sync.tar"
        sync
        wall sh -c "skopeo sync --all --preserve-digests --scoped --src yaml --dest dir \
            '$work/sync.yaml' '$sync_dir' && tar cf '$work/sync.tar' -C '$sync_dir' . && sync"
        rm -f "$work/sync.tar"
    }
    scale_push() { # ferry push to registry $1 (directory $3): "seconds rss_kib ferry_cpu registry_cpu"
        timed_cpu "$3" "${2:-$ferry}" -q push "$bundle" "$1/bench/ee" --insecure
    }
    scale_base_pull() { # the baseline binary's pull, into a bundle of its own
        rm -rf "$work/base-bundle"
        sync
        timed "$FERRY_BASELINE_BIN" -q pull "$work/base-bundle" --source "$src/bench/ee" --insecure
        rm -rf "$work/base-bundle"
    }
    scale_sync_push() { # skopeo sync from the dir: "seconds 0"
        wall skopeo sync --all --preserve-digests --dest-tls-verify=false --src dir --dest docker \
            "$sync_dir/$src/bench" "$1/bench"
    }

    # One pull first: the list of what the bundle holds, for skopeo and for the minimum.
    echo "a first ferry pull for the list of tags..."
    scale_pull >/dev/null
    "$ferry" ls --json "$bundle" | python3 scripts/scale-stats.py sync-yaml "$src" bench/ee \
        >"$work/sync.yaml"
    python3 scripts/scale-stats.py bundle "$bundle" >"$work/stats"
    cat "$work/stats"
    local tags min_pull min_push min_repush repo_blobs bytes
    tags=$(sed -n 's/^tags=//p' "$work/stats")
    min_pull=$(sed -n 's/^min_pull=//p' "$work/stats")
    min_push=$(sed -n 's/^min_push=//p' "$work/stats")
    min_repush=$(sed -n 's/^min_repush=//p' "$work/stats")
    repo_blobs=$(sed -n 's/^repo_blobs=//p' "$work/stats")
    bytes=$(find "$bundle" -maxdepth 1 -name '*.tar' -printf '%s\n' | awk '{ s += $1 } END { print s }')

    : >"$work/r.fpull" >"$work/r.spull" >"$work/r.fpush" >"$work/r.spush" >"$work/r.frepush"
    : >"$work/r.srepush" >"$work/r.demo" >"$work/r.bpull" >"$work/r.bpush" >"$work/r.brepush"
    : >"$work/r.bdemo"
    local round off
    for round in $(seq "$rounds"); do
        echo "round $round of $rounds..."
        off=$(log_size "$src_dir")
        scale_pull >>"$work/r.fpull"
        requests_since "$src_dir" "$off" "$work/q.fpull" >/dev/null
        if [ -z "$ferry_only" ]; then
            off=$(log_size "$src_dir")
            scale_sync >>"$work/r.spull"
            requests_since "$src_dir" "$off" "$work/q.spull" >/dev/null
        fi
        start_registry "ferry$round"
        local ferry_target=$REGISTRY ferry_dir=$REGISTRY_DIR
        off=$(log_size "$ferry_dir")
        scale_push "$ferry_target" "$ferry" "$ferry_dir" >>"$work/r.fpush"
        requests_since "$ferry_dir" "$off" "$work/q.fpush" >/dev/null
        off=$(log_size "$ferry_dir")
        scale_push "$ferry_target" "$ferry" "$ferry_dir" >>"$work/r.frepush"
        requests_since "$ferry_dir" "$off" "$work/q.frepush" >/dev/null
        scripts/dev-registry.sh stop "$ferry_dir" >/dev/null 2>&1 || true
        rm -rf "$ferry_dir/data"
        if [ -z "$ferry_only" ]; then
            start_registry "skopeo$round"
            local skopeo_target=$REGISTRY skopeo_dir=$REGISTRY_DIR
            off=$(log_size "$skopeo_dir")
            scale_sync_push "$skopeo_target" >>"$work/r.spush"
            requests_since "$skopeo_dir" "$off" "$work/q.spush" >/dev/null
            off=$(log_size "$skopeo_dir")
            scale_sync_push "$skopeo_target" >>"$work/r.srepush"
            requests_since "$skopeo_dir" "$off" "$work/q.srepush" >/dev/null
            scripts/dev-registry.sh stop "$skopeo_dir" >/dev/null 2>&1 || true
            rm -rf "$skopeo_dir/data"
        fi
        if [ -n "${FERRY_BASELINE_BIN:-}" ]; then
            scale_base_pull >>"$work/r.bpull"
            start_registry "base$round"
            scale_push "$REGISTRY" "$FERRY_BASELINE_BIN" "$REGISTRY_DIR" >>"$work/r.bpush"
            scale_push "$REGISTRY" "$FERRY_BASELINE_BIN" "$REGISTRY_DIR" >>"$work/r.brepush"
            scripts/dev-registry.sh stop "$REGISTRY_DIR" >/dev/null 2>&1 || true
            rm -rf "$REGISTRY_DIR/data"
        fi
    done

    # The demo-sized push: the sample distribution, pulled once, pushed to a fresh registry.
    start_registry demo-source
    local demo_src=$REGISTRY
    scripts/seed-source.sh "$demo_src" sample/ee >/dev/null
    "$ferry" -q pull "$work/demo-bundle" --source "$demo_src/sample/ee" --insecure
    local demo_tags
    demo_tags=$("$ferry" ls --json "$work/demo-bundle" | grep -c '"tag"')
    for round in $(seq "$rounds"); do
        start_registry "demo$round"
        timed_cpu "$REGISTRY_DIR" "$ferry" -q push "$work/demo-bundle" "$REGISTRY/mirror/ee" \
            --insecure >>"$work/r.demo"
        scripts/dev-registry.sh stop "$REGISTRY_DIR" >/dev/null 2>&1 || true
        if [ -n "${FERRY_BASELINE_BIN:-}" ]; then
            start_registry "bdemo$round"
            timed "$FERRY_BASELINE_BIN" -q push "$work/demo-bundle" "$REGISTRY/mirror/ee" \
                --insecure >>"$work/r.bdemo"
            scripts/dev-registry.sh stop "$REGISTRY_DIR" >/dev/null 2>&1 || true
        fi
    done

    local fp sp fu su fr sr dm prss urss
    fp=$(cut -d' ' -f1 "$work/r.fpull" | median)
    sp=$(cut -d' ' -f1 "$work/r.spull" | median)
    fu=$(cut -d' ' -f1 "$work/r.fpush" | median)
    su=$(cut -d' ' -f1 "$work/r.spush" | median)
    fr=$(cut -d' ' -f1 "$work/r.frepush" | median)
    sr=$(cut -d' ' -f1 "$work/r.srepush" | median)
    # Without the peers (FERRY_BENCH_FERRY_ONLY) their lines say so instead of a ratio.
    [ -z "$ferry_only" ] || { sp=0 su=0 sr=0; }
    dm=$(cut -d' ' -f1 "$work/r.demo" | median)
    prss=$(cut -d' ' -f2 "$work/r.fpull" | sort -g | tail -n 1)
    urss=$(cat "$work/r.fpush" "$work/r.frepush" | cut -d' ' -f2 | sort -g | tail -n 1)
    local qfp qsp qfu qsu qfr qsr
    qfp=$(sed -n 's/^total //p' "$work/q.fpull")
    qsp=0
    [ -n "$ferry_only" ] || qsp=$(sed -n 's/^total //p' "$work/q.spull")
    qfu=$(sed -n 's/^total //p' "$work/q.fpush")
    qsu=0
    [ -n "$ferry_only" ] || qsu=$(sed -n 's/^total //p' "$work/q.spush")
    qfr=$(sed -n 's/^total //p' "$work/q.frepush")
    qsr=0
    [ -n "$ferry_only" ] || qsr=$(sed -n 's/^total //p' "$work/q.srepush")
    echo
    awk -v n="$n" -v t="$tags" -v b="$bytes" -v r="$rounds" 'BEGIN {
        printf "scale profile: %d component images, %d tags in the bundle, %.0f MB; medians of %d runs\n", n, t, b / 1e6, r }'
    awk -v fp="$fp" -v sp="$sp" -v fu="$fu" -v su="$su" -v fr="$fr" -v sr="$sr" -v dm="$dm" \
        -v dt="$demo_tags" -v prss="$prss" -v urss="$urss" '
        # A peer line and the ratio to it; a peer time of 0 means it was not run.
        function peer(name, f, p, goal) {
            if (p == 0) { printf "%-48s %8s\n", name, "not run"; return }
            printf "%-48s %8.2f s\n", name, p
            printf "%-48s %8.2fx   (goal <= %sx)\n", "  ferry / skopeo", f / p, goal
        }
        BEGIN {
        printf "%-48s %8.2f s\n", "ferry pull", fp
        peer("skopeo sync --all --preserve-digests + tar", fp, sp, "0.1")
        printf "%-48s %8.2f s\n", "ferry push", fu
        peer("skopeo sync --src dir --dest docker", fu, su, "0.2")
        printf "%-48s %8.2f s\n", "ferry push again (target has everything)", fr
        peer("skopeo sync again", fr, sr, "0.1")
        printf "%-48s %8.1f MiB (goal <= 64 MiB)\n", "peak RSS of ferry pull", prss / 1024
        printf "%-48s %8.1f MiB (goal <= 64 MiB)\n", "peak RSS of ferry push", urss / 1024
        printf "%-48s %8.2f s   (goal <= 1 s)\n", "demo-sized push (" dt " tags, plain HTTP)", dm
    }'
    echo
    local cores
    cores=$(nproc)
    echo "the CPU floor: ferry and the registry share this machine's $cores cores, so a run takes at"
    echo "least (ferry's CPU + the registry's CPU) / $cores (medians):"
    local run name peer goal
    for run in "fpull pull $sp 0.1" "fpush push $su 0.2" "frepush push-again $sr 0.1" "demo demo-push 0 0"; do
        read -r name label peer goal <<<"$run"
        paste -d' ' <(cut -d' ' -f1 "$work/r.$name" | median) \
            <(cut -d' ' -f3 "$work/r.$name" | median) <(cut -d' ' -f4 "$work/r.$name" | median) |
            awk -v n="$label" -v c="$cores" -v p="$peer" -v g="$goal" '{
                floor = ($2 + $3) / c
                printf "  %-11s ferry %6.2f s CPU, registry %6.2f s CPU: floor %6.2f s; took %6.2f s (%.2fx the floor)",
                    n, $2, $3, floor, $1, $1 / floor
                if (p > 0) printf "; goal %.1fx skopeo = %.2f s, %.2fx the floor", g, g * p, g * p / floor
                printf "\n" }'
    done
    if [ -n "${FERRY_BASELINE_BIN:-}" ]; then
        local bp bu br bd
        bp=$(cut -d' ' -f1 "$work/r.bpull" | median)
        bu=$(cut -d' ' -f1 "$work/r.bpush" | median)
        br=$(cut -d' ' -f1 "$work/r.brepush" | median)
        bd=$(cut -d' ' -f1 "$work/r.bdemo" | median)
        awk -v fp="$fp" -v fu="$fu" -v fr="$fr" -v dm="$dm" -v bp="$bp" -v bu="$bu" -v br="$br" \
            -v bd="$bd" 'BEGIN {
            printf "%-48s %8.2f s   this build %.2fx\n", "baseline ferry pull", bp, fp / bp
            printf "%-48s %8.2f s   this build %.2fx\n", "baseline ferry push", bu, fu / bu
            printf "%-48s %8.2f s   this build %.2fx\n", "baseline ferry push again", br, fr / br
            printf "%-48s %8.2f s   this build %.2fx\n", "baseline demo-sized push", bd, dm / bd
        }'
    fi
    echo
    echo "requests per run (last round), from the registries' access logs:"
    awk -v a="$qfp" -v m="$min_pull" -v s="$qsp" 'BEGIN {
        printf "%-48s %8d = %.2fx the minimum %d (goal <= 1.1x); skopeo %d\n", "  ferry pull", a, a / m, m, s }'
    awk -v a="$qfu" -v m="$min_push" -v s="$qsu" -v rb="$repo_blobs" 'BEGIN {
        printf "%-48s %8d = %.2fx the minimum %d (goal <= 1.1x); skopeo %d\n", "  ferry push", a, a / m, m, s
        printf "%-48s %8s   %.2fx the minimum with POST + PUT uploads (%d)\n", "", "", a / (m + rb), m + rb }'
    awk -v a="$qfr" -v m="$min_repush" -v s="$qsr" 'BEGIN {
        printf "%-48s %8d = %.2fx the minimum %d (goal <= 1.1x); skopeo %d\n", "  ferry push again", a, a / m, m, s }'
    local q
    for q in fpull spull fpush spush frepush srepush; do
        [ -f "$work/q.$q" ] || continue
        printf '  %-8s %s\n' "$q" "$(grep -v '^total' "$work/q.$q" | tr '\n' ',' | sed 's/,$//; s/,/, /g')"
    done
    echo
    echo "when the registry served ferry's requests (last round; seconds from the first request;"
    echo "busy: the sum of the registry's own durations; at once: most requests in flight):"
    for q in fpull fpush frepush; do
        echo "  $q"
        sed 's/^/    /' "$work/q.$q.phases"
    done
}

case $what in
pull) bench_pull ;;
push) bench_push ;;
serve) bench_serve ;;
scale) bench_scale ;;
*)
    echo "usage: scripts/bench.sh pull|push|serve [SIZE_MIB] [ROUNDS] | scale [N] [ROUNDS]" >&2
    exit 2
    ;;
esac
