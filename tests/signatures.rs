//! Trust across the gap, checked by tools that are not ferry. Signatures are made by
//! `scripts/cosign-sign.py` from cosign's published format (Python's `cryptography`), pushed
//! over the registry API; OpenSSL checks what ferry carries and signs; Python's hashlib.scrypt
//! and PyNaCl open the key `ferry keygen` writes. Debian's own modules are used, so the scripts
//! run with /usr/bin/python3 whatever python3 comes first in PATH.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

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
