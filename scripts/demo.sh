#!/usr/bin/env bash
# What ferry does today, end to end on 127.0.0.1: seed a source registry with the sample
# distribution (skopeo), print the pull plan (`ferry pull --dry-run`), carry a few of its images
# into OCI layouts (`ferry copy`), pack them into a chunked bundle with GOST sums, list and
# verify the bundle (`ferry ls`, `ferry verify`, plus sha256sum and rhash), then push the
# layouts into a target registry and let skopeo confirm every manifest arrived byte for byte.
# (`ferry pull` and `ferry push` proper come next; this demo then shrinks to those two.)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/prelude.sh" demo --bin ferry --example pack-layouts
pack=$PWD/target/release/examples/pack-layouts
start_registry source
source_reg=$REGISTRY
start_registry target
target_reg=$REGISTRY
echo "source registry: $source_reg   target registry: $target_reg"
src=$(scripts/seed-source.sh "$source_reg" sample/ee | sed -n 's/^FERRY_SOURCE=//p')
echo "seeded the sample distribution (testdata/distribution.toml) at $src"

echo
echo "== ferry pull --dry-run: what a pull would take =="
"$ferry" pull "$work/bundle" --source "$src" --insecure --dry-run -c 100KB --no-progress

# The images carried here: (path in the bundle, tag).
images="|stable install|stable release-channel|stable security/trivy-db|2 modules/console|v1.2.0"
echo
echo "== ferry copy: source -> OCI layouts (the connected side) =="
specs=()
for item in $images; do
    path=${item%%|*} tag=${item##*|}
    archive=platform.tar
    case $path in security/*) archive=security.tar ;; modules/*) archive=module-console.tar ;; esac
    "$ferry" copy --insecure -q "$src${path:+/$path}:$tag" "oci:$work/layouts/${path:-root}:$tag"
    specs+=("$archive=$path:$work/layouts/${path:-root}")
done
echo "copied $(echo $images | wc -w) tags"

echo
echo "== pack into a bundle: 8 kB chunks, GOST sums (examples/pack-layouts.rs) =="
"$pack" "$work/bundle" --chunk-size 8kB --gost "${specs[@]}"
ls "$work/bundle" | head -n 12
echo "... $(ls "$work/bundle" | wc -l) files"

echo
echo "== ferry ls / ferry verify =="
"$ferry" ls "$work/bundle"
"$ferry" verify --no-progress --gost "$work/bundle"
(cd "$work/bundle" && sha256sum --quiet -c SHA256SUMS && rhash -c --skip-ok GOSTSUMS | tail -n 1)

echo
echo "== ferry copy: OCI layouts -> target registry (the closed side), checked by skopeo =="
status=0
for item in $images; do
    path=${item%%|*} tag=${item##*|}
    "$ferry" copy --insecure -q "oci:$work/layouts/${path:-root}:$tag" "$target_reg/mirror${path:+/$path}:$tag"
    want=$(skopeo inspect --raw --tls-verify=false "docker://$src${path:+/$path}:$tag" | sha256sum | cut -c1-64)
    got=$(skopeo inspect --raw --tls-verify=false "docker://$target_reg/mirror${path:+/$path}:$tag" | sha256sum | cut -c1-64)
    if [ "$want" = "$got" ]; then
        echo "skopeo: mirror${path:+/$path}:$tag has the source's manifest, sha256:$got"
    else
        echo "skopeo: mirror${path:+/$path}:$tag DIFFERS from the source ($got vs $want)" >&2
        status=1
    fi
done
exit $status
