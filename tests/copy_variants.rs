//! `ferry copy` through every transport and auth variant of a real registry: registry to
//! registry, registry to OCI layout, and layout to registry, checked byte for byte by skopeo.

mod common;

use common::*;

/// Copies the three kinds of content through registries of one variant and checks every
/// result with skopeo.
fn round_trip(variant: &str) {
    let layout = sample_layout();
    let a = Registry::start(variant);
    let b = Registry::start(variant);
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // Each test registry has a CA of its own; a copy between two of them trusts both.
    let both_cas = a.ca.as_ref().zip(b.ca.as_ref()).map(|(ca_a, ca_b)| {
        let path = out.path().join("both-cas.pem");
        let mut pem = std::fs::read(ca_a).unwrap();
        pem.extend(std::fs::read(ca_b).unwrap());
        std::fs::write(&path, pem).unwrap();
        path
    });
    let secrets: Vec<String> = [&a.password, &b.password]
        .into_iter()
        .flatten()
        .cloned()
        .collect();

    let creds = |cmd: &mut std::process::Command, src: &Registry, dst: Option<&Registry>| {
        if let (Some(u), Some(p)) = (&src.user, &src.password) {
            cmd.args(["--source-login", u, "--source-password", p]);
        }
        if let Some(dst) = dst
            && let (Some(u), Some(p)) = (&dst.user, &dst.password)
        {
            // The environment is the other way to give them; exercise it too.
            cmd.env("FERRY_REGISTRY_LOGIN", u)
                .env("FERRY_REGISTRY_PASSWORD", p);
        }
    };

    for kind in KINDS {
        a.seed(layout.path(), kind, &format!("src/{kind}:v1"));
        let source = a.raw_manifest(&format!("src/{kind}:v1"));

        // registry -> registry (through a staging directory: two different registries)
        let mut cmd = ferry(home.path());
        cmd.args([
            "copy",
            &a.at(&format!("src/{kind}:v1")),
            &b.at(&format!("dst/{kind}:v1")),
        ]);
        a.ferry_transport(&mut cmd);
        if let Some(both) = &both_cas {
            cmd.env("SSL_CERT_FILE", both);
        }
        creds(&mut cmd, &a, Some(&b));
        let log = ferry_ok(&mut cmd);
        assert_eq!(
            b.raw_manifest(&format!("dst/{kind}:v1")),
            source,
            "{variant} {kind}"
        );

        // registry -> layout
        let mut cmd = ferry(home.path());
        let dir = out.path().join(kind);
        cmd.args([
            "copy",
            &a.at(&format!("src/{kind}:v1")),
            &format!("oci:{}:{kind}", dir.display()),
        ]);
        a.ferry_transport(&mut cmd);
        creds(&mut cmd, &a, None);
        let log2 = ferry_ok(&mut cmd);
        assert_eq!(
            layout_raw_manifest(&dir, kind),
            source,
            "{variant} {kind} layout"
        );
        skopeo_verifies_layout(&dir, kind);

        // layout -> registry, under another tag
        let mut cmd = ferry(home.path());
        cmd.args([
            "copy",
            &format!("oci:{}:{kind}", dir.display()),
            &b.at(&format!("back/{kind}:v2")),
        ]);
        b.ferry_transport(&mut cmd);
        if let (Some(u), Some(p)) = (&b.user, &b.password) {
            cmd.args(["-u", u, "-p", p]);
        }
        let log3 = ferry_ok(&mut cmd);
        assert_eq!(
            b.raw_manifest(&format!("back/{kind}:v2")),
            source,
            "{variant} {kind} back"
        );

        for secret in &secrets {
            for text in [&log, &log2, &log3] {
                assert!(
                    !text.contains(secret.as_str()),
                    "a password leaked into the output"
                );
            }
        }
    }
}

#[test]
fn plain_http() {
    round_trip("plain");
}

#[test]
fn htpasswd_basic_auth() {
    round_trip("basic");
}

#[test]
fn tls_with_the_ca_from_ssl_cert_file() {
    round_trip("tls");
}

#[test]
fn tls_and_basic_auth() {
    round_trip("tls-basic");
}

#[test]
fn bearer_tokens() {
    round_trip("token");
}

#[test]
fn a_second_copy_sends_nothing_and_same_registry_copies_mount() {
    let layout = sample_layout();
    let a = Registry::start("plain");
    let b = Registry::start("plain");
    let home = tempfile::tempdir().unwrap();
    a.seed(layout.path(), "index", "src/multi:v1");

    let copy = |from: String, to: String| {
        let mut cmd = ferry(home.path());
        cmd.args(["copy", "--insecure", &from, &to]);
        ferry_ok(&mut cmd)
    };
    // What the registry's access log says ferry did, not what ferry says.
    let access = |registry: &Registry, needle: &str| {
        registry
            .log()
            .lines()
            .filter(|l| l.contains("ferry/") && l.contains(needle))
            .count()
    };
    let blob_puts = |registry: &Registry| access(registry, "\"PUT /v2/dst/multi/blobs/uploads/");
    let first = copy(a.at("src/multi:v1"), b.at("dst/multi:v1"));
    assert!(first.contains("6 blobs sent"), "{first}");
    assert_eq!(blob_puts(&b), 6);
    let again = copy(a.at("src/multi:v1"), b.at("dst/multi:v1"));
    assert!(
        again.contains("0 blobs sent") && again.contains("6 present"),
        "{again}"
    );
    assert_eq!(blob_puts(&b), 6, "the second copy uploaded nothing");
    let mounted = copy(b.at("dst/multi:v1"), b.at("other/multi:v1"));
    assert!(mounted.contains("6 mounted"), "{mounted}");
    let mounts = b
        .log()
        .lines()
        .filter(|l| {
            l.contains("\"POST /v2/other/multi/blobs/uploads/?mount=sha256")
                && l.contains("\" 201 ")
        })
        .count();
    assert_eq!(mounts, 6, "the registry linked all six");
    assert_eq!(access(&b, "\"PUT /v2/other/multi/blobs/uploads/"), 0);
    assert_eq!(
        b.raw_manifest("other/multi:v1"),
        a.raw_manifest("src/multi:v1")
    );
}

#[test]
fn chunked_uploads_land_byte_for_byte() {
    let layout = tempfile::tempdir().unwrap();
    make_layout(
        layout.path(),
        "big",
        "image",
        &[
            "--layers",
            "2",
            "--layer-size",
            "3000000",
            "--compress",
            "none",
        ],
    );
    let b = Registry::start("plain");
    let home = tempfile::tempdir().unwrap();
    let mut cmd = ferry(home.path());
    cmd.args(["copy", "--insecure", "--upload-chunk-size", "1MB"])
        .arg(format!("oci:{}:big", layout.path().display()))
        .arg(b.at("chunked/big:v1"));
    ferry_ok(&mut cmd);
    // Two layers of 3 MB in PATCHes of at most 1 MB: at least six, by the registry's count.
    let patches = b
        .log()
        .lines()
        .filter(|l| l.contains("\"PATCH /v2/chunked/big/blobs/uploads/"))
        .count();
    assert!(patches >= 6, "{patches} PATCHes");
    assert_eq!(
        b.raw_manifest("chunked/big:v1"),
        layout_raw_manifest(layout.path(), "big")
    );
    // skopeo reads the chunked upload back, every blob checked against its digest.
    b.skopeo_verifies("chunked/big:v1");
}

#[test]
fn layouts_written_by_ferry_are_read_by_umoci_and_skopeo() {
    let layout = sample_layout();
    let a = Registry::start("plain");
    let home = tempfile::tempdir().unwrap();
    a.seed(layout.path(), "image", "src/img:v1");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("layout");
    let mut cmd = ferry(home.path());
    cmd.args([
        "copy",
        "--insecure",
        &a.at("src/img:v1"),
        &format!("oci:{}:img", dir.display()),
    ]);
    ferry_ok(&mut cmd);

    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let annotations = &index["manifests"][0]["annotations"];
    assert_eq!(annotations["org.opencontainers.image.ref.name"], "img");
    assert_eq!(annotations["io.deckhouse.image.short_tag"], "img");
    assert!(
        !dir.join(".ferry-partial").exists(),
        "the work directory was left behind"
    );
    // Ordinary permissions, the umask honoured: another user (a registry's service account)
    // must be able to read what ferry wrote.
    let umask = u32::from_str_radix(
        String::from_utf8(
            std::process::Command::new("sh")
                .args(["-c", "umask"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim(),
        8,
    )
    .unwrap();
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    for file in ["oci-layout", "index.json"] {
        assert_eq!(mode(&dir.join(file)), 0o666 & !umask, "{file}");
    }
    for blob in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        assert_eq!(mode(&blob.unwrap().path()), 0o666 & !umask);
    }
    assert_eq!(mode(&dir.join("blobs")), 0o777 & !umask);

    let bundle = out.path().join("unpacked");
    let status = std::process::Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:img", dir.display()))
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(status.success(), "umoci could not unpack the layout");
    let file = bundle.join("rootfs/data/layer-1.bin");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 100_000);
    skopeo_verifies_layout(&dir, "img");

    // layout -> layout: every blob is re-verified on the way in.
    let copy = out.path().join("copy");
    ferry_ok(ferry(home.path()).args([
        "copy",
        &format!("oci:{}:img", dir.display()),
        &format!("oci:{}:again", copy.display()),
    ]));
    assert_eq!(
        layout_raw_manifest(&copy, "again"),
        layout_raw_manifest(&dir, "img")
    );
    skopeo_verifies_layout(&copy, "again");
}
