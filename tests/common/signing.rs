//! Signing as cosign does it, without ferry: keys made by OpenSSL and Python, cosign-format
//! signatures made and pushed by `scripts/cosign-sign.py`, OpenSSL and Python checking what
//! ferry signs and seals, and a pseudo-terminal to type passphrases. Debian's own modules are
//! used, so the scripts run with /usr/bin/python3 whatever python3 comes first in PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

use super::*;

pub const PYTHON: &str = "/usr/bin/python3";

/// An ECDSA P-256 key pair made by Python: (PKCS#8 private PEM, public PEM).
pub fn python_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (private, public) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub")),
    );
    run(Command::new(PYTHON)
        .arg(repo_root().join("scripts/cosign-sign.py"))
        .arg("keygen")
        .arg(&private)
        .arg(&public));
    (private, public)
}

/// Signs `repo:tag` at `registry` the way cosign does; `extra` as cosign-sign.py takes them.
pub fn cosign_sign(
    registry: &Registry,
    repo: &str,
    tag: &str,
    key: &Path,
    extra: &[&str],
) -> String {
    let out = run(Command::new(PYTHON)
        .arg(repo_root().join("scripts/cosign-sign.py"))
        .arg("sign")
        .arg(&registry.host)
        .arg(repo)
        .arg(tag)
        .arg(key)
        .args(extra));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `openssl dgst -sha256 -verify PUB -signature SIG.der FILE` on `data` and base64 `signature`.
pub fn openssl_verifies(public: &Path, data: &[u8], signature_b64: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let (file, sig) = (dir.path().join("data"), dir.path().join("sig.der"));
    std::fs::write(&file, data).unwrap();
    std::fs::write(
        &sig,
        base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .unwrap(),
    )
    .unwrap();
    let (code, stdout, stderr) = outcome(
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(public)
            .arg("-signature")
            .arg(&sig)
            .arg(&file),
    );
    // OpenSSL says so when it succeeds; any other exit is a refusal.
    assert!(
        code != 0 || stdout.contains("Verified OK"),
        "{stdout}{stderr}"
    );
    code == 0
}

/// The requests a registry's access log holds so far.
pub fn requests(registry: &Registry) -> usize {
    registry
        .log()
        .lines()
        .filter(|l| l.contains("HTTP/1.1\""))
        .count()
}

/// `ferry push DIR TARGET/mirror ARGS` must fail without a single request reaching the target:
/// its stderr.
pub fn push_refused_unheard(home: &Path, target: &Registry, dir: &Path, args: &[&str]) -> String {
    let before = requests(target);
    let (code, stdout, stderr) = outcome(&mut push_cmd(home, target, dir, "mirror", args));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert_eq!(requests(target), before, "{}", target.log());
    stderr
}

/// A policy: everything rejected but `scope`, which needs a signature by `key` naming the
/// repository (as cosign names it).
pub fn policy_file(dir: &Path, name: &str, scope: &str, key: &Path) -> PathBuf {
    let path = dir.join(name);
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {scope: [{
            "type": "sigstoreSigned",
            "keyPath": key,
            "signedIdentity": {"type": "matchRepository"},
        }]}},
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    path
}

/// A blob of a pushed repository, over the registry API.
pub fn blob(registry: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    run(Command::new("curl")
        .args(["-sf", "--noproxy", "*"])
        .arg(format!("http://{}/v2/{repo}/blobs/{digest}", registry.host)))
    .stdout
}

/// The payload and signature of the one layer of a signature manifest.
pub fn payload_and_signature(
    registry: &Registry,
    repo: &str,
    manifest: &[u8],
) -> (Vec<u8>, String) {
    let manifest: Value = serde_json::from_slice(manifest).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let signature = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap()
        .to_string();
    (
        blob(registry, repo, layer["digest"].as_str().unwrap()),
        signature,
    )
}

/// Opens a sigstore encrypted key with Python (hashlib.scrypt, PyNaCl's SecretBox) and prints
/// the public half of the PKCS#8 key inside, as PEM.
pub const OPEN_KEY: &str = r#"
import base64, hashlib, json, sys
import nacl.secret
from cryptography.hazmat.primitives import serialization
text = open(sys.argv[1]).read().splitlines()
assert text[0] == "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----", text[0]
envelope = json.loads(base64.b64decode("".join(l for l in text if not l.startswith("-----"))))
kdf = envelope["kdf"]
assert kdf["name"] == "scrypt" and envelope["cipher"]["name"] == "nacl/secretbox"
params = kdf["params"]
assert (params["N"], params["r"], params["p"]) == (32768, 8, 1), params
key = hashlib.scrypt(sys.argv[2].encode(), salt=base64.b64decode(kdf["salt"]), n=params["N"],
                     r=params["r"], p=params["p"], dklen=32, maxmem=64 << 20)
der = nacl.secret.SecretBox(key).decrypt(base64.b64decode(envelope["ciphertext"]),
                                         base64.b64decode(envelope["cipher"]["nonce"]))
private = serialization.load_der_private_key(der, None)
assert private.curve.name == "secp256r1", private.curve.name
sys.stdout.write(private.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
"#;

/// One image at `registry`, and a list file naming it.
pub fn one_image_list(registry: &Registry, work: &Path) -> PathBuf {
    let layout = work.join("one");
    make_layout(&layout, "v1", "image", &["--seed", "5"]);
    registry.seed(&layout, "v1", "tools/one:v1");
    let list = work.join("one.txt");
    std::fs::write(&list, format!("{}\n", registry.at("tools/one:v1"))).unwrap();
    list
}

pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Runs a command on a pseudo-terminal, typing each of `ANSWERS` (comma-separated) after a
/// prompt ending in ": ", once the terminal's echo is off (what is typed before may be flushed);
/// prints what the terminal showed and exits as the command did.
pub const ON_A_TERMINAL: &str = r#"
import os, pty, select, sys, termios, time
answers = [a for a in os.environ.pop("ANSWERS").split(",") if a]
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
shown = b""
def read():
    global shown
    # A command that waits for something never typed fails the test instead of hanging it.
    if not select.select([fd], [], [], 30)[0]:
        os.kill(pid, 9)
        return False
    try:
        data = os.read(fd, 4096)
    except OSError:
        return False
    shown += data
    return bool(data)
for answer in answers:
    while not shown.rstrip().endswith(b":"):
        if not read():
            break
    for _ in range(500):
        if not termios.tcgetattr(fd)[3] & termios.ECHO:
            break
        time.sleep(0.01)
    shown += b"<typed>\n"
    os.write(fd, answer.encode() + b"\n")
while read():
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(shown.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

pub fn on_a_terminal(home: &Path, args: &[&str], answers: &[&str]) -> (i32, String) {
    let inner = ferry(home);
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", ON_A_TERMINAL])
        .arg(inner.get_program())
        .args(args);
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.env_remove("FERRY_KEY_PASSWORD")
        .env("ANSWERS", answers.join(","));
    let (code, stdout, stderr) = outcome(&mut cmd);
    (code, format!("{stdout}{stderr}"))
}
