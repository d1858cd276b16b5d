#!/usr/bin/env python3
"""Writes the sample distribution of testdata/distribution.toml as OCI layouts, with the standard
library only, and a push list for scripts/seed-source.sh.

    gen-distribution.py DESCRIPTION OUT_DIR [--suspend CHANNEL]...
                        [--scale N [--big K] [--big-mib M] [--max-layer-kib S]]

OUT_DIR gets one layout per source repository (OUT_DIR/layouts/<repo path>/) and push-list.tsv:
`<layout dir>\t<layout tag>\t<repo, "." for the root>\t<:tag or @digest>` per line, in push order (components
first, channel tags last). The same description always gives the same bytes.

--scale N writes the scale profile instead (scripts/scale_profile.py): N component images pinned
by digest, 80% of them over the platform releases the channels point to (the other releases are
left out) and 20% in generated modules `scale-NN` (two versions, five channels), plus the
description's own modules and security databases. --big K (default 3) of the platform's
components carry one big layer of M/2, M or 2M MiB (--big-mib, default 100); small layers are
at most S KiB (--max-layer-kib, default 2048).
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkoci import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Layout, canonical  # noqa: E402
from scale_profile import Scale, version_key  # noqa: E402

CHANNEL_FILE = "version.json"


def layer_of(files):
    """A gzip tar layer holding `files` ({path: bytes}), deterministic."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(files):
            data = files[path]
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), "sha256:" + hashlib.sha256(raw).hexdigest()


def image(layout, files, arch="amd64", variant=None):
    data, diff_id = layer_of(files)
    layer = layout.blob("application/vnd.oci.image.layer.v1.tar+gzip", data)
    config = {"architecture": arch, "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    if variant:
        config["variant"] = variant
    config_desc = layout.blob(OCI_CONFIG, canonical(config))
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                "layers": [layer]}
    return layout.blob(OCI_MANIFEST, canonical(manifest))


def multiarch(layout, files):
    children = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        child = image(layout, dict(files, **{"arch": arch.encode()}), arch, variant)
        child["platform"] = {"architecture": arch, "os": "linux"}
        if variant:
            child["platform"]["variant"] = variant
        children.append(child)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    return layout.blob(OCI_INDEX, canonical(index))


def artifact(layout, seed, artifact_type, layer_type):
    config = layout.blob(artifact_type, canonical({"sample": seed}))
    payload = gzip.compress(("database " + seed + "\n").encode() * 64, mtime=0)
    layer = layout.blob(layer_type, payload,
                        annotations={"org.opencontainers.image.title": "db.tar.gz"})
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                "config": config, "layers": [layer]}
    return layout.blob(OCI_MANIFEST, canonical(manifest), artifactType=artifact_type)


class Writer:
    """Layouts by repository, their tags kept in memory and written by finish() (rewriting
    index.json at every tag would cost quadratic time with thousands of tags)."""

    def __init__(self, out):
        self.out = out
        self.layouts = {}
        self.tags = {}
        self.pushes = []

    def layout(self, repo):
        if repo not in self.layouts:
            self.layouts[repo] = Layout(os.path.join(self.out, "layouts", repo or "_root"))
        return self.layouts[repo]

    def push(self, repo, desc, tag=None):
        """Tags `desc` in the repo's layout and queues its push by tag, or by digest."""
        layout = self.layout(repo)
        layout_tag = tag if tag else "d-" + desc["digest"][7:23]
        tags = self.tags.setdefault(layout.root, {})
        tags.pop(layout_tag, None)
        entry = dict(desc)
        entry["annotations"] = {"org.opencontainers.image.ref.name": layout_tag}
        tags[layout_tag] = entry
        dest = ":" + tag if tag else "@" + desc["digest"]
        self.pushes.append((os.path.relpath(layout.root, self.out), layout_tag, repo or ".", dest))


    def finish(self):
        """Writes every layout's index.json (as mkoci.Layout.tag would) and push-list.tsv."""
        for root, tags in self.tags.items():
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(tags.values())}
            with open(os.path.join(root, "index.json"), "w") as f:
                json.dump(index, f, indent=2)
        with open(os.path.join(self.out, "push-list.tsv"), "w") as f:
            for row in self.pushes:
                f.write("\t".join(row) + "\n")


def channel_json(version, suspend=False):
    return canonical({"suspend": suspend, "version": version})


def scale_module(i, images):
    """A generated module of the scale profile: two versions, `images` component images."""
    return {"name": f"scale-{i:02d}", "versions": ["v1.0.0", "v1.1.0"], "components": [],
            "extra": {}, "scale_images": images,
            "channels": {"alpha": "v1.1.0", "beta": "v1.1.0", "early-access": "v1.1.0",
                         "stable": "v1.0.0", "rock-solid": "v1.0.0"}}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("description")
    p.add_argument("out")
    p.add_argument("--suspend", action="append", default=[],
                   help="mark this platform channel suspended")
    p.add_argument("--scale", type=int, metavar="N",
                   help="the scale profile: N component images pinned by digest")
    p.add_argument("--big", type=int, default=3, help="scale: big components (default 3)")
    p.add_argument("--big-mib", type=float, default=100,
                   help="scale: big layers are M/2, M and 2M MiB (default 100)")
    p.add_argument("--max-layer-kib", type=int, default=2048,
                   help="scale: largest small layer in KiB (default 2048)")
    args = p.parse_args()
    with open(args.description, "rb") as f:
        spec = tomllib.load(f)
    w = Writer(args.out)
    channel_tags = []

    platform = spec["platform"]
    versions = platform["versions"]
    scale = None
    if args.scale is not None:
        scale = Scale(args.scale, args.big, args.big_mib, args.max_layer_kib)
        platform_images, module_images = scale.split()
        # Only releases a pull takes: the ones the channels point to.
        versions = sorted(set(platform["channels"].values()), key=version_key)
        scale_digests = scale.lineage(w.layout(""), "component", platform_images, versions,
                                      lambda desc: w.push("", desc), first_big=scale.big)
        spec["modules"] = list(spec.get("modules", [])) + [
            scale_module(i, count) for i, count in enumerate(module_images)]
    by_version = {}
    for v, version in enumerate(versions):
        digests = {}
        for name in platform["components"] if scale is None else []:
            files = {"component": f"{name} {version}\n".encode()}
            maker = multiarch if name in platform.get("multiarch", []) else image
            desc = maker(w.layout(""), files)
            w.push("", desc)
            digests[name] = desc["digest"]
        if scale is not None:
            digests = scale_digests[v]
        candi = canonical({"sample": digests})
        by_version[version] = {
            "": image(w.layout(""), {"deckhouse/version": version.encode()}),
            "install": image(w.layout("install"), {
                "deckhouse/candi/images_digests.json": candi, "installer": version.encode()}),
            "install-standalone": image(w.layout("install-standalone"), {
                "standalone": version.encode()}),
        }
        for repo, desc in by_version[version].items():
            w.push(repo, desc, version)
        w.push("release-channel", image(w.layout("release-channel"), {
            CHANNEL_FILE: channel_json(version)}), version)
    for channel, version in platform["channels"].items():
        suspend = channel in args.suspend
        desc = image(w.layout("release-channel"), {CHANNEL_FILE: channel_json(version, suspend)})
        channel_tags.append(("release-channel", desc, channel))
        # Real sources also tag the platform images with each channel's name.
        for repo, version_desc in by_version[version].items():
            channel_tags.append((repo, version_desc, channel))

    for module in spec.get("modules", []):
        name = module["name"]
        base = f"modules/{name}"
        scaled = None
        if "scale_images" in module:
            scaled = scale.lineage(w.layout(base), name, module["scale_images"],
                                   module["versions"], lambda desc: w.push(base, desc))
        for v, version in enumerate(module["versions"]):
            digests = {}
            for component in module["components"]:
                desc = image(w.layout(base), {"component": f"{name}/{component} {version}\n".encode()})
                w.push(base, desc)
                digests[component] = desc["digest"]
            if scaled is not None:
                digests = scaled[v]
            extra = module.get("extra", {})
            for extra_name, extra_tag in sorted(extra.items()):
                repo = f"{base}/extra/{extra_name}"
                w.push(repo, image(w.layout(repo), {"extra": f"{extra_name} {extra_tag}\n".encode()}),
                       str(extra_tag))
            w.push(base, image(w.layout(base), {
                "images_digests.json": canonical(digests),
                "extra_images.json": canonical(extra),
                "module": f"{name} {version}\n".encode()}), version)
            w.push(f"{base}/release", image(w.layout(f"{base}/release"), {
                CHANNEL_FILE: canonical({"version": version})}), version)
        for channel, version in module["channels"].items():
            desc = image(w.layout(f"{base}/release"), {CHANNEL_FILE: canonical({"version": version})})
            channel_tags.append((f"{base}/release", desc, channel))
        w.push("modules", image(w.layout("modules"), {"catalog": name.encode()}), name)

    for db in spec.get("security", []):
        w.push(db["repo"], artifact(w.layout(db["repo"]), db["repo"], db["artifact_type"],
                                    db["layer_type"]), db["tag"])

    for repo, desc, tag in channel_tags:
        w.push(repo, desc, tag)
    w.finish()
    print(len(w.pushes), "images in", len(w.layouts), "repositories", file=sys.stderr)
    if scale is not None:
        print(f"scale profile: {scale.images} component images", file=sys.stderr)


if __name__ == "__main__":
    main()
