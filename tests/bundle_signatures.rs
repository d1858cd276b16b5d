//! Signed bundles, checked by tools that are not ferry: the key `ferry keygen` writes is opened
//! by Python (hashlib.scrypt, PyNaCl), `bundle.json.sig` is checked by OpenSSL, and the
//! checkpoint (`verify --key`, `push --key`) refuses another key, a changed byte or no
//! signature before the target hears a word; passphrases are typed on a real pseudo-terminal.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

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
