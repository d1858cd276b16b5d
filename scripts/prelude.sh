# Sourced by scripts/demo.sh and scripts/bench-*.sh: installs what they need, builds ferry in
# release mode, makes a work directory and removes it (stopping the registries started in it)
# on exit. Nothing here runs when executed directly.
#
#   . scripts/prelude.sh NAME [cargo build args...]   -> $ferry, $work
#
# With FERRY_BIN set (the tests set it), that binary is used and nothing is built.
#   start_registry DIR_NAME                          -> prints host:port of a plain registry

cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/dev-registry.sh install
if [ -n "${FERRY_BIN:-}" ]; then
    ferry=$FERRY_BIN
else
    cargo build --release --locked -q "${@:2}"
    ferry=${CARGO_TARGET_DIR:-$PWD/target}/release/ferry
fi
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-$1.XXXXXX")
started_registries=()
cleanup() {
    for dir in "${started_registries[@]}"; do
        scripts/dev-registry.sh stop "$dir" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# Starts a plain-HTTP registry in $work/NAME and sets REGISTRY to its host:port. (Not meant for
# a command substitution, whose subshell would lose the cleanup list.)
start_registry() {
    started_registries+=("$work/$1")
    REGISTRY=$(scripts/dev-registry.sh start plain "$work/$1" | sed -n 's/^FERRY_TEST_REGISTRY=//p')
}
