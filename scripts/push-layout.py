#!/usr/bin/env python3
"""Pushes one tag of an OCI layout to a plain-HTTP registry byte for byte, with the standard
library only: every blob (monolithic upload), then every manifest by digest, children first,
then the tag.

    push-layout.py LAYOUT TAG HOST:PORT/REPO[:DEST_TAG] [--children-only]

With --children-only the tagged index itself is not pushed, only what it lists (by digest):
referrers for a registry that indexes them itself.

The tests seed referrers indexes with it: skopeo 1.9 re-serialises an index whose entries carry
`artifactType` (a field newer than its image-spec) and then refuses to push it with
--preserve-digests.
"""

import json
import os
import sys
import urllib.request

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as response:
        return response.status, dict(response.headers)


def main():
    layout, tag, dest = sys.argv[1:4]
    children_only = "--children-only" in sys.argv[4:]
    host, _, path = dest.partition("/")
    repo, _, dest_tag = path.partition(":")
    dest_tag = dest_tag or tag
    base = f"http://{host}/v2/{repo}"

    def read(digest):
        with open(os.path.join(layout, "blobs", *digest.split(":")), "rb") as f:
            return f.read()

    with open(os.path.join(layout, "index.json")) as f:
        entries = json.load(f)["manifests"]
    root = next(e for e in entries
                if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)

    def push(desc, reference):
        data = read(desc["digest"])
        document = json.loads(data)
        for child in document.get("manifests", []):
            push(child, child["digest"])
        for blob in [document.get("config")] + document.get("layers", []):
            if blob is None:
                continue
            status, headers = request("POST", f"{base}/blobs/uploads/")
            location = headers["Location"]
            if location.startswith("/"):
                location = f"http://{host}{location}"
            separator = "&" if "?" in location else "?"
            request("PUT", f"{location}{separator}digest={blob['digest']}", read(blob["digest"]),
                    {"Content-Type": "application/octet-stream"})
        request("PUT", f"{base}/manifests/{reference}", data, {"Content-Type": desc["mediaType"]})

    if children_only:
        for child in json.loads(read(root["digest"]))["manifests"]:
            push(child, child["digest"])
    else:
        push(root, dest_tag)


if __name__ == "__main__":
    main()
