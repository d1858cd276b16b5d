#!/usr/bin/env python3
"""An HTTP proxy on 127.0.0.1 that sits in front of a real registry and changes its behaviour on
purpose.

    fault-proxy.py --upstream 127.0.0.1:PORT --port-file FILE [--log FILE]
                   [--corrupt-blobs] [--truncate-first-blob-get] [--refuse-first-two]
                   [--rate MB_PER_S] [--referrers-api] [--single-post-uploads]

--corrupt-blobs            flips one byte in the middle of every blob body it relays
--truncate-first-blob-get  the first full GET of each blob gets its headers (with the whole
                           Content-Length) but only half the body, then the connection drops;
                           later requests (a client resuming with Range) pass through
--refuse-first-two         the first two tries of every request (method and path) are answered
                           without reaching the registry: 429 with `Retry-After: 1`, then 503
--rate MB_PER_S            request and response bodies share a line of this many MB/s (10^6
                           bytes), like a slow link between ferry and a registry
--referrers-api            adds the OCI 1.1 referrers API the registry (distribution 2.8) lacks:
                           every manifest PUT through the proxy with a `subject` is indexed and
                           acknowledged with `OCI-Subject`, and GET /v2/<repo>/referrers/<digest>
                           lists what was indexed, as a registry of OCI 1.1 does
--single-post-uploads      adds the spec's single-POST upload the registry (distribution 2.8)
                           lacks: `POST /v2/<repo>/blobs/uploads/?digest=D` with the blob as its
                           body is stored upstream (POST, then PUT of the body to the session)
                           and answered 201 with the blob's Location, as a registry taking it does

Every request is appended to --log as `METHOD PATH RANGE STATUS`, so a test can check what the
client really did. Plain HTTP only; it binds 127.0.0.1 on a port the kernel picks and writes the
port to --port-file.
"""

import argparse
import hashlib
import http.client
import json
import http.server
import os
import re
import socket
import threading
import time
import urllib.parse

BLOB_GET = re.compile(r"^/v2/.+/blobs/(sha256:[0-9a-f]{64})$")
MANIFEST_PUT = re.compile(r"^/v2/(.+)/manifests/[^/]+$")
UPLOAD_POST = re.compile(r"^/v2/(.+)/blobs/uploads/$")
REFERRERS_GET = re.compile(r"^/v2/(.+)/referrers/(sha256:[0-9a-f]{64})$")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
# Bytes relayed per read and per turn on the --rate line: at 64 KiB the relaying itself took
# 1.2 s of CPU per GB (a benchmark's share of two cores), at 1 MiB 0.7 s. The line still
# averages its rate; it sends in bursts of this size.
CHUNK = 1 << 20
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class Link:
    """A shared line of a fixed rate: each chunk waits for its turn on the wire."""

    def __init__(self, rate):
        self.rate = rate
        self.free_at = time.monotonic()
        self.lock = threading.Lock()

    def send(self, n):
        if not self.rate:
            return
        with self.lock:
            start = max(self.free_at, time.monotonic())
            self.free_at = start + n / self.rate
            done = self.free_at
        delay = done - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def make_handler(args):
    truncated = set()
    tries = {}
    lock = threading.Lock()
    link = Link(args.rate * 1e6 if args.rate else 0)
    # (repository, subject digest) -> {referrer digest: descriptor}
    referrers = {}

    def log(line):
        if args.log:
            with lock, open(args.log, "a") as f:
                f.write(line + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def refuse(self):
            key = self.command + " " + self.path
            with lock:
                tries[key] = tries.get(key, 0) + 1
                n = tries[key]
            if n > 2:
                return False
            status = 429 if n == 1 else 503
            log(f"{self.command} {self.path} {self.headers.get('Range', '-')} {status}")
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def body(self, length):
            left = length
            while left > 0:
                chunk = self.rfile.read(min(CHUNK, left))
                if not chunk:
                    return
                link.send(len(chunk))
                left -= len(chunk)
                yield chunk

        def answer_referrers(self, repo, subject):
            with lock:
                found = sorted(referrers.get((repo, subject), {}).values(),
                               key=lambda d: d["digest"])
            data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                               "manifests": found}).encode()
            log(f"{self.command} {self.path} - 200")
            self.send_response(200)
            self.send_header("Content-Type", OCI_INDEX)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def index_referrer(self, repo, data):
            """Records a manifest with a subject; returns the subject's digest."""
            try:
                manifest = json.loads(data)
            except ValueError:
                return None
            subject = manifest.get("subject") if isinstance(manifest, dict) else None
            if not subject:
                return None
            descriptor = {
                "mediaType": manifest.get("mediaType", self.headers.get("Content-Type")),
                "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "artifactType": manifest.get("artifactType")
                or manifest.get("config", {}).get("mediaType"),
            }
            if manifest.get("annotations"):
                descriptor["annotations"] = manifest["annotations"]
            with lock:
                referrers.setdefault((repo, subject["digest"]), {})[descriptor["digest"]] = descriptor
            return subject["digest"]

        def single_post(self, body):
            """Stores a blob sent whole in the POST opening its upload, as POST + PUT upstream."""
            data = b"".join(body)
            query = self.path.split("?", 1)[1]
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"}
            upstream = http.client.HTTPConnection(args.upstream, timeout=60)
            upstream.request("POST", self.path.split("?")[0], body=b"", headers=headers)
            opened = upstream.getresponse()
            opened.read()
            status, answer = opened.status, {}
            if status == 202:
                location = urllib.parse.urlsplit(opened.getheader("Location"))
                sep = "&" if location.query else ""
                target = f"{location.path}?{location.query}{sep}{query}"
                upstream.request("PUT", target, body=data, headers=headers)
                stored = upstream.getresponse()
                stored.read()
                status = stored.status
                answer = {k: v for k, v in stored.getheaders() if k.lower() not in HOP_BY_HOP}
            upstream.close()
            log(f"{self.command} {self.path} - {status}")
            self.send_response(status)
            for k, v in answer.items():
                if k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def relay(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.body(length) if length else None
            path = self.path.split("?")[0]
            if (args.single_post_uploads and self.command == "POST" and body is not None
                    and UPLOAD_POST.match(path) and "digest=" in self.path):
                return self.single_post(body)
            asked = REFERRERS_GET.match(path)
            if args.referrers_api and asked and self.command == "GET":
                return self.answer_referrers(asked.group(1), asked.group(2))
            put = MANIFEST_PUT.match(path) if self.command == "PUT" else None
            subject = None
            if args.referrers_api and put and body is not None:
                data = b"".join(body)
                body = data
            if args.refuse_first_two and self.refuse():
                for _ in body or ():
                    pass
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream = http.client.HTTPConnection(args.upstream, timeout=60)
            upstream.request(self.command, self.path, body=body, headers=headers)
            resp = upstream.getresponse()
            match = BLOB_GET.match(self.path.split("?")[0])
            is_blob_body = self.command == "GET" and match and resp.status in (200, 206)
            cut = None
            if is_blob_body and args.truncate_first_blob_get and resp.status == 200:
                with lock:
                    if match.group(1) not in truncated:
                        truncated.add(match.group(1))
                        cut = int(resp.getheader("Content-Length") or 0) // 2
            if put and isinstance(body, bytes) and resp.status == 201:
                subject = self.index_referrer(put.group(1), body)
            log(f"{self.command} {self.path} {self.headers.get('Range', '-')} {resp.status}")
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            if subject:
                self.send_header("OCI-Subject", subject)
            self.end_headers()
            if self.command == "HEAD":
                return
            sent = 0
            flipped = False
            total = int(resp.getheader("Content-Length") or 0)
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                if is_blob_body and args.corrupt_blobs and not flipped:
                    middle = total // 2 - sent
                    if 0 <= middle < len(chunk):
                        chunk = chunk[:middle] + bytes([chunk[middle] ^ 0xFF]) + chunk[middle + 1 :]
                        flipped = True
                if cut is not None and sent + len(chunk) >= cut:
                    self.wfile.write(chunk[: cut - sent])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    upstream.close()
                    return
                link.send(len(chunk))
                self.wfile.write(chunk)
                sent += len(chunk)
            upstream.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = relay

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log")
    p.add_argument("--corrupt-blobs", action="store_true")
    p.add_argument("--truncate-first-blob-get", action="store_true")
    p.add_argument("--refuse-first-two", action="store_true")
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--referrers-api", action="store_true")
    p.add_argument("--single-post-uploads", action="store_true")
    args = p.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
