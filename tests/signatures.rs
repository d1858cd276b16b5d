//! Trust across the gap, checked by tools that are not ferry. Signatures are made by
//! `scripts/cosign-sign.py` from cosign's published format (Python's `cryptography`), pushed
//! over the registry API; OpenSSL checks what ferry carries and signs; Python's hashlib.scrypt
//! and PyNaCl open the key `ferry keygen` writes. Debian's own modules are used, so the scripts
//! run with /usr/bin/python3 whatever python3 comes first in PATH.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::*;
use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";

/// An ECDSA P-256 key pair made by Python: (PKCS#8 private PEM, public PEM).
fn python_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
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
fn cosign_sign(registry: &Registry, repo: &str, tag: &str, key: &Path, extra: &[&str]) -> String {
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
fn openssl_verifies(public: &Path, data: &[u8], signature_b64: &str) -> bool {
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
fn requests(registry: &Registry) -> usize {
    registry
        .log()
        .lines()
        .filter(|l| l.contains("HTTP/1.1\""))
        .count()
}

/// `ferry push DIR TARGET/mirror ARGS` must fail without a single request reaching the target:
/// its stderr.
fn push_refused_unheard(home: &Path, target: &Registry, dir: &Path, args: &[&str]) -> String {
    let before = requests(target);
    let (code, stdout, stderr) = outcome(&mut push_cmd(home, target, dir, "mirror", args));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert_eq!(requests(target), before, "{}", target.log());
    stderr
}

/// A policy: everything rejected but `scope`, which needs a signature by `key` naming the
/// repository (as cosign names it).
fn policy_file(dir: &Path, name: &str, scope: &str, key: &Path) -> PathBuf {
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
fn blob(registry: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    run(Command::new("curl")
        .args(["-sf", "--noproxy", "*"])
        .arg(format!("http://{}/v2/{repo}/blobs/{digest}", registry.host)))
    .stdout
}

/// The payload and signature of the one layer of a signature manifest.
fn payload_and_signature(registry: &Registry, repo: &str, manifest: &[u8]) -> (Vec<u8>, String) {
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

#[test]
fn a_policy_takes_exactly_the_signed_images_and_their_signatures_travel() {
    let source = Registry::start("plain");
    let target = Registry::start("plain");
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (ours, ours_pub) = python_key(work.path(), "ours");
    let (theirs, theirs_pub) = python_key(work.path(), "theirs");

    // Five images: two signed by our key (one by tag, one as an OCI 1.1 referrer), one
    // unsigned, one signed by another key, one whose signed payload names another digest.
    let layout = work.path().join("layout");
    let mut digests = std::collections::BTreeMap::new();
    for (i, (name, kind)) in [
        ("signed", "image"),
        ("referred", "index"),
        ("unsigned", "image"),
        ("stranger", "image"),
        ("swapped", "image"),
    ]
    .iter()
    .enumerate()
    {
        let seed = (i + 11).to_string();
        let digest = make_layout(&layout, name, kind, &["--seed", &seed]);
        source.seed(&layout, name, &format!("apps/{name}:v1"));
        digests.insert(*name, digest);
    }
    cosign_sign(&source, "apps/signed", "v1", &ours, &[]);
    cosign_sign(&source, "apps/referred", "v1", &ours, &["--referrer"]);
    cosign_sign(&source, "apps/stranger", "v1", &theirs, &[]);
    cosign_sign(
        &source,
        "apps/swapped",
        "v1",
        &ours,
        &["--payload-digest", &digests["signed"]],
    );

    let list = work.path().join("images.txt");
    let names = ["signed", "referred", "unsigned", "stranger", "swapped"];
    std::fs::write(
        &list,
        names
            .iter()
            .map(|n| format!("{}\n", source.at(&format!("apps/{n}:v1"))))
            .collect::<String>(),
    )
    .unwrap();
    let policy = policy_file(work.path(), "policy.json", &source.at("apps"), &ours_pub);
    let dir = home.path().join("bundle");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            dir.display().to_string(),
            "--images-from-list".into(),
            list.display().to_string(),
            "--verify-signatures".into(),
            policy.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    // Without --skip-unsigned: exit 1, every refused image named with its reason, no bundle.
    let strings = args(&[]);
    let argv: Vec<&str> = strings.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = pull_insecure(home.path(), &argv);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("3 image(s) refused"), "{stderr}");
    let line = |name: &str| {
        stderr
            .lines()
            .find(|l| l.contains(&format!("apps/{name}:v1")))
            .unwrap_or_else(|| panic!("{name} not named:\n{stderr}"))
            .to_string()
    };
    assert!(
        line("unsigned").contains("unsigned: no sigstore signature"),
        "{stderr}"
    );
    assert!(
        line("stranger").contains("not signed by the policy's key"),
        "{stderr}"
    );
    assert!(
        line("swapped").contains(&format!("names manifest {}", digests["signed"])),
        "{stderr}"
    );
    for accepted in ["apps/signed:", "apps/referred:"] {
        assert!(!stderr.contains(accepted), "{accepted} refused:\n{stderr}");
    }
    assert!(!dir.join("bundle.json").exists());

    // With --skip-unsigned: the signed ones and their signatures, the others listed.
    let strings = args(&["--skip-unsigned"]);
    let argv: Vec<&str> = strings.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = pull_insecure(home.path(), &argv);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for name in ["unsigned", "stranger", "swapped"] {
        assert!(
            stderr.contains("left out (--skip-unsigned)")
                && stderr.contains(&format!("apps/{name}:v1")),
            "{name} not listed:\n{stderr}"
        );
    }
    let prefix = source.host.replace(':', "_");
    let tags: Vec<(String, String)> = ls_json(&dir)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["tag"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let hex = |name: &str| digests[name].trim_start_matches("sha256:").to_string();
    let mut expected = vec![
        (
            format!("{prefix}/apps/referred"),
            format!("sha256-{}", hex("referred")),
        ),
        (format!("{prefix}/apps/referred"), "v1".to_string()),
        (
            format!("{prefix}/apps/signed"),
            format!("sha256-{}.sig", hex("signed")),
        ),
        (format!("{prefix}/apps/signed"), "v1".to_string()),
    ];
    expected.sort();
    assert_eq!(tags, expected);
    let metadata: Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    // SHA-256 by sha256sum, not by ferry's own hasher.
    let summed = run(Command::new("sha256sum").arg(&policy)).stdout;
    let policy_sha = String::from_utf8(summed).unwrap()[..64].to_string();
    assert_eq!(metadata["signature_policy"]["file"], "policy.json");
    assert_eq!(metadata["signature_policy"]["sha256"], policy_sha);
    assert_eq!(metadata["signature_policy"]["images"], 2);

    // The same check offline.
    let (code, text) = verify_output(&dir, &["--verify-signatures", policy.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("2 image(s) accepted"), "{text}");
    // Without --key, the names the policy was applied to are unauthenticated: said so.
    assert!(
        text.contains("warning: the policy was applied to the image names bundle.json gives"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "pulled under the signature policy policy.json (sha256 {policy_sha}), which accepted 2 image(s)"
        )),
        "{text}"
    );
    assert!(!text.contains("note:"), "{text}");
    let strict = policy_file(work.path(), "theirs.json", &source.at("apps"), &theirs_pub);
    let (code, text) = verify_output(&dir, &["--verify-signatures", strict.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("apps/signed:v1") && text.contains("apps/referred:v1"),
        "{text}"
    );
    assert!(
        text.contains("note: ") && text.contains("is not the policy the pull used"),
        "{text}"
    );

    // A push held to a policy the bundle does not meet: refused before the target hears a word.
    let before = requests(&target);
    let stderr = push_refused_unheard(
        home.path(),
        &target,
        &dir,
        &["--verify-signatures", strict.to_str().unwrap()],
    );
    assert!(stderr.contains("nothing was sent"), "{stderr}");

    // Pushed with the right policy, the signatures are at the target, and OpenSSL checks them.
    ferry_ok(&mut push_cmd(
        home.path(),
        &target,
        &dir,
        "mirror",
        &["--verify-signatures", policy.to_str().unwrap()],
    ));
    // The access log does count requests: the refusal above is not a log that says nothing.
    assert!(requests(&target) > before + 10, "{}", target.log());
    let signed_repo = format!("mirror/{prefix}/apps/signed");
    assert!(
        target
            .skopeo_tags(&signed_repo)
            .contains(&format!("sha256-{}.sig", hex("signed")))
    );
    let sig_manifest = target.raw_manifest(&format!("{signed_repo}:sha256-{}.sig", hex("signed")));
    let (payload, signature) = payload_and_signature(&target, &signed_repo, &sig_manifest);
    assert!(openssl_verifies(&ours_pub, &payload, &signature));
    assert!(!openssl_verifies(&theirs_pub, &payload, &signature));
    let payload: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digests["signed"]
    );

    let referred_repo = format!("mirror/{prefix}/apps/referred");
    let index: Value = serde_json::from_slice(
        &target.raw_manifest(&format!("{referred_repo}:sha256-{}", hex("referred"))),
    )
    .unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["artifactType"],
        "application/vnd.dev.cosign.artifact.sig.v1+json"
    );
    let sig_manifest = target.raw_manifest(&format!(
        "{referred_repo}@{}",
        entry["digest"].as_str().unwrap()
    ));
    let (payload, signature) = payload_and_signature(&target, &referred_repo, &sig_manifest);
    assert!(openssl_verifies(&ours_pub, &payload, &signature));

    // An index --platform would rewrite has a signature for bytes the bundle would not hold.
    let one = work.path().join("referred.txt");
    std::fs::write(&one, format!("{}\n", source.at("apps/referred:v1"))).unwrap();
    let (code, stdout, stderr) = pull_insecure(
        home.path(),
        &[
            home.path().join("narrow").to_str().unwrap(),
            "--dry-run",
            "--images-from-list",
            one.to_str().unwrap(),
            "--platform",
            "linux/amd64",
            "--verify-signatures",
            policy.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("apps/referred:v1: --platform rewrote its index"),
        "{stderr}"
    );
}

/// Opens a sigstore encrypted key with Python (hashlib.scrypt, PyNaCl's SecretBox) and prints
/// the public half of the PKCS#8 key inside, as PEM.
const OPEN_KEY: &str = r#"
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
fn one_image_list(registry: &Registry, work: &Path) -> PathBuf {
    let layout = work.join("one");
    make_layout(&layout, "v1", "image", &["--seed", "5"]);
    registry.seed(&layout, "v1", "tools/one:v1");
    let list = work.join("one.txt");
    std::fs::write(&list, format!("{}\n", registry.at("tools/one:v1"))).unwrap();
    list
}

#[test]
fn keygen_keys_sign_the_bundle_and_the_checkpoint_refuses_what_changed() {
    let source = Registry::start("plain");
    let target = Registry::start("plain");
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();

    // keygen: an encrypted key Python opens to a P-256 key whose public half is the .pub.
    let prefix = work.path().join("pullhost");
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .env("FERRY_KEY_PASSWORD", "correct horse")
            .arg("keygen")
            .arg(&prefix),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("correct horse"));
    let (key, public) = (prefix.with_extension("key"), prefix.with_extension("pub"));
    let opened = run(Command::new(PYTHON)
        .args(["-c", OPEN_KEY])
        .arg(&key)
        .arg("correct horse"));
    assert_eq!(
        String::from_utf8(opened.stdout).unwrap(),
        std::fs::read_to_string(&public).unwrap()
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the private key is readable by others");
    // Never overwritten.
    let before = std::fs::read(&key).unwrap();
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .env("FERRY_KEY_PASSWORD", "x")
            .arg("keygen")
            .arg(&prefix),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("pullhost.key exists"), "{stderr}");
    assert_eq!(std::fs::read(&key).unwrap(), before);

    // A wrong passphrase and a key of another kind stop the pull before anything is written.
    let list = one_image_list(&source, work.path());
    let dir = home.path().join("bundle");
    let pull = |key: &Path, passphrase: &str, extra: &[&str]| {
        let mut cmd = ferry(home.path());
        cmd.env("FERRY_KEY_PASSWORD", passphrase)
            .args(["--no-progress", "pull", "--insecure"])
            .arg(&dir)
            .arg("--images-from-list")
            .arg(&list)
            .arg("--sign-key")
            .arg(key)
            .args(extra);
        outcome(&mut cmd)
    };
    let (code, _, stderr) = pull(&key, "wrong horse", &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("{}: wrong passphrase", key.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong horse") && !dir.exists(), "{stderr}");
    let rsa = work.path().join("rsa.pem");
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&rsa));
    let (code, _, stderr) = pull(&rsa, "", &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!(
            "{}: not an ECDSA P-256 key (an RSA key)",
            rsa.display()
        )),
        "{stderr}"
    );
    assert!(!dir.exists());
    let rsa_pub = work.path().join("rsa.pub");
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&rsa)
        .arg("-out")
        .arg(&rsa_pub));
    let (code, text) = verify_output(work.path(), &["--key", rsa_pub.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "{}: not an ECDSA P-256 public key (an RSA key)",
            rsa_pub.display()
        )),
        "{text}"
    );
    let (code, text) = verify_output(work.path(), &["--key", key.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("this is a private key"), "{text}");

    // Signed at the seal; OpenSSL checks bundle.json.sig as the README says.
    let (code, stdout, stderr) = pull(&key, "correct horse", &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let text = verified(home.path(), &dir);
    assert!(
        text.contains("bundle.json.sig is present but not checked"),
        "{text}"
    );
    let metadata = std::fs::read(dir.join("bundle.json")).unwrap();
    let signature = std::fs::read_to_string(dir.join("bundle.json.sig")).unwrap();
    assert!(openssl_verifies(&public, &metadata, &signature));
    let (code, text) = verify_output(&dir, &["--key", public.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("bundle.json.sig: signed by the key given"),
        "{text}"
    );
    // A key named through a link (a mounted secret) is read as the key itself.
    let link = work.path().join("linked.pub");
    std::os::unix::fs::symlink(&public, &link).unwrap();
    let (code, text) = verify_output(&dir, &["--key", link.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");

    // Another key, a changed byte, no signature: verify and push refuse, the target hears nothing.
    let (other, other_pub) = python_key(work.path(), "other");
    let refused = |public: &Path, what: &str| {
        let (code, text) = verify_output(&dir, &["--key", public.to_str().unwrap()]);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains(what), "{text}");
        let stderr = push_refused_unheard(
            home.path(),
            &target,
            &dir,
            &["--key", public.to_str().unwrap()],
        );
        assert!(stderr.contains(what), "{stderr}");
    };
    refused(&other_pub, "does not verify with key");
    let mut changed = metadata.clone();
    let at = changed.iter().position(|b| *b == b'1').unwrap();
    changed[at] = b'2';
    std::fs::write(dir.join("bundle.json"), &changed).unwrap();
    refused(&public, "bundle.json changed after it was signed");
    std::fs::write(dir.join("bundle.json"), &metadata).unwrap();
    std::fs::rename(dir.join("bundle.json.sig"), work.path().join("kept.sig")).unwrap();
    refused(&public, "is not signed: bundle.json.sig is missing");
    std::fs::rename(work.path().join("kept.sig"), dir.join("bundle.json.sig")).unwrap();
    ferry_ok(&mut push_cmd(
        home.path(),
        &target,
        &dir,
        "mirror",
        &["--key", public.to_str().unwrap()],
    ));
    assert!(requests(&target) > 0);

    // --force re-seals and re-signs, here with a plain PKCS#8 key made by Python.
    let (code, stdout, stderr) = pull(&other, "", &["--force"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let metadata = std::fs::read(dir.join("bundle.json")).unwrap();
    let signature = std::fs::read_to_string(dir.join("bundle.json.sig")).unwrap();
    assert!(openssl_verifies(&other_pub, &metadata, &signature));
    assert!(!openssl_verifies(&public, &metadata, &signature));
}

#[test]
fn a_policy_with_an_unknown_field_is_named_before_anything_is_done() {
    let home = tempfile::tempdir().unwrap();
    let policy = home.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default": [{"type": "reject"}],
            "transports": {"docker": {"registry.example/apps": [
                {"type": "sigstoreSigned", "keyPath": "/k.pub", "signedIdenity": {"type": "matchRepository"}}
            ]}}}"#,
    )
    .unwrap();
    let dir = home.path().join("bundle");
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["pull", "--insecure"])
            .arg(&dir)
            .args(["--images", "nonexistent.yaml", "--verify-signatures"])
            .arg(&policy),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: transports.docker[\"registry.example/apps\"][0].signedIdenity: unknown field",
            policy.display()
        )),
        "{stderr}"
    );
    assert!(!dir.exists());
    std::fs::write(&policy, r#"{"default": [{"type": "signedByAnyone"}]}"#).unwrap();
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["verify", "--verify-signatures"])
            .arg(&policy)
            .arg(home.path()),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: default[0].type: unknown requirement type 'signedByAnyone'",
            policy.display()
        )),
        "{stderr}"
    );
}

#[test]
fn signatures_only_the_referrers_api_knows_are_found() {
    let registry = Registry::start("plain");
    // distribution 2.8 has no referrers API: the proxy adds it, indexing what is pushed through.
    let source = FaultProxy::start(&registry, &["--referrers-api"]);
    let proxied = Registry {
        dir: tempfile::tempdir().unwrap(),
        host: source.host.clone(),
        tls: false,
        user: None,
        password: None,
        ca: None,
        cert_dir: None,
    };
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (ours, ours_pub) = python_key(work.path(), "ours");
    let layout = work.path().join("layout");
    let digest = make_layout(&layout, "v1", "image", &["--seed", "31"]);
    registry.seed(&layout, "v1", "apps/api:v1");
    let signature = cosign_sign(
        &proxied,
        "apps/api",
        "v1",
        &ours,
        &["--referrer", "--api-only"],
    );
    let hex = digest.trim_start_matches("sha256:");
    assert!(
        !registry
            .skopeo_tags("apps/api")
            .iter()
            .any(|t| t.contains(hex))
    );

    let list = work.path().join("images.txt");
    std::fs::write(&list, format!("{}/apps/api:v1\n", source.host)).unwrap();
    let policy = policy_file(
        work.path(),
        "policy.json",
        &format!("{}/apps", source.host),
        &ours_pub,
    );
    let dir = home.path().join("bundle");
    let (code, stdout, stderr) = pull_insecure(
        home.path(),
        &[
            dir.to_str().unwrap(),
            "--images-from-list",
            list.to_str().unwrap(),
            "--verify-signatures",
            policy.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        source
            .requests()
            .iter()
            .any(|r| r.contains(&format!("/referrers/{digest}")))
    );
    let tags: Vec<String> = ls_json(&dir)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tag"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tags, [format!("sha256-{hex}"), "v1".to_string()]);
    let (code, text) = verify_output(&dir, &["--verify-signatures", policy.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("1 image(s) accepted"), "{text}");

    // The signature manifest is what the bundle carries, byte for byte.
    let extracted = tempfile::tempdir().unwrap();
    let archive = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tar"))
        .unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(extracted.path()));
    let held = walk_files(extracted.path())
        .into_iter()
        .find(|p| p.ends_with(signature.trim_start_matches("sha256:")))
        .expect("the signature manifest is in the archive");
    let bytes = std::fs::read(held).unwrap();
    assert_eq!(
        format!("sha256:{}", sha256_hex(&bytes)),
        signature,
        "the signature manifest changed on the way"
    );
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
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

/// SHA-256 by `sha256sum`, not by ferry's own hasher.
fn sha256_hex(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, bytes).unwrap();
    String::from_utf8(run(Command::new("sha256sum").arg(&file)).stdout).unwrap()[..64].to_string()
}

/// Runs a command on a pseudo-terminal, typing each of `ANSWERS` (comma-separated) after a
/// prompt ending in ": ", once the terminal's echo is off (what is typed before may be flushed);
/// prints what the terminal showed and exits as the command did.
const ON_A_TERMINAL: &str = r#"
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

fn on_a_terminal(home: &Path, args: &[&str], answers: &[&str]) -> (i32, String) {
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

#[test]
fn passphrases_typed_at_a_terminal_and_keys_sealed_elsewhere() {
    let source = Registry::start("plain");
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();

    // keygen asks twice on the terminal, shows neither, and refuses two different answers.
    let prefix = work.path().join("typed");
    let prefix_arg = prefix.to_str().unwrap();
    let (code, shown) = on_a_terminal(
        home.path(),
        &["keygen", prefix_arg],
        &["tic tac", "tic toc"],
    );
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("the two passphrases differ"), "{shown}");
    assert!(!prefix.with_extension("key").exists());
    let (code, shown) = on_a_terminal(
        home.path(),
        &["keygen", prefix_arg],
        &["tic tac", "tic tac"],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("passphrase for") && !shown.contains("tic tac"),
        "{shown}"
    );
    let opened = run(Command::new(PYTHON)
        .args(["-c", OPEN_KEY])
        .arg(prefix.with_extension("key"))
        .arg("tic tac"));
    assert_eq!(
        String::from_utf8(opened.stdout).unwrap(),
        std::fs::read_to_string(prefix.with_extension("pub")).unwrap()
    );

    // Off a terminal and without FERRY_KEY_PASSWORD there is nobody to ask.
    let list = one_image_list(&source, work.path());
    let dir = home.path().join("bundle");
    let key = prefix.with_extension("key");
    let pull_args = |key: &Path| -> Vec<String> {
        [
            "--no-progress",
            "pull",
            "--insecure",
            dir.to_str().unwrap(),
            "--images-from-list",
            list.to_str().unwrap(),
            "--sign-key",
            key.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .env_remove("FERRY_KEY_PASSWORD")
            .args(pull_args(&key))
            .stdin(std::process::Stdio::null()),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("a passphrase is needed and none was given"),
        "{stderr}"
    );
    assert!(stderr.contains("FERRY_KEY_PASSWORD"), "{stderr}");

    // The pull asks for the passphrase on the terminal, then signs.
    let args = pull_args(&key);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, shown) = on_a_terminal(home.path(), &argv, &["tic tac"]);
    assert_eq!(code, 0, "{shown}");
    let metadata = std::fs::read(dir.join("bundle.json")).unwrap();
    let signature = std::fs::read_to_string(dir.join("bundle.json.sig")).unwrap();
    assert!(openssl_verifies(
        &prefix.with_extension("pub"),
        &metadata,
        &signature
    ));

    // A key sealed by another implementation (Python, cosign 1's PEM label) signs the same way.
    let (plain, plain_pub) = python_key(work.path(), "elsewhere");
    let sealed = work.path().join("elsewhere.key");
    run(Command::new(PYTHON)
        .arg(repo_root().join("scripts/cosign-sign.py"))
        .arg("seal")
        .arg(&plain)
        .arg("far away")
        .arg("ENCRYPTED COSIGN PRIVATE KEY")
        .arg(&sealed));
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .env("FERRY_KEY_PASSWORD", "far away")
            .args(pull_args(&sealed))
            .arg("--force"),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let metadata = std::fs::read(dir.join("bundle.json")).unwrap();
    let signature = std::fs::read_to_string(dir.join("bundle.json.sig")).unwrap();
    assert!(openssl_verifies(&plain_pub, &metadata, &signature));
}

#[test]
fn a_resumed_pull_signs_what_it_seals() {
    let registry = Registry::start("plain");
    let proxy = FaultProxy::start(&registry, &["--rate", "20"]);
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    make_big_layout(&work.path().join("layout"), "v1", 48);
    registry.seed(&work.path().join("layout"), "v1", "big/app:v1");
    let list = work.path().join("images.txt");
    std::fs::write(&list, format!("{}/big/app:v1\n", proxy.host)).unwrap();
    let (key, public) = python_key(work.path(), "pullhost");
    let dir = home.path().join("bundle");
    let pull = || {
        let mut cmd = ferry(home.path());
        cmd.args(["--no-progress", "pull", "--insecure"])
            .arg(&dir)
            .arg("--images-from-list")
            .arg(&list)
            .arg("--sign-key")
            .arg(&key);
        cmd
    };
    // Cut off mid-blob: the journal says how far it got, nothing is signed yet.
    let mut child = pull().spawn().unwrap();
    let journal = dir.join(".tmp/ferry-pull/journal");
    let reached = wait_until(60, || {
        std::fs::read_to_string(&journal).is_ok_and(|j| j.lines().any(|l| l.starts_with("at ")))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(reached, "the pull never got far enough to be cut");
    assert!(!dir.join("bundle.json").exists() && !dir.join("bundle.json.sig").exists());

    let (code, stdout, stderr) = outcome(&mut pull());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("resuming the pull started"), "{stderr}");
    verified(home.path(), &dir);
    let metadata = std::fs::read(dir.join("bundle.json")).unwrap();
    let signature = std::fs::read_to_string(dir.join("bundle.json.sig")).unwrap();
    assert!(openssl_verifies(&public, &metadata, &signature));
}

#[test]
fn the_signed_identity_is_held_to_the_policys_rule() {
    let source = Registry::start("plain");
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (ours, ours_pub) = python_key(work.path(), "ours");
    let layout = work.path().join("layout");
    for (i, name) in ["moved", "exact"].iter().enumerate() {
        make_layout(&layout, name, "image", &["--seed", &(41 + i).to_string()]);
        source.seed(&layout, name, &format!("apps/{name}:v1"));
    }
    // Signed upstream under the vendor's name, with a tag; and here under its own full name.
    cosign_sign(
        &source,
        "apps/moved",
        "v1",
        &ours,
        &["--identity", "upstream.example/vendor/moved:v1"],
    );
    let exact_name = source.at("apps/exact:v1");
    cosign_sign(
        &source,
        "apps/exact",
        "v1",
        &ours,
        &["--identity", &exact_name],
    );
    let list = work.path().join("images.txt");
    std::fs::write(
        &list,
        format!("{}\n{exact_name}\n", source.at("apps/moved:v1")),
    )
    .unwrap();

    let scope = source.at("apps");
    let plan_under = |identity: Option<Value>| {
        let mut requirement = serde_json::json!({"type": "sigstoreSigned", "keyPath": ours_pub});
        if let Some(identity) = identity {
            requirement["signedIdentity"] = identity;
        }
        let policy = work.path().join("policy.json");
        let document = serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {scope.as_str(): [requirement]}},
        });
        std::fs::write(&policy, document.to_string()).unwrap();
        let (code, stdout, stderr) = outcome(
            ferry(home.path())
                .args(["--no-progress", "pull", "--insecure", "--dry-run"])
                .arg(home.path().join("bundle"))
                .arg("--images-from-list")
                .arg(&list)
                .arg("--verify-signatures")
                .arg(&policy),
        );
        let refused = |name: &str| {
            stderr
                .lines()
                .any(|l| l.contains(&format!("apps/{name}:v1:")) && l.contains("signed as"))
        };
        (
            code,
            refused("moved"),
            refused("exact"),
            format!("{stdout}{stderr}"),
        )
    };
    // Without signedIdentity (matchRepoDigestOrExact): the tag must be the one signed.
    let (code, moved, exact, text) = plan_under(None);
    assert_eq!((code, moved, exact), (1, true, false), "{text}");
    assert!(
        text.contains("which matchRepoDigestOrExact does not accept"),
        "{text}"
    );
    let (code, moved, exact, text) =
        plan_under(Some(serde_json::json!({"type": "matchRepository"})));
    assert_eq!((code, moved, exact), (1, true, false), "{text}");
    let (code, moved, exact, text) = plan_under(Some(serde_json::json!({
        "type": "remapIdentity", "prefix": scope, "signedPrefix": "upstream.example/vendor",
    })));
    assert_eq!((code, moved, exact), (1, false, true), "{text}");
    let (code, moved, exact, text) = plan_under(Some(serde_json::json!({
        "type": "exactRepository", "dockerRepository": "upstream.example/vendor/moved",
    })));
    assert_eq!((code, moved, exact), (1, false, true), "{text}");
    let (code, moved, exact, text) = plan_under(Some(serde_json::json!({
        "type": "exactReference", "dockerReference": exact_name,
    })));
    assert_eq!((code, moved, exact), (1, true, false), "{text}");
}

#[test]
fn a_helm_chart_read_over_http_answers_to_the_policys_default() {
    let helm = HelmRepo::serve(None);
    let tgz = chart_tgz("app", "2.0.0", 1024);
    helm.publish(&[("app", "2.0.0", &tgz)]);
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let config = charts_file(work.path(), &helm, "app", "*", 1);
    let policy = work.path().join("policy.json");
    let pull = |default: &str| {
        std::fs::write(
            &policy,
            format!(
                r#"{{"default": [{{"type": "{default}"}}],
                     "transports": {{"docker": {{"": [{{"type": "reject"}}]}}}}}}"#
            ),
        )
        .unwrap();
        let dir = home.path().join(default);
        let (code, stdout, stderr) = pull_insecure(
            home.path(),
            &[
                dir.to_str().unwrap(),
                "--images",
                config.to_str().unwrap(),
                "--verify-signatures",
                policy.to_str().unwrap(),
            ],
        );
        (code, format!("{stdout}{stderr}"), dir)
    };
    // It has no docker name: the docker transport's scopes do not speak for it, the default does.
    let (code, text, dir) = pull("insecureAcceptAnything");
    assert_eq!(code, 0, "{text}");
    let (code, text) = verify_output(&dir, &["--verify-signatures", policy.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let (code, text, _) = pull("reject");
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("{}/", helm.url))
            && text.contains("the policy's default rejects it"),
        "{text}"
    );
}
