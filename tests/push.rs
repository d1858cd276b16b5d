//! `ferry push` end to end: bundles made by `ferry pull` from a seeded registry, and bundles in
//! d8's format, pushed into real registries (TLS with basic auth, bearer tokens, nginx refusing
//! big bodies); skopeo confirms every tag byte for byte, the registry's access log counts what
//! was sent.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

const ROOT: &str = "sample/ee";

fn pull(home: &Path, source: &str, dir: &Path, args: &[&str]) {
    ferry_ok(
        ferry(home)
            .args(["-q", "pull"])
            .arg(dir)
            .args(["--source", source, "--insecure"])
            .args(args),
    );
    verified(home, dir);
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a.to_string(),
        (true, false) => b.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// skopeo's raw manifest for every (repository, reference), a few at a time.
fn raw_manifests(registry: &Registry, references: &[String]) -> BTreeMap<String, Vec<u8>> {
    let found = std::sync::Mutex::new(BTreeMap::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(reference) = references.get(i) else {
                        break;
                    };
                    let raw = registry.raw_manifest(reference);
                    found.lock().unwrap().insert(reference.clone(), raw);
                }
            });
        }
    });
    found.into_inner().unwrap()
}

/// Every tag the bundle lists is at the target with the source's exact manifest, and every
/// digest-pinned component resolves there by digest.
fn assert_target_matches_source(
    home: &Path,
    bundle: &Path,
    source: &Registry,
    target: &Registry,
    target_root: &str,
) {
    let images = listed(home, bundle);
    let reference = |root: &str, image: &Value| {
        format!(
            "{}:{}",
            join(root, image["path"].as_str().unwrap()),
            image["tag"].as_str().unwrap()
        )
    };
    // Components live in the source by digest only; the bundle tags them with the hex.
    let in_source = |image: &Value| {
        let tag = image["tag"].as_str().unwrap();
        if tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            format!(
                "{}@sha256:{tag}",
                join(ROOT, image["path"].as_str().unwrap())
            )
        } else {
            reference(ROOT, image)
        }
    };
    let wanted: Vec<String> = images.iter().map(in_source).collect();
    let got: Vec<String> = images.iter().map(|i| reference(target_root, i)).collect();
    let from_source = raw_manifests(source, &wanted);
    let at_target = raw_manifests(target, &got);
    for (image, (w, g)) in images.iter().zip(wanted.iter().zip(&got)) {
        assert_eq!(from_source[w], at_target[g], "{g}");
        let digest = image["digest"].as_str().unwrap();
        assert_eq!(ferry::digest::Digest::of(&at_target[g]).to_string(), digest);
    }
    let pinned: Vec<String> = images
        .iter()
        .filter(|i| i["path"] == "" && i["tag"].as_str().unwrap().len() == 64)
        .map(|i| format!("{target_root}@{}", i["digest"].as_str().unwrap()))
        .collect();
    assert!(!pinned.is_empty());
    let resolved = raw_manifests(target, &pinned);
    assert_eq!(resolved.len(), pinned.len());
}

#[test]
fn a_pulled_bundle_lands_byte_for_byte_behind_tls_and_basic_auth_and_behind_tokens() {
    let source = Registry::start("plain");
    let src = seed_sample(&source, ROOT, &[]);
    let home = tempfile::tempdir().unwrap();
    let bundle = home.path().join("bundle");
    pull(
        home.path(),
        &src,
        &bundle,
        &["-c", "100KB", "--gost-digest"],
    );

    for variant in ["tls-basic", "token"] {
        let target = Registry::start(variant);
        // A bare file name: the receipt goes to the current directory (it once failed to
        // sync "" after writing it, with exit 1).
        let receipt_file = home.path().join(format!("{variant}.json"));
        let (code, stdout, stderr) = outcome(
            push_cmd(home.path(), &target, &bundle, "mirror/ee", &[])
                .current_dir(home.path())
                .arg("--receipt")
                .arg(format!("{variant}.json")),
        );
        assert_eq!(code, 0, "{variant}: {stderr}");
        assert!(stdout.contains("0 skipped"), "{stdout}");
        assert!(
            !stdout.contains(target.password.as_deref().unwrap())
                && !stderr.contains(target.password.as_deref().unwrap())
        );
        assert_target_matches_source(home.path(), &bundle, &source, &target, "mirror/ee");
        let entries = receipt(&receipt_file);
        assert_eq!(entries.len(), listed(home.path(), &bundle).len());
        assert!(
            entries.values().all(|e| e["status"] == "pushed"),
            "{entries:?}"
        );

        // Channel and catalog tags came after every image they point at.
        let log = target.log();
        let put_at = |needle: &str| {
            log.lines()
                .position(|l| l.contains("\"PUT /v2/") && l.contains(needle))
                .unwrap_or_else(|| panic!("no PUT of {needle}"))
        };
        let last_version = log
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains("\"PUT /v2/mirror/ee/") && l.contains("/manifests/v"))
            .map(|(i, _)| i)
            .max()
            .unwrap();
        assert!(put_at("/v2/mirror/ee/release-channel/manifests/stable") > last_version);
        assert!(put_at("/v2/mirror/ee/modules/manifests/console") > last_version);

        // A second push sends nothing and says so.
        let (code, stdout, stderr) = outcome(&mut push_cmd(
            home.path(),
            &target,
            &bundle,
            "mirror/ee",
            &[],
        ));
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("nothing needed uploading"), "{stdout}");
        let uploads_after = target.log().matches("\"PUT /v2/").count();
        assert_eq!(
            uploads_after,
            log.matches("\"PUT /v2/").count(),
            "the rerun wrote nothing"
        );
    }
}

#[test]
fn a_proxy_that_refuses_big_bodies_gets_patches_and_the_summary_says_so() {
    let home = tempfile::tempdir().unwrap();
    let layouts = home.path().join("layouts");
    make_big_layout(&layouts, "v1", 6);
    let bundle = home.path().join("bundle");
    let entries = ferry::bundle::pack::layout_entries(&layouts, "").unwrap();
    pack_archives(
        &bundle,
        vec![("platform.tar".into(), entries)],
        &ferry::bundle::pack::PackOptions::default(),
    )
    .unwrap();

    let registry = Registry::start("plain");
    let front = tempfile::tempdir().unwrap();
    let out = run(Command::new(repo_root().join("scripts/dev-registry.sh"))
        .arg("front")
        .arg(front.path())
        .arg(&registry.host)
        .arg("1m"));
    let nginx = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("FERRY_TEST_REGISTRY=").map(str::to_string))
        .unwrap();
    let _stop = Stopper(front.path().to_path_buf());
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .args(["--no-progress", "push", "--insecure"])
            .arg(&bundle)
            .arg(format!("{nginx}/behind/nginx")),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("PATCHes of") && stdout.contains("refused large request bodies (413)"),
        "{stdout}"
    );
    let access = std::fs::read_to_string(front.path().join("nginx/access.log")).unwrap();
    assert!(
        access.contains("\" 413 "),
        "nginx refused something: {access}"
    );
    assert!(
        access.matches("\"PATCH ").count() >= 6,
        "6 MiB went in 1 MiB pieces"
    );
    let raw = registry.raw_manifest("behind/nginx:v1");
    assert_eq!(raw, layout_raw_manifest(&layouts, "v1"));
    registry.skopeo_verifies("behind/nginx:v1");
}

/// Stops what `dev-registry.sh front` started.
struct Stopper(std::path::PathBuf);

impl Drop for Stopper {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/dev-registry.sh"))
            .arg("stop")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_push_killed_midway_sends_only_what_is_missing_when_run_again() {
    let home = tempfile::tempdir().unwrap();
    let layouts = home.path().join("layouts");
    make_layout_with_layers(&layouts, 6, 12);
    let bundle = home.path().join("bundle");
    let entries = ferry::bundle::pack::layout_entries(&layouts, "").unwrap();
    pack_archives(
        &bundle,
        vec![("platform.tar".into(), entries)],
        &ferry::bundle::pack::PackOptions {
            chunk_size: 20_000_000,
            ..Default::default()
        },
    )
    .unwrap();

    let registry = Registry::start("plain");
    let proxy = FaultProxy::start(&registry, &["--rate", "15"]);
    let target = format!("{}/slow/img", proxy.host);
    let mut child = ferry(home.path())
        .args(["-q", "push", "--insecure", "-j", "2"])
        .arg(&bundle)
        .arg(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let blob_puts = |log: &[String]| {
        log.iter()
            .filter(|l| {
                l.starts_with("PUT ") && l.contains("/blobs/uploads/") && l.ends_with(" 201")
            })
            .count()
    };
    let cut = wait_until(60, || blob_puts(&proxy.requests()) >= 2);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(cut, "the push never got far enough to be cut");
    // An upload whose body was all sent may still be committed just after the kill: wait for
    // the proxy's log to settle before counting.
    loop {
        let seen = proxy.requests().len();
        if !wait_until(1, || proxy.requests().len() != seen) {
            break;
        }
    }
    let before = blob_puts(&proxy.requests());
    assert!(
        before < 7,
        "the kill came too late to prove anything ({before} blobs sent)"
    );

    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .args(["--no-progress", "push", "--insecure"])
            .arg(&bundle)
            .arg(&target),
    );
    assert_eq!(code, 0, "{stderr}");
    let after = blob_puts(&proxy.requests()) - before;
    // Six layers and a config: what the first run finished (at least what the proxy saw
    // committed before the kill) is not sent again.
    let already: usize = stdout
        .lines()
        .find(|l| l.starts_with("blobs: "))
        .and_then(|l| l.split("), ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of blobs already there: {stdout}"));
    assert!(already >= before, "{stdout}");
    assert_eq!(already + after, 7, "{stdout}");
    assert!(
        stdout.contains(&format!("blobs: {after} uploaded")),
        "{stdout}"
    );
    registry.skopeo_verifies("slow/img:v1");
}

/// A layout whose image has `layers` random layers of `mib` MiB each (scripts/mkbig.py).
fn make_layout_with_layers(dir: &Path, layers: u32, mib: u32) {
    run(Command::new("python3")
        .arg(repo_root().join("scripts/mkbig.py"))
        .arg(dir)
        .arg("v1")
        .arg((layers * mib).to_string())
        .args(["--layers", &layers.to_string()]));
}

#[test]
fn a_damaged_chunk_is_named_and_nothing_that_needs_it_is_pushed() {
    let source = Registry::start("plain");
    let src = seed_sample(&source, ROOT, &[]);
    let home = tempfile::tempdir().unwrap();
    let bundle = home.path().join("bundle");
    pull(
        home.path(),
        &src,
        &bundle,
        &["--no-modules", "--no-platform"],
    );
    // security.tar: four databases; damage one layer's bytes in place (same size).
    let images = listed(home.path(), &bundle);
    let victim = images
        .iter()
        .find(|i| i["path"] == "security/trivy-db")
        .unwrap();
    let manifest = source.raw_manifest(&format!("{ROOT}/security/trivy-db:2"));
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    damage_entry(
        &bundle,
        &format!("security/trivy-db/blobs/sha256/{}", &layer[7..]),
    );

    let target = Registry::start("plain");
    let (code, _, stderr) = outcome(&mut push_cmd(
        home.path(),
        &target,
        &bundle,
        "mirror/ee",
        &[],
    ));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(layer) && stderr.contains("security.tar") && stderr.contains("damaged"),
        "{stderr}"
    );
    assert!(
        stderr.contains("security/trivy-db:2"),
        "the tag left out is named: {stderr}"
    );
    // No manifest of the damaged image at the target; the other databases are there.
    assert!(!target.log().contains(&format!(
        "PUT /v2/mirror/ee/security/trivy-db/manifests/{}",
        victim["digest"].as_str().unwrap()
    )));
    assert!(target.lacks("mirror/ee/security/trivy-db:2"));
    assert_eq!(
        target.raw_manifest("mirror/ee/security/trivy-bdu:1"),
        source.raw_manifest(&format!("{ROOT}/security/trivy-bdu:1"))
    );

    // A missing last chunk is refused before the target hears anything.
    let chunked = home.path().join("chunked");
    pull(
        home.path(),
        &src,
        &chunked,
        &["--no-modules", "--no-platform", "-c", "3KB"],
    );
    let mut chunks: Vec<String> = names_in(&chunked)
        .into_iter()
        .filter(|n| n.ends_with(".chunk"))
        .collect();
    let last = chunks.pop().unwrap();
    std::fs::remove_file(chunked.join(&last)).unwrap();
    let fresh = Registry::start("plain");
    let (code, _, stderr) = outcome(&mut push_cmd(
        home.path(),
        &fresh,
        &chunked,
        "mirror/ee",
        &[],
    ));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&format!("{last} is missing")), "{stderr}");
    assert!(
        !fresh.log().contains("ferry/"),
        "the target was contacted: {}",
        fresh.log()
    );
}

#[test]
fn a_d8_bundle_pushes_and_its_tags_land() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    let channels = d8_tree(&tree, None);
    let bundle = work.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let tar = work.path().join("platform.tar");
    d8_tar(&tree, &tar, TarOrder::Sorted);
    d8_chunks(&tar, &bundle, "platform.tar", 20000);

    let target = Registry::start("basic");
    let home = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) =
        outcome(&mut push_cmd(home.path(), &target, &bundle, "d8/ee", &[]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("3 tags written"), "{stdout}");
    for (reference, layout, tag) in [
        ("d8/ee:v1.2.3", &tree, "v1.2.3"),
        ("d8/ee:v1.3.0", &tree, "v1.3.0"),
        ("d8/ee/release-channel:stable", &channels, "stable"),
    ] {
        let at_target = target.raw_manifest(reference);
        // The layout's own manifest bytes, read by skopeo from the d8-style layout.
        let index: Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| {
                d["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!(":{tag}"))
            })
            .unwrap();
        let digest = entry["digest"].as_str().unwrap();
        assert_eq!(
            ferry::digest::Digest::of(&at_target).to_string(),
            digest,
            "{reference}"
        );
    }
}

#[test]
fn a_moved_channel_is_updated_or_left_as_drifted_and_the_receipt_says_which() {
    let source = Registry::start("plain");
    let src = seed_sample(&source, ROOT, &[]);
    let home = tempfile::tempdir().unwrap();
    let bundle = home.path().join("bundle");
    pull(
        home.path(),
        &src,
        &bundle,
        &["--no-modules", "--no-security-db"],
    );
    let target = Registry::start("plain");
    ferry_ok(&mut push_cmd(
        home.path(),
        &target,
        &bundle,
        "mirror/ee",
        &[],
    ));
    let stable = "mirror/ee/release-channel:stable";
    let bundled = ferry::digest::Digest::of(&target.raw_manifest(stable));
    let elsewhere = "mirror/ee/release-channel:v1.62.2";
    let moved = ferry::digest::Digest::of(&target.raw_manifest(elsewhere));
    assert_ne!(bundled, moved);
    let retag = || target.skopeo_retag(elsewhere, stable);

    retag();
    let receipt_file = home.path().join("receipt.json");
    let (code, stdout, stderr) = outcome(
        push_cmd(
            home.path(),
            &target,
            &bundle,
            "mirror/ee",
            &["--no-overwrite"],
        )
        .arg("--receipt")
        .arg(&receipt_file),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("1 drifted") && stdout.contains("drifted mirror/ee/release-channel:stable"),
        "{stdout}"
    );
    assert_eq!(
        ferry::digest::Digest::of(&target.raw_manifest(stable)),
        moved
    );
    let entry = |path: &Path| -> Value {
        receipt(path)[&(
            "mirror/ee/release-channel".to_string(),
            "stable".to_string(),
        )]
            .clone()
    };
    let drifted = entry(&receipt_file);
    assert_eq!(drifted["status"], "drifted");
    assert_eq!(drifted["previous"], moved.to_string());
    assert_eq!(drifted["digest"], bundled.to_string());

    let (code, stdout, stderr) = outcome(
        push_cmd(home.path(), &target, &bundle, "mirror/ee", &[])
            .arg("--receipt")
            .arg(&receipt_file),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("1 updated") && stdout.contains("updated mirror/ee/release-channel:stable"),
        "{stdout}"
    );
    assert_eq!(
        ferry::digest::Digest::of(&target.raw_manifest(stable)),
        bundled
    );
    let updated = entry(&receipt_file);
    assert_eq!(updated["status"], "updated");
    assert_eq!(updated["previous"], moved.to_string());
}

/// Writes `bytes` into the layout's blobs and gives its descriptor.
fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = ferry::digest::Digest::of(bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(digest.hex()), bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
}

/// A digest is one content whatever role it plays: an image may name as a layer the bytes of a
/// manifest of its own graph (here the index's second image). The registry then needs them both
/// ways, as a manifest and as a blob of the repository. skopeo seeds such an image; pull,
/// verify, push and skopeo reading it back at the target and from `ferry serve` must all take
/// it whole. (An index
/// nested in the index, whose child the walk would meet as a layer first, is in `manifest.rs`'s
/// unit tests: skopeo copies no nested index.)
#[test]
fn a_manifest_that_is_also_a_layer_travels_both_ways() {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let config = put_blob(
        &layout,
        "application/vnd.oci.image.config.v1+json",
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let own = put_blob(&layout, LAYER, b"a layer of its own");
    let manifest = |layers: Vec<Value>| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers,
        }))
        .unwrap()
    };
    let index = |children: Vec<Value>| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children,
        }))
        .unwrap()
    };
    let second = put_blob(&layout, OCI_MANIFEST, &manifest(vec![own.clone()]));
    let mut as_layer = second.clone();
    as_layer["mediaType"] = LAYER.into();
    let first = put_blob(&layout, OCI_MANIFEST, &manifest(vec![own, as_layer]));
    let mut root = put_blob(&layout, OCI_INDEX, &index(vec![first, second.clone()]));
    root["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "v1"});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [root]})).unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();

    let source = Registry::start("plain");
    let target = Registry::start("plain");
    source.seed(&layout, "v1", "apps/both:v1");
    let set = work.path().join("set.yaml");
    std::fs::write(
        &set,
        format!(
            "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {}\n    tags: [v1]\n",
            source.at("apps/both")
        ),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    let (code, stdout, stderr) = pull_insecure(
        home.path(),
        &[bundle.to_str().unwrap(), "--images", set.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) =
        outcome(&mut push_cmd(home.path(), &target, &bundle, "mirror", &[]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let pushed = "mirror/apps/both:v1";
    assert_eq!(
        target.raw_manifest(pushed),
        source.raw_manifest("apps/both:v1")
    );
    // skopeo reads every image of the index back, layers included: the two manifests' bytes
    // are blobs of the repository too.
    target.skopeo_verifies(pushed);
    let digest = second["digest"].as_str().unwrap();
    assert!(!target.lacks(&format!("mirror/apps/both@{digest}")));

    // Served from the bundle, skopeo reads it the same way.
    let server = Server::start(home.path(), &["--prefix", "p", bundle.to_str().unwrap()]);
    let out = work.path().join("served");
    run(Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
        ])
        .arg(format!("docker://{}:v1", server.at("p/apps/both")))
        .arg(format!("oci:{}:v1", out.display())));
    assert!(out.join("blobs/sha256").join(&digest[7..]).is_file());
}
