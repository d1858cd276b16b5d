# Sourced by scripts/demo.sh and scripts/bench-*.sh: installs what they need, builds ferry in
# release mode, makes a work directory and removes it (stopping the registries started in it)
# on exit. Nothing here runs when executed directly.
#
#   . scripts/prelude.sh NAME [cargo build args...]   -> $ferry, $work
#
# With FERRY_BIN set (the tests set it), that binary is used and nothing is built.
#   start_registry DIR_NAME                          -> REGISTRY (host:port of a plain registry)
#                                                       and REGISTRY_DIR (its directory)
#
# FERRY_REGISTRY_ROOT=DIR puts the registries' directories (their storage) under DIR instead of
# the work directory, e.g. /dev/shm to take the machine's disk out of the registry's way; they
# are removed on exit all the same.

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
registry_root=$work
[ -z "${FERRY_REGISTRY_ROOT:-}" ] || registry_root=$(mktemp -d "$FERRY_REGISTRY_ROOT/ferry-$1.XXXXXX")
started_registries=()
cleanup() {
    for dir in "${started_registries[@]}"; do
        scripts/dev-registry.sh stop "$dir" >/dev/null 2>&1 || true
    done
    rm -rf "$work" "$registry_root"
}
trap cleanup EXIT

# Starts a plain-HTTP registry in $work/NAME and sets REGISTRY to its host:port. (Not meant for
# a command substitution, whose subshell would lose the cleanup list.)
start_registry() {
    REGISTRY_DIR=$registry_root/$1
    started_registries+=("$REGISTRY_DIR")
    REGISTRY=$(scripts/dev-registry.sh start plain "$REGISTRY_DIR" | sed -n 's/^FERRY_TEST_REGISTRY=//p')
}
