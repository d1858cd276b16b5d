#!/usr/bin/env python3
"""Helpers of `scripts/bench.sh scale`, standard library only.

    scale-stats.py bundle BUNDLE_DIR          what the bundle holds, and the minimum requests
    scale-stats.py log LOG_FILE [OFFSET]      requests in a registry access log from byte OFFSET
    scale-stats.py phases LOG_FILE [OFFSET]   when each kind of request ran (see below)
    scale-stats.py sync-yaml HOST ROOT        a `skopeo sync --src yaml` list of the tags of
                                              `ferry ls --json` (read on stdin)

`bundle` reads every archive (*.tar, or its chunks in order) and the OCI layouts in it and prints
KEY=VALUE lines:
  tags            every tag (digest-pinned components included)
  manifests       distinct manifest digests, blobs: distinct blob digests (the bundle as a whole)
  repo_manifests  distinct (repository, manifest), repo_blobs: distinct (repository, blob)
  min_pull        one GET per distinct manifest and blob (issue 21)
  min_push        one existence check per tag and per repository blob, one upload per
                  repository blob, one PUT per tag and per untagged manifest (index children)
  min_repush      one existence check per tag (a target that has everything)
`log` prints "METHOD KIND COUNT" lines (KIND: manifests, blobs, uploads, tags, other) and a
"total N" line, counting the distribution registry's access-log lines ("METHOD /v2/... HTTP").
`phases` reads the registry's own "response completed" lines instead (nanosecond times and
durations) and prints per method and kind: count, when the first started and the last ended
(seconds from the first request), the sum of the registry's durations, and the most at once.
"""

import collections
import glob
import io
import json
import os
import re
import sys
import tarfile

MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.oci.image.index.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json",
                  "application/vnd.docker.distribution.manifest.list.v2+json")


class Chunks(io.RawIOBase):
    """The chunk files of one archive read as one seekable file."""

    def __init__(self, paths):
        self.files = [(p, os.path.getsize(p)) for p in paths]
        self.size = sum(s for _, s in self.files)
        self.pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def tell(self):
        return self.pos

    def readinto(self, b):
        start = 0
        for path, size in self.files:
            if self.pos < start + size:
                with open(path, "rb") as f:
                    f.seek(self.pos - start)
                    n = f.readinto(memoryview(b)[:min(len(b), start + size - self.pos)])
                self.pos += n
                return n
            start += size
        return 0


def archives(bundle):
    found = {}
    for path in sorted(glob.glob(os.path.join(bundle, "*.tar"))):
        found[os.path.basename(path)] = [path]
    for path in sorted(glob.glob(os.path.join(bundle, "*.tar.*.chunk"))):
        found.setdefault(os.path.basename(path).rsplit(".", 2)[0], []).append(path)
    return found


def bundle_stats(bundle):
    tags = 0
    manifests, blobs = set(), set()
    repo_manifests, repo_blobs, tops = set(), set(), set()
    for name, paths in archives(bundle).items():
        fileobj = io.BufferedReader(Chunks(paths), 1 << 16)
        with tarfile.open(fileobj=fileobj, mode="r:") as tar:
            members = {m.name: m for m in tar.getmembers()}

            def read(name):
                return tar.extractfile(members[name]).read()

            for index_name in [n for n in members if n == "index.json" or n.endswith("/index.json")]:
                repo = os.path.dirname(index_name)
                prefix = f"{repo}/" if repo else ""
                key = (name, repo)

                def walk(desc):
                    digest = desc["digest"]
                    if desc["mediaType"] in MANIFEST_TYPES:
                        manifests.add(digest)
                        repo_manifests.add((key, digest))
                        doc = json.loads(read(prefix + "blobs/" + digest.replace(":", "/")))
                        for child in doc.get("manifests", []):
                            walk(child)
                        for blob in [doc.get("config")] + doc.get("layers", []):
                            if blob:
                                walk(blob)
                        if doc.get("subject"):
                            pass  # the subject is a tag of its own in this bundle
                    else:
                        blobs.add(digest)
                        repo_blobs.add((key, digest))

                for entry in json.loads(read(index_name))["manifests"]:
                    if entry.get("annotations", {}).get("org.opencontainers.image.ref.name"):
                        tags += 1
                        tops.add((key, entry["digest"]))
                        walk(entry)
    untagged = len({m for m in repo_manifests if m not in tops})
    print(f"tags={tags}")
    print(f"manifests={len(manifests)}")
    print(f"blobs={len(blobs)}")
    print(f"repo_manifests={len(repo_manifests)}")
    print(f"repo_blobs={len(repo_blobs)}")
    print(f"min_pull={len(manifests) + len(blobs)}")
    print(f"min_push={tags + 2 * len(repo_blobs) + tags + untagged}")
    print(f"min_repush={tags}")


LINE = re.compile(r'"([A-Z]+) /v2/(\S*) HTTP/[0-9.]+"')


def log_counts(path, offset):
    counts = collections.Counter()
    with open(path, "rb") as f:
        f.seek(offset)
        for raw in f:
            m = LINE.search(raw.decode("utf-8", "replace"))
            if not m:
                continue
            method, rest = m.groups()
            path_only = rest.split("?", 1)[0]
            if "/blobs/uploads/" in path_only or path_only.endswith("/blobs/uploads"):
                kind = "uploads"
            elif "/blobs/" in path_only:
                kind = "blobs"
            elif "/manifests/" in path_only:
                kind = "manifests"
            elif path_only.endswith("/tags/list"):
                kind = "tags"
            else:
                kind = "other"
            counts[(method, kind)] += 1
    for (method, kind), n in sorted(counts.items()):
        print(method, kind, n)
    print("total", sum(counts.values()))


def kind_of(path):
    path = path.split("?", 1)[0]
    if "/blobs/uploads" in path:
        return "uploads"
    if "/blobs/" in path:
        return "blobs"
    if "/manifests/" in path:
        return "manifests"
    if path.endswith("/tags/list"):
        return "tags"
    return "other"


FIELD = re.compile(r'(\S+?)=("(?:[^"\\]|\\.)*"|\S+)')


def seconds(text):
    """A Go duration (1.5ms, 2.1s, 350µs, 1m2.5s) in seconds."""
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ns|µs|us|ms|s|m|h)", text):
        total += float(number) * {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1,
                                  "m": 60, "h": 3600}[unit]
    return total


def phases(path, offset):
    import datetime
    spans = {}
    events = []
    with open(path, "rb") as f:
        f.seek(offset)
        for raw in f:
            line = raw.decode("utf-8", "replace")
            if 'msg="response completed' not in line:
                continue
            fields = {k: v.strip('"') for k, v in FIELD.findall(line)}
            if not fields.get("http.request.uri", "").startswith("/v2/"):
                continue
            stamp = fields["time"]
            whole, _, frac = stamp.rstrip("Z").partition(".")
            end = datetime.datetime.fromisoformat(whole).timestamp() + float("0." + (frac or "0"))
            took = seconds(fields.get("http.response.duration", "0s"))
            key = (fields["http.request.method"], kind_of(fields["http.request.uri"]))
            spans.setdefault(key, []).append((end - took, end, took))
            events.append((end - took, end))
    if not events:
        return
    zero = min(start for start, _ in events)
    print(f"{'request':<20} {'count':>7} {'first':>8} {'last':>8} {'busy s':>8} {'at once':>7}")
    for key, items in sorted(spans.items(), key=lambda kv: min(i[0] for i in kv[1])):
        marks = sorted([(s, 1) for s, _, _ in items] + [(e, -1) for _, e, _ in items])
        most = now = 0
        for _, step in marks:
            now += step
            most = max(most, now)
        print(f"{' '.join(key):<20} {len(items):>7} {min(i[0] for i in items) - zero:>8.2f}"
              f" {max(i[1] for i in items) - zero:>8.2f} {sum(i[2] for i in items):>8.2f} {most:>7}")
    print(f"{'all':<20} {len(events):>7} {0:>8.2f} {max(e for _, e in events) - zero:>8.2f}")


def sync_yaml(host, root):
    images = collections.defaultdict(list)
    for image in json.load(sys.stdin):
        path = image["path"]
        repo = root + ("/" + path if path else "")
        tag = image["tag"]
        ref = "sha256:" + tag if re.fullmatch(r"[0-9a-f]{64}", tag) else tag
        images[repo].append(ref)
    print(f"{host}:")
    print("  tls-verify: false")
    print("  images:")
    for repo in sorted(images):
        print(f"    {repo}: {json.dumps(images[repo])}")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "bundle":
        bundle_stats(sys.argv[2])
    elif what == "log":
        log_counts(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif what == "phases":
        phases(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif what == "sync-yaml":
        sync_yaml(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
