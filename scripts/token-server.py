#!/usr/bin/env python3
"""A small bearer-token issuer for testing ferry against a real registry.

The CNCF distribution registry only verifies tokens (its `auth.token` block); it cannot issue
them. This server issues RS256 JWTs that the registry accepts: the signing certificate travels in
the `x5c` header and must be the registry's `rootcertbundle`. Signing goes through the `openssl`
command line, so the script needs nothing beyond the Python standard library.

It listens on 127.0.0.1 only, on the port given (0 = let the kernel choose) and writes the port it
got to --port-file.

    GET /token?service=S&scope=repository:NAME:pull,push[&scope=...]

Users given with --user get every action they ask for; anonymous clients get `pull` only with
--anonymous-pull, otherwise 401. --ttl sets the real lifetime of a token; --expires-in sets the
lifetime the server *claims* in its answer, so a test can hand out tokens that expire long before
the client expects (the registry allows 60 s of clock leeway: a --ttl of -55 means a token that
works for about 5 seconds).
"""

import argparse
import base64
import hmac
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self, args):
        self.args = args
        with open(args.cert, "rb") as f:
            pem = f.read().decode()
        body = "".join(
            line for line in pem.splitlines() if line and not line.startswith("-----")
        )
        self.x5c = [body]  # standard base64 DER, as RFC 7515 wants
        self.users = {}
        for spec in args.user:
            name, _, password = spec.partition(":")
            self.users[name] = password
        self.counter = 0
        self.lock = threading.Lock()

    def sign(self, signing_input: bytes) -> bytes:
        out = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.args.key],
            input=signing_input,
            capture_output=True,
            check=True,
        )
        return out.stdout

    def token(self, account, service, scopes, anonymous):
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            if anonymous:
                actions = [a for a in actions if a == "pull"]
            if actions:
                access.append({"type": kind, "name": name, "actions": actions})
        now = int(time.time())
        with self.lock:
            self.counter += 1
            jti = f"ferry-test-{os.getpid()}-{self.counter}"
        claims = {
            "iss": self.args.issuer,
            "sub": account or "",
            "aud": service,
            "exp": now + self.args.ttl,
            "nbf": now - 1,
            "iat": now,
            "jti": jti,
            "access": access,
        }
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        signing_input = (
            b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        ).encode()
        return signing_input.decode() + "." + b64url(self.sign(signing_input))


def make_handler(issuer: Issuer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("token-server: " + (fmt % args) + "\n")

        def reply(self, code, body: dict, extra_headers=()):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra_headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                self.reply(404, {"error": "not found"})
                return
            query = urllib.parse.parse_qs(url.query)
            service = query.get("service", [""])[0]
            scopes = query.get("scope", [])
            account, anonymous = None, True
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                try:
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                except Exception:
                    user, password = "", None
                expected = issuer.users.get(user)
                if expected is None or not hmac.compare_digest(expected, password or ""):
                    self.reply(
                        401,
                        {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username/password"}]},
                        [("WWW-Authenticate", 'Basic realm="ferry-test-token"')],
                    )
                    return
                account, anonymous = user, False
            elif not issuer.args.anonymous_pull:
                self.reply(
                    401,
                    {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                    [("WWW-Authenticate", 'Basic realm="ferry-test-token"')],
                )
                return
            token = issuer.token(account, service, scopes, anonymous)
            self.reply(
                200,
                {
                    "token": token,
                    "access_token": token,
                    "expires_in": issuer.args.expires_in or max(issuer.args.ttl, 60),
                    "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
            )

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--user", action="append", default=[], help="NAME:PASSWORD")
    p.add_argument("--anonymous-pull", action="store_true")
    p.add_argument("--ttl", type=int, default=300)
    p.add_argument("--expires-in", type=int, default=0)
    args = p.parse_args()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Issuer(args)))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
