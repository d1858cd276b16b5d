#!/usr/bin/python3
"""Makes cosign-format signatures for ferry's tests, independently of ferry: keys with Python's
`cryptography`, the simple-signing payload and the signature manifest as cosign's published
format describes them, pushed over the registry HTTP API (plain HTTP), standard library apart
from `cryptography`. Debian's skopeo is built without sigstore, so it cannot make them.

    cosign-sign.py keygen PRIVATE.pem PUBLIC.pem
        an ECDSA P-256 key: PKCS#8 PEM (unencrypted) and its SubjectPublicKeyInfo PEM
    cosign-sign.py sign HOST:PORT REPO TAG KEY.pem [--identity REF] [--payload-digest D]
                        [--referrer [--api-only]]
        signs the manifest REPO:TAG names. The payload names REF (default HOST:PORT/REPO, the
        repository without tag, as cosign writes it) and digest D (default the manifest's).
        Without --referrer the signature manifest is tagged sha256-<hex>.sig; with it, the
        manifest carries a `subject` and cosign's signature artifact type, is pushed by digest
        and listed in the sha256-<hex> referrers tag-schema index (with --api-only it is not:
        only a registry's OCI 1.1 referrers API then finds it). Prints the manifest digest.
    cosign-sign.py seal PRIVATE.pem PASSPHRASE LABEL OUT.key
        the key sealed as cosign seals it (scrypt N=32768 r=8 p=1, NaCl secretbox), under the
        PEM label LABEL (ENCRYPTED SIGSTORE PRIVATE KEY, or cosign 1's ENCRYPTED COSIGN PRIVATE
        KEY)
"""

import base64
import hashlib
import json
import sys
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
ANNOTATION = "dev.cosignproject.cosign/signature"
ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX,
                    "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json"])


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as response:
        return response.status, dict(response.headers), response.read()


def keygen(private_path, public_path):
    key = ec.generate_private_key(ec.SECP256R1())
    with open(private_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(public_path, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


def push_blob(base, host, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, headers, _ = request("POST", f"{base}/blobs/uploads/")
    location = headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    separator = "&" if "?" in location else "?"
    request("PUT", f"{location}{separator}digest={digest}", data=data,
            headers={"Content-Type": "application/octet-stream"})
    return {"mediaType": OCI_CONFIG, "digest": digest, "size": len(data)}


def put_manifest(base, reference, document, media_type):
    data = json.dumps(document, separators=(",", ":")).encode()
    request("PUT", f"{base}/manifests/{reference}", data=data,
            headers={"Content-Type": media_type})
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)


def seal(private_path, passphrase, label, out_path):
    import os
    import nacl.secret
    with open(private_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    salt, nonce = os.urandom(32), os.urandom(24)
    box_key = hashlib.scrypt(passphrase.encode(), salt=salt, n=32768, r=8, p=1, dklen=32,
                             maxmem=64 << 20)
    sealed = nacl.secret.SecretBox(box_key).encrypt(der, nonce).ciphertext
    envelope = json.dumps({
        "kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
                "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }).encode()
    body = base64.b64encode(envelope).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    with open(out_path, "w") as f:
        f.write(f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n")


def sign(host, repo, tag, key_path, identity, payload_digest, referrer, api_only):
    base = f"http://{host}/v2/{repo}"
    _, headers, body = request("GET", f"{base}/manifests/{tag}", headers={"Accept": ACCEPT})
    subject = {"mediaType": headers["Content-Type"].split(";")[0],
               "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "size": len(body)}
    payload = json.dumps({
        "critical": {
            "identity": {"docker-reference": identity or f"{host}/{repo}"},
            "image": {"docker-manifest-digest": payload_digest or subject["digest"]},
            "type": "cosign container image signature",
        },
        "optional": None,
    }, separators=(",", ":")).encode()
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = push_blob(base, host, payload)
    layer["mediaType"] = SIMPLE_SIGNING
    layer["annotations"] = {ANNOTATION: signature}
    config = push_blob(base, host, json.dumps({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    }, separators=(",", ":")).encode())
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                "layers": [layer]}
    schema_tag = subject["digest"].replace(":", "-")
    if not referrer:
        digest, _ = put_manifest(base, f"{schema_tag}.sig", manifest, OCI_MANIFEST)
        return digest
    manifest["artifactType"] = SIG_ARTIFACT
    manifest["subject"] = subject
    digest, size = put_manifest(base, "sha256:" + hashlib.sha256(
        json.dumps(manifest, separators=(",", ":")).encode()).hexdigest(), manifest, OCI_MANIFEST)
    if api_only:
        return digest
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
         "artifactType": SIG_ARTIFACT}]}
    put_manifest(base, schema_tag, index, OCI_INDEX)
    return digest


def main():
    args = sys.argv[1:]
    if args[:1] == ["keygen"]:
        keygen(args[1], args[2])
        return
    if args[:1] == ["seal"]:
        seal(args[1], args[2], args[3], args[4])
        return
    if args[:1] != ["sign"] or len(args) < 5:
        sys.exit(__doc__)
    host, repo, tag, key = args[1:5]
    rest = args[5:]

    def option(name):
        if name in rest:
            return rest[rest.index(name) + 1]
        return None

    print(sign(host, repo, tag, key, option("--identity"), option("--payload-digest"),
               "--referrer" in rest, "--api-only" in rest))


if __name__ == "__main__":
    main()
