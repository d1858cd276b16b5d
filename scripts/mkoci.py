#!/usr/bin/env python3
"""Writes small OCI image layouts for ferry's tests, with the standard library only.

    mkoci.py DIR TAG image    [--layers N] [--layer-size BYTES] [--seed S] [--compress none|gzip]
    mkoci.py DIR TAG index    [--platforms linux/amd64,linux/arm64/v8] [--layers N] ...
    mkoci.py DIR TAG artifact [--artifact-type T] [--config-type T] [--layer-type T] ...
    mkoci.py DIR TAG referrers --subject DIGEST:SIZE:MEDIATYPE [--artifact-types T1,T2]
                               [--annotation-bytes N]

`referrers` writes one small artifact per type whose `subject` is the given manifest, and an
index of them (the OCI referrers tag schema) tagged TAG; it prints the index digest, then one
line "DIGEST SIZE" per artifact.

Layers are real tar files holding one file of seeded pseudo-random bytes, so umoci and skopeo can
read them. The same arguments always give the same bytes. Several tags can share one DIR.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


class Layout:
    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(root, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def blob(self, media_type, data: bytes, **extra):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.root, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        desc = {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
        desc.update(extra)
        return desc

    def tag(self, desc, tag):
        path = os.path.join(self.root, "index.json")
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        if os.path.exists(path):
            with open(path) as f:
                index = json.load(f)
        index["manifests"] = [
            m
            for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag
        ]
        entry = dict(desc)
        entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        index["manifests"].append(entry)
        with open(path, "w") as f:
            json.dump(index, f, indent=2)


def canonical(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def random_bytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n)) if n < 4096 else rng.randbytes(n)


def layer_tar(rng, index, size):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = random_bytes(rng, size)
        info = tarfile.TarInfo(f"data/layer-{index}.bin")
        info.size = len(data)
        info.mode = 0o644
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_image(layout, rng, args, os_name="linux", arch="amd64", variant=None):
    layers, diff_ids = [], []
    for i in range(args.layers):
        raw = layer_tar(rng, i, args.layer_size)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        if args.compress == "gzip":
            data = gzip.compress(raw, mtime=0)
            layers.append(layout.blob("application/vnd.oci.image.layer.v1.tar+gzip", data))
        else:
            layers.append(layout.blob("application/vnd.oci.image.layer.v1.tar", raw))
    config = {
        "architecture": arch,
        "os": os_name,
        "config": {"Cmd": ["/bin/sh"], "Labels": {"org.ferry.test.seed": str(args.seed)}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if variant:
        config["variant"] = variant
    config_desc = layout.blob(OCI_CONFIG, canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc,
        "layers": layers,
    }
    return layout.blob(OCI_MANIFEST, canonical(manifest))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir")
    p.add_argument("tag")
    p.add_argument("kind", choices=["image", "index", "artifact", "referrers"])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--layer-size", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--compress", choices=["none", "gzip"], default="gzip")
    p.add_argument("--platforms", default="linux/amd64,linux/arm64/v8")
    p.add_argument("--artifact-type", default="application/vnd.ferry.test.artifact.v1")
    p.add_argument("--config-type", default="application/vnd.ferry.test.config.v1+json")
    p.add_argument("--layer-type", default="application/vnd.ferry.test.db.layer.v1.tar+gzip")
    p.add_argument("--subject", help="DIGEST:SIZE:MEDIATYPE of the manifest referred to")
    p.add_argument("--annotation-bytes", type=int, default=0,
                   help="referrers: pad each artifact's annotations with this many bytes")
    p.add_argument("--artifact-types", default="application/vnd.dev.cosign.artifact.sig.v1+json,"
                   "application/spdx+json")
    args = p.parse_args()

    rng = random.Random(args.seed)
    layout = Layout(args.dir)
    if args.kind == "image":
        desc = write_image(layout, rng, args)
    elif args.kind == "index":
        children = []
        for spec in args.platforms.split(","):
            parts = spec.split("/")
            os_name, arch = parts[0], parts[1]
            variant = parts[2] if len(parts) > 2 else None
            child = write_image(layout, rng, args, os_name, arch, variant)
            platform = {"architecture": arch, "os": os_name}
            if variant:
                platform["variant"] = variant
            child["platform"] = platform
            children.append(child)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        desc = layout.blob(OCI_INDEX, canonical(index))
    elif args.kind == "referrers":
        algorithm, rest = args.subject.split(":", 1)
        hex_digest, size, media_type = rest.split(":", 2)
        subject = {"mediaType": media_type, "digest": f"{algorithm}:{hex_digest}",
                   "size": int(size)}
        empty = layout.blob("application/vnd.oci.empty.v1+json", b"{}")
        children = []
        for i, artifact_type in enumerate(args.artifact_types.split(",")):
            payload = layout.blob("application/vnd.ferry.test.payload",
                                  f"{artifact_type} of {subject['digest']} ({args.seed})\n".encode())
            manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "artifactType": artifact_type, "config": empty, "layers": [payload],
                        "subject": subject,
                        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}}
            if args.annotation_bytes:
                manifest["annotations"]["org.ferry.test.padding"] = "x" * args.annotation_bytes
            children.append(layout.blob(OCI_MANIFEST, canonical(manifest),
                                        artifactType=artifact_type,
                                        annotations=manifest["annotations"]))
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        desc = layout.blob(OCI_INDEX, canonical(index))
        layout.tag(desc, args.tag)
        print(desc["digest"])
        for child in children:
            print(child["digest"], child["size"])
        return
    else:
        config_desc = layout.blob(args.config_type, canonical({"ferry-test": args.seed}))
        layers = []
        for i in range(args.layers):
            layers.append(
                layout.blob(
                    args.layer_type,
                    random_bytes(rng, args.layer_size),
                    annotations={"org.opencontainers.image.title": f"db-{i}.tar.gz"},
                )
            )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": args.artifact_type,
            "config": config_desc,
            "layers": layers,
        }
        desc = layout.blob(OCI_MANIFEST, canonical(manifest), artifactType=args.artifact_type)
    layout.tag(desc, args.tag)
    print(desc["digest"])


if __name__ == "__main__":
    main()
