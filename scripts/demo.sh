#!/usr/bin/env bash
# ferry doing its job, end to end on 127.0.0.1: a source registry seeded with the sample
# distribution (testdata/distribution.toml) stands for the vendor's registry; `ferry pull` makes
# a chunked bundle with GOST sums on the "connected host"; the bundle is checked the way an
# officer at a checkpoint would (ferry verify, sha256sum -c, rhash -c); `ferry push` fills a
# target registry with TLS and basic auth in the "closed network"; skopeo, not ferry, confirms
# that every tag arrived byte for byte. Everything it starts is stopped at the end; run it again
# as often as you like.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/prelude.sh" demo --bin ferry

seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
now() { date +%s.%N; }
step() { printf '\n== %s ==\n' "$*"; }

step "two registries on 127.0.0.1"
start_registry source
source_reg=$REGISTRY
started_registries+=("$work/target")
target_env=$(scripts/dev-registry.sh start tls-basic "$work/target")
target_reg=$(sed -n 's/^FERRY_TEST_REGISTRY=//p' <<<"$target_env")
target_user=$(sed -n 's/^FERRY_TEST_USER=//p' <<<"$target_env")
target_password=$(sed -n 's/^FERRY_TEST_PASSWORD=//p' <<<"$target_env")
target_ca=$(sed -n 's/^FERRY_TEST_CA=//p' <<<"$target_env")
target_certs=$(sed -n 's/^FERRY_TEST_CERT_DIR=//p' <<<"$target_env")
echo "source (plain HTTP): $source_reg    target (TLS + basic auth): $target_reg"
src=$(scripts/seed-source.sh "$source_reg" sample/ee | sed -n 's/^FERRY_SOURCE=//p')
echo "seeded the sample distribution at $src"

bundle="$work/bundle"
step "ferry pull: the connected host writes the bundle"
start=$(now)
"$ferry" pull "$bundle" --source "$src" --insecure -c 100KB --gost-digest
pull_time=$(seconds "$start" "$(now)")
echo
ls "$bundle" | head -n 8
echo "... $(ls "$bundle" | wc -l) files"

step "ferry ls: what the bundle holds"
"$ferry" ls "$bundle" | head -n 12
echo "... $("$ferry" ls --json "$bundle" | grep -c '"tag"') tags"

step "at the checkpoint: ferry verify, then sha256sum and rhash without ferry"
"$ferry" verify --gost "$bundle"
(cd "$bundle" && sha256sum --quiet -c SHA256SUMS && echo "sha256sum -c SHA256SUMS: all OK")
(cd "$bundle" && rhash -c --skip-ok GOSTSUMS | tail -n 1)

step "ferry push: the closed network receives it (CA from SSL_CERT_FILE, login from the environment)"
start=$(now)
SSL_CERT_FILE=$target_ca FERRY_REGISTRY_LOGIN=$target_user FERRY_REGISTRY_PASSWORD=$target_password \
    "$ferry" push "$bundle" "$target_reg/mirror/ee" --receipt "$work/receipt.json"
push_time=$(seconds "$start" "$(now)")

step "skopeo checks every tag at the target against the source"
checked=0
failed=0
while IFS='|' read -r path tag; do
    repo="mirror/ee${path:+/$path}"
    from="sample/ee${path:+/$path}"
    if [ ${#tag} -eq 64 ]; then from_ref="$from@sha256:$tag"; else from_ref="$from:$tag"; fi
    want=$(skopeo inspect --raw --tls-verify=false "docker://$source_reg/$from_ref" | sha256sum | cut -c1-64)
    got=$(skopeo inspect --raw --cert-dir "$target_certs" --creds "$target_user:$target_password" \
        "docker://$target_reg/$repo:$tag" | sha256sum | cut -c1-64)
    if [ "$want" = "$got" ]; then
        checked=$((checked + 1))
    else
        echo "DIFFERS: $repo:$tag ($got, source $want)" >&2
        failed=$((failed + 1))
    fi
done < <("$ferry" ls --json "$bundle" | python3 -c '
import json, sys
for image in json.load(sys.stdin):
    print(image["path"] + "|" + image["tag"])')
echo "skopeo: $checked tags at the target have the source's exact manifest, $failed differ"

step "summary"
bytes=$(du -cb "$bundle"/*.chunk | tail -n 1 | cut -f1)
awk -v t="$checked" -v b="$bytes" -v p="$pull_time" -v q="$push_time" 'BEGIN {
    printf "tags: %d   bundle: %.1f MB   pull: %.1f s   push: %.1f s\n", t, b / 1e6, p, q
}'
[ "$failed" -eq 0 ] && echo "demo: OK"
exit "$failed"
