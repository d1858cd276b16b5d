#!/usr/bin/env bash
# Builds what an operator carries into the closed network: a statically linked ferry binary
# (glibc linked in with +crt-static, rustls for TLS: it needs no library on the target), its man
# page and shell completions, a .deb (cargo-deb), and SHA256SUMS over all of them. Then checks
# the binary the way it will be used: `ldd` must call it static, and with an empty environment it
# must print its version and verify a bundle. With --debootstrap it also runs inside a bare
# Debian root made by debootstrap (downloads ~100 MB of packages; needs root).
#
#   scripts/package.sh [--debootstrap]      (everything lands in target/package)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=target/package
bare=no
[ "${1:-}" = --debootstrap ] && bare=yes
triple=x86_64-unknown-linux-gnu
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

echo "building a static ferry $version for $triple..."
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$triple" -q
bin=target/$triple/release/ferry
rm -rf "$out"
mkdir -p "$out"
name=ferry-$version-x86_64-linux
cp "$bin" "$out/$name"
"$out/$name" manpage >"$out/ferry.1"
for shell in bash zsh fish; do
    "$out/$name" completions "$shell" >"$out/ferry.$shell"
done

if ! command -v cargo-deb >/dev/null; then
    echo "installing cargo-deb (once)..."
    cargo install cargo-deb --locked -q
fi
RUSTFLAGS="-C target-feature=+crt-static" cargo deb --no-build --target "$triple" -q \
    --output "$out/ferry_${version}_amd64.deb" >/dev/null
(cd "$out" && sha256sum -- * >SHA256SUMS)

echo
echo "checking $out/$name"
linkage=$(ldd "$out/$name" 2>&1 || true)
case $linkage in
*"not a dynamic executable"* | *"statically linked"*) echo "ldd: $linkage" ;;
*)
    echo "package: the binary is dynamically linked:" >&2
    echo "$linkage" >&2
    exit 1
    ;;
esac
env -i "$PWD/$out/$name" --version

# A small bundle to verify, packed from a generated layout.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 scripts/mkoci.py "$work/layout" v1 image >/dev/null
cargo run --release --locked -q --example pack-layouts -- "$work/bundle" --gost \
    "platform.tar=:$work/layout" >/dev/null
env -i "$PWD/$out/$name" --no-progress verify --gost "$work/bundle"
dpkg-deb --info "$out/ferry_${version}_amd64.deb" | sed -n 's/^ \(Package\|Version\|Architecture\): /  \1: /p'
dpkg-deb --contents "$out/ferry_${version}_amd64.deb" | awk '{ print "  " $NF }' | grep -v '/$'

if [ $bare = yes ]; then
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
    root=$work/root
    echo "debootstrap --variant=minbase bookworm (this downloads packages)..."
    debootstrap --variant=minbase bookworm "$root" >/dev/null
    cp "$out/$name" "$root/ferry"
    cp -r "$work/bundle" "$root/bundle"
    chroot "$root" /ferry --version
    chroot "$root" /ferry --no-progress verify --gost /bundle
fi
echo
echo "package: $(ls "$out" | tr '\n' ' ')"
