"""The scale profile of the sample distribution (issue 21), used by gen-distribution.py --scale N.

A real platform release is thousands of small component images pinned by digest, sharing base
layers, a few big ones, some published for two platforms. This module makes N such component
images, deterministically, and spreads them over the platform's releases (80%) and generated
modules (20%):

- a component is a name; its first release gets an image, each later release changes a fifth of
  the names (a new image), the others keep their digest: N counts distinct images;
- each image has 1-3 uncompressed tar layers: optionally one of six shared base layers
  (64 KiB-2 MiB) plus one or two of its own, 1 KiB-MAX_KIB with most of them small (1 KiB x
  (MAX_KIB)^(u^3), u uniform: median ~3 KiB, mean ~90 KiB at 2 MiB);
- one platform component in ten is a two-platform index (amd64, arm64/v8);
- BIG platform components have one big layer each, of BIG_MIB/2, BIG_MIB and 2 x BIG_MIB
  (cycling), written streaming; they never change between releases.

Layer bytes come from random.Random seeded by strings, so the same arguments give the same bytes
(for one Python version). Layers are tars of random bytes: ferry and skopeo only move them.
"""

import hashlib
import io
import os
import random
import tarfile

from mkoci import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, canonical

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
BASE_SIZES = (64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20)
CHANGE_FRACTION = 0.2
MODULE_SHARE = 0.2
IMAGES_PER_MODULE = 40


def allocate(total, releases, change_fraction):
    """Names and changes per later release so that the distinct images add up to `total`:
    returns (names, [changed names at release 2, 3, ...])."""
    if releases <= 1:
        return total, []
    names = max(1, round(total / (1 + (releases - 1) * change_fraction)))
    names = min(names, total)
    left = total - names
    later = releases - 1
    changes = [left // later + (1 if i < left % later else 0) for i in range(later)]
    # More changes than names cannot be: fold the excess back into new names.
    while any(c > names for c in changes):
        excess = sum(max(0, c - names) for c in changes)
        changes = [min(c, names) for c in changes]
        names += excess
    return names, changes


def tar_header(name, size):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def tar_padding(size):
    return b"\0" * ((-size) % 512) + b"\0" * 1024


class Blobs:
    """Writes blobs into a layout's blobs/sha256 once per digest."""

    def __init__(self):
        self.seen = set()

    def put(self, layout, media_type, data):
        digest = hashlib.sha256(data).hexdigest()
        key = (layout.root, digest)
        if key not in self.seen:
            self.seen.add(key)
            with open(os.path.join(layout.root, "blobs", "sha256", digest), "wb") as f:
                f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    def put_stream(self, layout, media_type, seed, size):
        """A tar layer of `size` random bytes, written and hashed 4 MiB at a time."""
        rng = random.Random(seed)
        blobs = os.path.join(layout.root, "blobs", "sha256")
        tmp = os.path.join(blobs, ".incoming")
        h = hashlib.sha256()
        total = 0
        with open(tmp, "wb") as f:
            def out(data):
                nonlocal total
                h.update(data)
                f.write(data)
                total += len(data)
            out(tar_header("data/big.bin", size))
            left = size
            while left:
                n = min(left, 4 << 20)
                out(rng.randbytes(n))
                left -= n
            out(tar_padding(size))
        os.rename(tmp, os.path.join(blobs, h.hexdigest()))
        return {"mediaType": media_type, "digest": "sha256:" + h.hexdigest(), "size": total}


class Scale:
    def __init__(self, n, big, big_mib, max_kib):
        if n < 10:
            raise SystemExit("--scale needs at least 10 images")
        self.n = n
        self.big = min(big, n)
        self.big_mib = big_mib
        self.max_kib = max_kib
        self.blobs = Blobs()
        self.bases = {}
        self.images = 0

    def small_layer(self, rng, name):
        u = rng.random()
        size = int(1024 * (self.max_kib ** (u ** 3)))
        raw = tar_header(name, size) + rng.randbytes(size) + tar_padding(size)
        return raw

    def base_layer(self, layout, i):
        key = (layout.root, i)
        if key not in self.bases:
            size = BASE_SIZES[i % len(BASE_SIZES)]
            rng = random.Random(f"base {i}")
            raw = tar_header(f"base/{i}.bin", size) + rng.randbytes(size) + tar_padding(size)
            self.bases[key] = self.blobs.put(layout, LAYER_TAR, raw)
        return self.bases[key]

    def single(self, layout, seed, arch="amd64", variant=None, big_size=None):
        rng = random.Random(seed)
        layers = []
        if big_size is not None:
            layers.append(self.blobs.put_stream(layout, LAYER_TAR, seed + " big", big_size))
        else:
            if rng.random() < 0.75:
                layers.append(self.base_layer(layout, rng.randrange(len(BASE_SIZES))))
            for i in range(rng.randint(1, 2)):
                layers.append(self.blobs.put(layout, LAYER_TAR,
                                             self.small_layer(rng, f"app/{i}.bin")))
        config = {"architecture": arch, "os": "linux",
                  "config": {"Labels": {"org.ferry.scale": seed}},
                  "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}
        if variant:
            config["variant"] = variant
        config_desc = self.blobs.put(layout, OCI_CONFIG, canonical(config))
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                    "layers": layers}
        return self.blobs.put(layout, OCI_MANIFEST, canonical(manifest))

    def component(self, layout, seed, multiarch=False, big_size=None):
        self.images += 1
        if not multiarch:
            return self.single(layout, seed, big_size=big_size)
        children = []
        for arch, variant in (("amd64", None), ("arm64", "v8")):
            child = self.single(layout, f"{seed} {arch}", arch, variant)
            child["platform"] = {"architecture": arch, "os": "linux"}
            if variant:
                child["platform"]["variant"] = variant
            children.append(child)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        return self.blobs.put(layout, OCI_INDEX, canonical(index))

    def big_size(self, i):
        factor = (0.5, 1, 2)[i % 3]
        return int(self.big_mib * factor * (1 << 20))

    def lineage(self, layout, prefix, total, releases, push, first_big=0):
        """Component digests per release ({name: digest} each), `total` distinct images.
        `push(desc)` is called once per new image. The first `first_big` names are big."""
        names, changes = allocate(total, len(releases), CHANGE_FRACTION)
        current = {}
        result = []
        for r, release in enumerate(releases):
            if r == 0:
                changed = range(names)
            else:
                # Big components never change: only the small ones are candidates.
                pool = list(range(first_big, names)) or list(range(names))
                rng = random.Random(f"{prefix} changes {release}")
                changed = sorted(rng.sample(pool, min(changes[r - 1], len(pool))))
            for i in changed:
                name = f"{prefix}-{i:05d}"
                big = self.big_size(i) if i < first_big else None
                desc = self.component(layout, f"{name} {release}", multiarch=(i % 10 == 9),
                                      big_size=big)
                push(desc)
                current[name] = desc["digest"]
            result.append(dict(current))
        return result

    def split(self):
        """(platform images, [images per generated module])."""
        modules_total = int(self.n * MODULE_SHARE)
        count = max(1, round(modules_total / IMAGES_PER_MODULE)) if modules_total else 0
        per = [modules_total // count + (1 if i < modules_total % count else 0)
               for i in range(count)] if count else []
        return self.n - modules_total, per


def version_key(v):
    return tuple(int(x) for x in v.lstrip("v").split("."))
