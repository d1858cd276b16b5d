#!/usr/bin/env bash
# A short demonstration of what ferry does today: start two registries on 127.0.0.1, seed the
# first with sample images (a single image, a two-platform index, an artifact) using skopeo,
# then copy each with ferry into an OCI layout and from the layout into the second registry,
# and let skopeo confirm that every manifest arrived byte for byte.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/dev-registry.sh install
cargo build --release --locked -q
ferry=$PWD/target/release/ferry
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")
cleanup() {
    scripts/dev-registry.sh stop "$work/source" >/dev/null 2>&1 || true
    scripts/dev-registry.sh stop "$work/target" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

source_reg=$(scripts/dev-registry.sh start plain "$work/source" | sed -n 's/^FERRY_TEST_REGISTRY=//p')
target_reg=$(scripts/dev-registry.sh start plain "$work/target" | sed -n 's/^FERRY_TEST_REGISTRY=//p')
echo "source registry: $source_reg   target registry: $target_reg"

python3 scripts/mkoci.py "$work/sample" app image --seed 1 >/dev/null
python3 scripts/mkoci.py "$work/sample" multiarch index --seed 2 >/dev/null
python3 scripts/mkoci.py "$work/sample" trivy-db artifact --seed 3 >/dev/null
for tag in app multiarch trivy-db; do
    skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
        "oci:$work/sample:$tag" "docker://$source_reg/demo/$tag:v1"
done
echo "seeded demo/app, demo/multiarch and demo/trivy-db with skopeo"

status=0
for tag in app multiarch trivy-db; do
    echo
    echo "== $tag: registry -> OCI layout (the connected side) =="
    "$ferry" copy --insecure --no-progress "$source_reg/demo/$tag:v1" "oci:$work/carry/$tag:v1"
    echo "== $tag: OCI layout -> registry (the closed side) =="
    "$ferry" copy --insecure --no-progress "oci:$work/carry/$tag:v1" "$target_reg/mirror/$tag:v1"
    want=$(skopeo inspect --raw --tls-verify=false "docker://$source_reg/demo/$tag:v1" | sha256sum | cut -c1-64)
    got=$(skopeo inspect --raw --tls-verify=false "docker://$target_reg/mirror/$tag:v1" | sha256sum | cut -c1-64)
    if [ "$want" = "$got" ]; then
        echo "skopeo: mirror/$tag:v1 has the source's manifest, sha256:$got"
    else
        echo "skopeo: mirror/$tag:v1 DIFFERS from the source ($got vs $want)" >&2
        status=1
    fi
done
exit $status
