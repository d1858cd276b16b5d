#!/usr/bin/env bash
# Installs what ferry's tests need on Debian 12 (the registry, skopeo, rhash, umoci, htpasswd)
# and runs every check: formatting, clippy, unit and integration tests. Each integration test
# starts its own registries on 127.0.0.1 and stops them when done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/dev-registry.sh install

# Test traffic stays on loopback even where a proxy is configured.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
if command -v cargo-nextest >/dev/null 2>&1; then
    # Two cores: registries, skopeo and ferry share them, so keep parallelism modest.
    cargo nextest run --locked --test-threads 4 --no-fail-fast
else
    cargo test --locked -- --test-threads 4
fi
