#!/usr/bin/env bash
# Seeds a registry with the sample distribution (testdata/distribution.toml): writes its OCI
# layouts with scripts/gen-distribution.py, pushes every image with
# `skopeo copy --all --preserve-digests` (channel tags last), and prints the source root.
#
#   scripts/seed-source.sh REGISTRY [ROOT] [--suspend CHANNEL]...
#
# REGISTRY is host:port of a plain-HTTP registry (scripts/dev-registry.sh start plain DIR);
# ROOT defaults to sample/ee. FERRY_DISTRIBUTION names another description (tests add a
# release that way; FERRY_SEED_MODULES_PATH moves the modules, see below). Prints
# FERRY_SOURCE=REGISTRY/ROOT on stdout.
#
# FERRY_SEED_SCALE=N seeds the scale profile instead (gen-distribution.py --scale N; N component
# images) through scripts/seed-http.py, the registry's HTTP API from a pool of threads, not one
# skopeo per image. FERRY_SEED_BIG_MIB sets its big layers' size (default 100: 50, 100, 200 MiB).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
registry=${1:?usage: seed-source.sh REGISTRY [ROOT] [--suspend CHANNEL]...}
shift
root=sample/ee
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
    root=$1
    shift
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-seed.XXXXXX")
trap 'rm -rf "$work"' EXIT
scale=()
[ -z "${FERRY_SEED_SCALE:-}" ] || scale=(--scale "$FERRY_SEED_SCALE" --big-mib "${FERRY_SEED_BIG_MIB:-100}")
python3 scripts/gen-distribution.py "${FERRY_DISTRIBUTION:-testdata/distribution.toml}" "$work" "$@" ${scale[@]+"${scale[@]}"}
# FERRY_SEED_MODULES_PATH=P puts the modules under ROOT/P instead of ROOT/modules, as some
# sources lay them out (pull finds them with --modules-path-suffix /P).
if [ -n "${FERRY_SEED_MODULES_PATH:-}" ]; then
    awk -F '\t' -v OFS='\t' -v to="$FERRY_SEED_MODULES_PATH" \
        '{ if ($3 == "modules" || index($3, "modules/") == 1) $3 = to substr($3, 8); print }' \
        "$work/push-list.tsv" >"$work/push-list.moved" && mv "$work/push-list.moved" "$work/push-list.tsv"
fi

if [ -n "${FERRY_SEED_SCALE:-}" ]; then
    python3 scripts/seed-http.py "$work" "$registry/$root"
    echo "FERRY_SOURCE=$registry/$root"
    exit 0
fi

push() {
    local layout=$1 tag=$2 repo=$3 dest=$4 target
    [ "$repo" = . ] && repo=
    target="$registry/$root${repo:+/$repo}$dest"
    skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
        "oci:$work/$layout:$tag" "docker://$target" ||
        { echo "seed-source: pushing $target failed" >&2; return 1; }
}
export -f push
export work registry root
# Everything but channel tags in parallel, then channel tags in order, so a channel never
# points at something missing even while seeding. Images listed twice (extra images shared by
# module versions) are pushed once: two skopeo pushing the same blobs at once race in the
# registry ("blob unknown" on the manifest).
sort -u "$work/push-list.tsv" | grep -v -P '\t:(alpha|beta|early-access|stable|rock-solid|lts)$' |
    xargs -P 4 -L 1 -d '\n' bash -c 'IFS=$'"'"'\t'"'"' read -r l t r d <<<"$0"; push "$l" "$t" "$r" "$d"'
grep -P '\t:(alpha|beta|early-access|stable|rock-solid|lts)$' "$work/push-list.tsv" |
    while IFS=$'\t' read -r l t r d; do push "$l" "$t" "$r" "$d"; done
echo "FERRY_SOURCE=$registry/$root"
