#!/usr/bin/env python3
"""A static Helm repository for tests: serves the files of a directory (index.yaml, charts) on
127.0.0.1, answers `Range: bytes=N-` with 206, logs every request, and can play the tricks a
test needs:

  --rate MB/s     send bodies at about this speed (a slow line, so a test can cut a pull
                  mid-chart); a file named `rate` in the directory overrides it while present
  <file>.then     once <file> has been sent whole, <file>.then replaces it (a chart that the
                  repository changes between two downloads)

Usage: helm-repo.py DIR --port-file FILE [--log FILE] [--rate MB/s]
"""

import argparse
import http.server
import os
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log")
    parser.add_argument("--rate", type=float, default=0.0)
    args = parser.parse_args()
    root = os.path.abspath(args.dir)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def record(self, status):
            if args.log:
                with open(args.log, "a") as log:
                    log.write(f"GET {self.path} {self.headers.get('Range', '-')} {status}\n")

        def rate(self):
            try:
                with open(os.path.join(root, "rate")) as f:
                    return float(f.read().strip())
            except (OSError, ValueError):
                return args.rate

        def do_GET(self):
            name = self.path.split("?")[0].lstrip("/")
            path = os.path.join(root, name)
            if ".." in name.split("/") or not os.path.isfile(path):
                self.record(404)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            size = os.path.getsize(path)
            start = 0
            wanted = self.headers.get("Range", "")
            if wanted.startswith("bytes=") and wanted.endswith("-"):
                start = int(wanted[len("bytes="):-1])
            if start >= size > 0:
                self.record(416)
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206 if start else 200
            self.record(status)
            self.send_response(status)
            self.send_header("Content-Length", str(size - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.end_headers()
            with open(path, "rb") as f:
                f.seek(start)
                while True:
                    block = f.read(256 << 10)
                    if not block:
                        break
                    try:
                        self.wfile.write(block)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    rate = self.rate()
                    if rate > 0:
                        time.sleep(len(block) / (rate * 1e6))
            then = path + ".then"
            if os.path.exists(then):
                os.replace(then, path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
