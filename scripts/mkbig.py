#!/usr/bin/env python3
"""Writes an OCI image layout with big random layers, fast (os.urandom, hashlib), for benchmarks.

    mkbig.py DIR TAG SIZE_MIB [--layers N]

The image gets N layers (default 1) sharing SIZE_MIB MiB. An existing layout in DIR keeps its
other tags. Layers are random bytes, not tars: benchmarks only move them.
"""
import argparse
import hashlib
import json
import os


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("tag")
    p.add_argument("size_mib", type=int)
    p.add_argument("--layers", type=int, default=1)
    args = p.parse_args()
    blobs = os.path.join(args.dir, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    layers = []
    per_layer = args.size_mib * 1024 * 1024 // args.layers
    for _ in range(args.layers):
        tmp = os.path.join(blobs, ".incoming")
        h = hashlib.sha256()
        with open(tmp, "wb") as f:
            left = per_layer
            while left:
                chunk = os.urandom(min(left, 4 << 20))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        os.rename(tmp, os.path.join(blobs, h.hexdigest()))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": "sha256:" + h.hexdigest(), "size": per_layer})
    config = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [l["digest"] for l in layers]}}).encode(),
        "application/vnd.oci.image.config.v1+json")
    manifest = put(json.dumps({"schemaVersion": 2,
                               "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": config, "layers": layers}).encode(),
                   "application/vnd.oci.image.manifest.v1+json")
    manifest["annotations"] = {"org.opencontainers.image.ref.name": args.tag}
    index_path = os.path.join(args.dir, "index.json")
    index = {"schemaVersion": 2, "manifests": []}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != args.tag]
    index["manifests"].append(manifest)
    with open(index_path, "w") as f:
        json.dump(index, f)
    with open(os.path.join(args.dir, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')


if __name__ == "__main__":
    main()
