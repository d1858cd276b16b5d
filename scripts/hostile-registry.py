#!/usr/bin/env python3
"""A registry that misbehaves on purpose, for ferry's hardening tests. It speaks just enough of
the distribution API for one image (`<any repo>:v1`, a config and one 1 MiB layer) and wants
basic auth (any login), and a second listener stands for "another origin" that must never see
the user's credentials.

    hostile-registry.py --mode MODE --port-file FILE --log FILE

The port file gets "MAIN OTHER". Every request is logged as `main|other METHOD PATH AUTH` where
AUTH is the scheme of the Authorization header received (Basic, Bearer) or `-`; secrets are
never written.

Modes:
  plain             behaves
  paged             behaves, with tag lists in three pages (a b | c d | e)
  cross-link        tag lists link their next page to the other origin
  cross-location    blob uploads are sent (Location) to the other origin, which accepts them
  realm-elsewhere   bearer auth whose token service is plain HTTP on another host (localhost)
  huge-token        bearer auth whose tokens claim to live for 2^64-1 seconds
  range-cut         blob GETs ignore Range, answer 200 and cut the body at the same byte
  trickle           blob GETs send one byte every two seconds
  endless-pages     tag lists link to a new next page forever
  big-error         every manifest GET answers 404 with a 100 MB body
  huge-tags         tag lists in 30 pages of one 16 MB tag each
  escape-tags       tag lists hold terminal escape sequences and a line break
"""

import argparse
import hashlib
import http.server
import json
import os
import random
import threading
import time

LAYER = random.Random(7).randbytes(1 << 20)
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(CONFIG),
            "size": len(CONFIG),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest(LAYER),
                "size": len(LAYER),
            }
        ],
    },
    separators=(",", ":"),
).encode()
BLOBS = {digest(CONFIG): CONFIG, digest(LAYER): LAYER}


def make_handler(args, side, ports, log):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body in one segment: without these, every answer waits 40 ms for a
        # delayed ACK, and a thousand small answers take a minute.
        disable_nagle_algorithm = True
        wbufsize = 1 << 16

        def log_message(self, fmt, *a):
            pass

        def answer(self, status, body=b"", headers=None):
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def read_body(self):
            """Reads the request body; keeps it when small (a manifest)."""
            length = int(self.headers.get("Content-Length") or 0)
            kept = []
            left = length
            while left > 0:
                chunk = self.rfile.read(min(65536, left))
                if not chunk:
                    break
                left -= len(chunk)
                if length <= (4 << 20):
                    kept.append(chunk)
            self.body = b"".join(kept)

        def handle_request(self):
            auth = self.headers.get("Authorization", "-").split(" ")[0]
            log(f"{side} {self.command} {self.path} {auth}")
            self.read_body()
            path = self.path.split("?")[0]
            main, other = ports
            if side == "other":
                return self.other(path)
            bearer = args.mode in ("realm-elsewhere", "huge-token")
            if path == "/token":
                return self.token()
            if bearer and auth != "Bearer":
                realm = (
                    f"http://localhost:{other}/token"
                    if args.mode == "realm-elsewhere"
                    else f"http://127.0.0.1:{main}/token"
                )
                return self.answer(
                    401,
                    b'{"errors":[{"code":"UNAUTHORIZED","message":"token wanted"}]}',
                    {"WWW-Authenticate": f'Bearer realm="{realm}",service="hostile"'},
                )
            if not bearer and auth != "Basic":
                return self.answer(
                    401,
                    b'{"errors":[{"code":"UNAUTHORIZED","message":"login wanted"}]}',
                    {"WWW-Authenticate": 'Basic realm="hostile"'},
                )
            if path == "/v2/":
                return self.answer(200, b"{}")
            if path.endswith("/tags/list"):
                return self.tags(main, other)
            if "/manifests/" in path:
                return self.manifest()
            if "/blobs/uploads/" in path:
                return self.upload(main, other)
            if "/blobs/" in path:
                return self.blob(path.rsplit("/", 1)[1])
            return self.answer(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')

        def other(self, path):
            if path == "/token":
                return self.token()
            # The other origin takes uploads, as object storage behind a registry does.
            if self.command in ("PUT", "PATCH"):
                return self.answer(201, b"", {"Docker-Content-Digest": digest(LAYER)})
            if path.endswith("/tags/list"):
                return self.answer(200, b'{"tags":["stolen"]}')
            return self.answer(404, b"")

        def token(self):
            expires = 18446744073709551615 if args.mode == "huge-token" else 300
            body = json.dumps({"token": "t0k3n", "expires_in": expires}).encode()
            return self.answer(200, body, {"Content-Type": "application/json"})

        def tags(self, main, other):
            headers = {"Content-Type": "application/json"}
            if args.mode == "cross-link":
                headers["Link"] = f'<http://127.0.0.1:{other}/v2/x/tags/list?n=1000>; rel="next"'
            if args.mode == "endless-pages":
                page = random.getrandbits(64)
                headers["Link"] = f'</v2/x/tags/list?n=1000&last=p{page}>; rel="next"'
            if args.mode == "huge-tags":
                page = int(self.path.split("page=")[1].split("&")[0]) if "page=" in self.path else 0
                if page < 29:
                    headers["Link"] = f'</v2/x/tags/list?n=1000&page={page + 1}>; rel="next"'
                tag = "a" * ((16 << 20) - 100)
                return self.answer(200, json.dumps({"name": "x", "tags": [tag]}).encode(), headers)
            if args.mode == "escape-tags":
                tags = ["v1", "\x1b[2J\x1b[31mPWNED\x1b[0m", "v2\nwarning: a forged line"]
                return self.answer(200, json.dumps({"name": "x", "tags": tags}).encode(), headers)
            if args.mode == "paged":
                pages = {"": (["a", "b"], "b"), "b": (["c", "d"], "d"), "d": (["e"], None)}
                last = self.path.split("last=")[1].split("&")[0] if "last=" in self.path else ""
                tags, next_last = pages[last]
                if next_last:
                    headers["Link"] = f'</v2/x/tags/list?n=2&last={next_last}>; rel="next"'
                return self.answer(200, json.dumps({"name": "x", "tags": tags}).encode(), headers)
            return self.answer(200, b'{"name":"x","tags":["v1"]}', headers)

        def manifest(self):
            if self.command == "PUT":
                return self.answer(201, b"", {"Docker-Content-Digest": digest(self.body)})
            if args.mode == "big-error":
                self.send_response(404)
                self.send_header("Content-Length", str(100 * 1000 * 1000))
                self.end_headers()
                block = b"x" * (1 << 20)
                try:
                    for _ in range(95):
                        self.wfile.write(block)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True
                return
            headers = {
                "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                "Docker-Content-Digest": digest(MANIFEST),
            }
            return self.answer(200, MANIFEST, headers)

        def upload(self, main, other):
            if self.command == "POST":
                host = other if args.mode == "cross-location" else main
                location = f"http://127.0.0.1:{host}/v2/x/blobs/uploads/u{random.getrandbits(32)}?_state=s"
                return self.answer(202, b"", {"Location": location, "Range": "0-0"})
            return self.answer(201, b"", {"Docker-Content-Digest": digest(LAYER)})

        def blob(self, name):
            data = BLOBS.get(name)
            # Nothing is ever "already there": every upload is really sent.
            if data is None or self.command == "HEAD":
                return self.answer(404, b"")
            if data is LAYER and args.mode == "range-cut":
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 3])
                self.wfile.flush()
                self.close_connection = True
                return
            if data is LAYER and args.mode == "trickle":
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for i in range(len(data)):
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                        time.sleep(2)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True
                return
            return self.answer(200, data, {"Docker-Content-Digest": name})

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = handle_request

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    args = p.parse_args()
    lock = threading.Lock()

    def log(line):
        with lock, open(args.log, "a") as f:
            f.write(line + "\n")

    ports = [0, 0]
    servers = []
    for side in ("main", "other"):
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), make_handler(args, side, ports, log)
        )
        server.daemon_threads = True
        servers.append(server)
    ports[0] = servers[0].server_address[1]
    ports[1] = servers[1].server_address[1]
    threading.Thread(target=servers[1].serve_forever, daemon=True).start()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{ports[0]} {ports[1]}")
    os.rename(tmp, args.port_file)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
