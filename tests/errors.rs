//! Bad input ends in a short message, a `hint:` where the fix is known, the documented exit
//! code, no panic and no secret.

mod common;

use common::*;

fn assert_clean_failure(code: i32, expected: i32, stderr: &str, needles: &[&str]) {
    assert_eq!(code, expected, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "expected '{needle}' in:\n{stderr}");
    }
    assert!(stderr.lines().count() <= 6, "too long:\n{stderr}");
}

#[test]
fn wrong_password() {
    let registry = Registry::start("basic");
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let password = "Wr0ngPassw0rdXyz";
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .args([
                "copy",
                "--insecure",
                "--source-login",
                "ferry",
                "--source-password",
                password,
            ])
            .arg(registry.at("src/img:v1"))
            .arg(format!("oci:{}:x", out.path().join("l").display())),
    );
    assert_clean_failure(
        code,
        1,
        &stderr,
        &["authentication failed", "hint:", "password", &registry.host],
    );
    assert!(!stderr.contains(password) && !stdout.contains(password));
    assert!(
        !out.path().join("l/index.json").exists(),
        "nothing is left looking like a copy"
    );
}

#[test]
fn no_credentials_for_a_registry_that_wants_them() {
    let registry = Registry::start("token");
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["copy", "--insecure"])
            .arg(format!("oci:{}:x", out.path().join("missing").display()))
            .arg(registry.at("dst/img:v1")),
    );
    // The layout does not exist: that is found before any network traffic.
    assert_clean_failure(code, 1, &stderr, &["not an OCI image layout"]);

    let layout = sample_layout();
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["copy", "--insecure"])
            .arg(format!("oci:{}:image", layout.path().display()))
            .arg(registry.at("dst/img:v1")),
    );
    assert_clean_failure(
        code,
        1,
        &stderr,
        &[
            "authentication failed",
            "hint:",
            "--registry-login",
            "dst/img",
        ],
    );
    // Nothing reached the target: the tag is not there (skopeo, with the registry's token).
    assert!(
        registry.lacks("dst/img:v1"),
        "the tag must not exist at the target"
    );
}

#[test]
fn credentials_come_from_the_docker_config() {
    let registry = Registry::start("basic");
    let layout = sample_layout();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".docker")).unwrap();
    let auth = format!(
        "{}:{}",
        registry.user.as_ref().unwrap(),
        registry.password.as_ref().unwrap()
    );
    let encoded = base64_encode(auth.as_bytes());
    std::fs::write(
        home.path().join(".docker/config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{encoded}"}}}}}}"#,
            registry.host
        ),
    )
    .unwrap();
    ferry_ok(
        ferry(home.path())
            .args(["copy", "--insecure"])
            .arg(format!("oci:{}:image", layout.path().display()))
            .arg(registry.at("dst/img:v1")),
    );
    assert_eq!(
        registry.raw_manifest("dst/img:v1"),
        layout_raw_manifest(layout.path(), "image")
    );
}

fn base64_encode(data: &[u8]) -> String {
    let out = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn unknown_host() {
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["copy", "no-such-registry.invalid/a/b:v1"])
            .arg(format!("oci:{}:x", out.path().join("l").display())),
    );
    assert_clean_failure(
        code,
        1,
        &stderr,
        &["cannot reach no-such-registry.invalid", "hint:"],
    );
    assert!(!out.path().join("l/index.json").exists());
}

#[test]
fn untrusted_certificate() {
    let registry = Registry::start("tls");
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:x", out.path().join("l").display());
    let (code, _, stderr) =
        outcome(ferry(home.path()).args(["copy", &registry.at("src/img:v1"), &dest]));
    assert_clean_failure(
        code,
        1,
        &stderr,
        &["TLS handshake", "hint:", "SSL_CERT_FILE", &registry.host],
    );
    assert!(!out.path().join("l/index.json").exists());

    // A CA file that cannot be read is an error of its own, not a silent fallback.
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .env("SSL_CERT_FILE", out.path().join("no-such-ca.pem"))
            .args(["copy", &registry.at("src/img:v1"), &dest]),
    );
    assert_clean_failure(code, 1, &stderr, &["SSL_CERT_FILE", "cannot read"]);

    // --tls-skip-verify gets through the handshake (and then finds no such image); seeded,
    // the copy succeeds and is the registry's image byte for byte.
    let (code, _, stderr) = outcome(ferry(home.path()).args([
        "copy",
        "--tls-skip-verify",
        &registry.at("src/img:v1"),
        &dest,
    ]));
    assert_clean_failure(code, 1, &stderr, &["not found", "src/img"]);
    let layout = sample_layout();
    registry.seed(layout.path(), "image", "src/img:v1");
    ferry_ok(ferry(home.path()).args([
        "copy",
        "--tls-skip-verify",
        &registry.at("src/img:v1"),
        &dest,
    ]));
    assert_eq!(
        layout_raw_manifest(&out.path().join("l"), "x"),
        layout_raw_manifest(layout.path(), "image")
    );
    skopeo_verifies_layout(&out.path().join("l"), "x");
}

#[test]
fn missing_repository_or_tag() {
    let registry = Registry::start("plain");
    let layout = sample_layout();
    registry.seed(layout.path(), "image", "src/img:v1");
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:x", out.path().join("l").display());
    for missing in ["nope/img:v1", "src/img:v9"] {
        let (code, _, stderr) =
            outcome(ferry(home.path()).args(["copy", "--insecure", &registry.at(missing), &dest]));
        assert_clean_failure(code, 1, &stderr, &["not found", "hint:"]);
    }
    assert!(!out.path().join("l/index.json").exists());
}

#[test]
fn malformed_references_are_usage_errors() {
    let home = tempfile::tempdir().unwrap();
    for (bad, says) in [
        ("https://r.example.com/a:b", "without a scheme"),
        ("r.example.com/UPPER:b", "lowercase"),
        ("justaname", "host[:port]/path"),
        ("r.example.com/a@sha256:12", "64 hex"),
    ] {
        let (code, _, stderr) = outcome(ferry(home.path()).args(["copy", bad, "oci:/tmp/x:y"]));
        assert_eq!(code, 2, "{bad}: {stderr}");
        assert!(stderr.contains(says), "{bad}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
    let (code, _, stderr) = outcome(ferry(home.path()).args([
        "copy",
        "--source-login",
        "u",
        "r.example.com/a:b",
        "oci:/tmp/x:y",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--source-password"), "{stderr}");
}

#[test]
fn proxy_settings_from_the_environment_are_honoured() {
    let registry = Registry::start("plain");
    let layout = sample_layout();
    registry.seed(layout.path(), "image", "src/img:v1");
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing answers there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let copy = |no_proxy: &str| {
        outcome(
            ferry(home.path())
                .env("HTTP_PROXY", format!("http://{dead}"))
                .env("http_proxy", format!("http://{dead}"))
                .env("NO_PROXY", no_proxy)
                .env("no_proxy", no_proxy)
                .args(["copy", "--insecure", &registry.at("src/img:v1")])
                .arg(format!("oci:{}:img", out.path().join("l").display())),
        )
    };
    let (code, _, stderr) = copy("");
    assert_clean_failure(code, 1, &stderr, &["cannot reach", "PROXY"]);
    assert!(!out.path().join("l/index.json").exists());
    let (code, _, stderr) = copy("127.0.0.1");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        layout_raw_manifest(&out.path().join("l"), "img"),
        layout_raw_manifest(layout.path(), "image")
    );
    skopeo_verifies_layout(&out.path().join("l"), "img");
}

/// Push to a registry that refuses the login, to nowhere, to a host without a path, of a
/// directory with no bundle: each a short message, nothing secret, the documented exit code.
#[test]
fn bad_targets_end_in_short_errors() {
    let home = tempfile::tempdir().unwrap();
    let layouts = home.path().join("layouts");
    make_layout(&layouts, "v1", "image", &["--seed", "3"]);
    let bundle = home.path().join("bundle");
    let entries = ferry::bundle::pack::layout_entries(&layouts, "").unwrap();
    pack_archives(
        &bundle,
        vec![("platform.tar".into(), entries)],
        &ferry::bundle::pack::PackOptions::default(),
    )
    .unwrap();
    let short = assert_clean_failure;

    let registry = Registry::start("basic");
    let password = "Wr0ngAgainXyz";
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .args(["push", "--insecure", "-u", "ferry", "-p", password])
            .arg(&bundle)
            .arg(registry.at("x/y")),
    );
    short(code, 1, &stderr, &["authentication failed", "hint:"]);
    assert!(!stderr.contains(password) && !stdout.contains(password));

    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["push", "--insecure"])
            .arg(&bundle)
            .arg("127.0.0.1:1/x"),
    );
    short(code, 1, &stderr, &["cannot reach 127.0.0.1:1"]);

    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["push", "--insecure"])
            .arg(&bundle)
            .arg(&registry.host),
    );
    short(code, 2, &stderr, &["missing the repository path"]);

    let empty = home.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["push", "--insecure"])
            .arg(&empty)
            .arg(registry.at("x/y")),
    );
    short(code, 1, &stderr, &["holds no bundle"]);
}
