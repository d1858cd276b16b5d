#!/usr/bin/env python3
"""Pushes the OCI layouts of a push list (scripts/gen-distribution.py writes push-list.tsv) into
a plain-HTTP registry over the distribution API, with the standard library only: thousands of
images in seconds, where one skopeo process per image takes minutes.

    seed-http.py OUT_DIR HOST:PORT/ROOT [-j THREADS] [--channels REGEX]

OUT_DIR holds push-list.tsv and the layouts it names. In order, each step on a pool of THREADS
(default 8) keep-alive connections:
  1. every blob of every image, once per repository: HEAD, then a monolithic
     `POST /blobs/uploads/?digest=` with the body for blobs up to 1 MiB when the registry takes
     it, else POST + PUT (the smallest blob, sent first and alone, tells: 201 yes; 202 no, the
     distribution registry among them);
  2. the child manifests of indexes, by digest;
  3. every list entry that is not a channel tag, by its tag or digest;
  4. channel tags (names matching --channels), one at a time in list order, so no channel ever
     points at something missing.
Entries listed twice are pushed once. Prints counts and requests per method on stderr.
"""

import argparse
import collections
import concurrent.futures
import http.client
import json
import os
import re
import sys
import threading
import time

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
CHANNELS = r"alpha|beta|early-access|stable|rock-solid|lts"
# Blobs up to this size go in one request where the registry takes monolithic uploads.
MONOLITHIC_MAX = 1 << 20


class Client:
    """One keep-alive HTTP/1.1 connection per thread."""

    def __init__(self, host):
        self.host = host
        self.local = threading.local()
        self.counts = collections.Counter()
        self.lock = threading.Lock()

    def conn(self, fresh=False):
        if fresh or getattr(self.local, "conn", None) is None:
            self.local.conn = http.client.HTTPConnection(self.host, timeout=300,
                                                         blocksize=1 << 20)
        return self.local.conn

    def request(self, method, path, body=None, headers=None, expect=(200, 201, 202, 204)):
        headers = dict(headers or {})
        for attempt in (0, 1):
            conn = self.conn(fresh=attempt > 0)
            if hasattr(body, "seek"):
                body.seek(0)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.HTTPException, ConnectionError, BrokenPipeError):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
                continue
            with self.lock:
                self.counts[method] += 1
            if response.status not in expect:
                raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
            return response.status, response.headers, data
        raise AssertionError("unreachable")


class Seeder:
    def __init__(self, out, target, threads):
        self.out = out
        host, _, self.root = target.partition("/")
        self.client = Client(host)
        self.threads = threads
        self.monolithic = None  # unknown until the probe
        self.layouts = {}
        self.uploaded = 0
        self.present = 0

    def repo_path(self, repo):
        return self.root if repo == "." else f"{self.root}/{repo}"

    def layout_tags(self, layout):
        if layout not in self.layouts:
            with open(os.path.join(self.out, layout, "index.json")) as f:
                index = json.load(f)
            self.layouts[layout] = {
                m["annotations"]["org.opencontainers.image.ref.name"]: m
                for m in index["manifests"]}
        return self.layouts[layout]

    def blob_path(self, layout, digest):
        algorithm, hex_digest = digest.split(":", 1)
        return os.path.join(self.out, layout, "blobs", algorithm, hex_digest)

    def read(self, layout, digest):
        with open(self.blob_path(layout, digest), "rb") as f:
            return f.read()

    def upload(self, layout, repo, digest, size):
        base = f"/v2/{repo}/blobs"
        status, _, _ = self.client.request("HEAD", f"{base}/{digest}", expect=(200, 404))
        if status == 200:
            self.present += 1
            return
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        with open(self.blob_path(layout, digest), "rb") as body:
            if self.monolithic and size <= MONOLITHIC_MAX:
                self.client.request("POST", f"{base}/uploads/?digest={digest}", body, headers,
                                    expect=(201,))
                self.uploaded += 1
                return
            _, response, _ = self.client.request("POST", f"{base}/uploads/", None,
                                                 {"Content-Length": "0"})
            location = response["Location"]
            if location.startswith("http"):
                location = "/" + location.split("/", 3)[3]
            separator = "&" if "?" in location else "?"
            self.client.request("PUT", f"{location}{separator}digest={digest}", body, headers,
                                expect=(201,))
            self.uploaded += 1

    def probe_monolithic(self, layout, repo, digest, size):
        """Uploads one small blob with a monolithic POST; 201 means the registry takes them.
        A registry that answers 202 opened an upload and left the body unread: that upload is
        abandoned and the connection dropped."""
        base = f"/v2/{repo}/blobs"
        status, _, _ = self.client.request("HEAD", f"{base}/{digest}", expect=(200, 404))
        if status == 200:
            self.present += 1
            return None
        with open(self.blob_path(layout, digest), "rb") as body:
            status, _, _ = self.client.request(
                "POST", f"{base}/uploads/?digest={digest}", body,
                {"Content-Type": "application/octet-stream", "Content-Length": str(size)})
        self.monolithic = status == 201
        if self.monolithic:
            self.uploaded += 1
        else:
            self.client.conn().close()
            self.client.local.conn = None
        return self.monolithic

    def put_manifest(self, layout, repo, desc, reference):
        data = self.read(layout, desc["digest"])
        media_type = desc.get("mediaType") or json.loads(data).get("mediaType")
        self.client.request("PUT", f"/v2/{repo}/manifests/{reference}", data,
                            {"Content-Type": media_type}, expect=(201,))

    def run_all(self, jobs):
        with concurrent.futures.ThreadPoolExecutor(self.threads) as pool:
            for future in concurrent.futures.as_completed(
                    [pool.submit(job, *args) for job, *args in jobs]):
                future.result()

    def seed(self, channels):
        with open(os.path.join(self.out, "push-list.tsv")) as f:
            rows = list(dict.fromkeys(tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()))
        channel = re.compile(rf":({channels})$")
        blobs = {}  # (repo, digest) -> (layout, size)
        children = {}  # (repo, digest) -> (layout, desc)
        tops, channel_rows = [], []
        for layout, layout_tag, repo, dest in rows:
            desc = self.layout_tags(layout)[layout_tag]
            repo = self.repo_path(repo)
            manifests = [desc]
            document = json.loads(self.read(layout, desc["digest"]))
            for child in document.get("manifests", []):
                children[(repo, child["digest"])] = (layout, child)
                manifests.append(child)
            for m in manifests:
                doc = document if m is desc else json.loads(self.read(layout, m["digest"]))
                for blob in [doc.get("config")] + doc.get("layers", []):
                    if blob:
                        blobs[(repo, blob["digest"])] = (layout, blob["size"])
            reference = dest[1:]
            (channel_rows if channel.search(dest) else tops).append((layout, repo, desc, reference))
        start = time.monotonic()
        todo = list(blobs.items())
        if todo:
            # The smallest blob tells whether the registry takes monolithic uploads.
            probe = min(range(len(todo)), key=lambda i: todo[i][1][1])
            (repo, digest), (layout, size) = todo[probe]
            if self.probe_monolithic(layout, repo, digest, size) is not False:
                del todo[probe]
            else:
                self.monolithic = False
        self.run_all([(self.upload, layout, repo, digest, size)
                      for (repo, digest), (layout, size) in todo])
        blob_time = time.monotonic() - start
        self.run_all([(self.put_manifest, layout, repo, desc, desc["digest"])
                      for (repo, _), (layout, desc) in children.items()])
        self.run_all([(self.put_manifest, *row) for row in tops])
        for row in channel_rows:
            self.put_manifest(*row)
        total = time.monotonic() - start
        counts = " ".join(f"{m} {n}" for m, n in sorted(self.client.counts.items()))
        print(f"seed-http: {len(tops) + len(channel_rows)} images ({len(children)} index children),"
              f" {len(blobs)} repository blobs ({self.uploaded} uploaded, {self.present} present,"
              f" monolithic POST: {'yes' if self.monolithic else 'no'}) in {total:.1f} s"
              f" (blobs {blob_time:.1f} s); requests: {counts}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="directory with push-list.tsv and the layouts")
    p.add_argument("target", help="HOST:PORT/ROOT of a plain-HTTP registry")
    p.add_argument("-j", "--threads", type=int, default=8)
    p.add_argument("--channels", default=CHANNELS, help="regex of the channel tags pushed last")
    args = p.parse_args()
    Seeder(args.out, args.target, args.threads).seed(args.channels)


if __name__ == "__main__":
    main()
