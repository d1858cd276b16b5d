//! A registry that misbehaves: wrong bytes for a digest, bodies cut off mid-blob, tokens that
//! expire long before they say they will. ferry must refuse the first and recover from the rest.

mod common;

use std::time::Duration;

use common::*;
use ferry::manifest::Manifest;
use ferry::registry::{ClientOptions, Credential, RegistryClient, Secret, TransportOptions};
use ferry::store::BlobStore;

/// The layer digests of an image manifest, as skopeo reads it.
fn layer_digests(manifest: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn wrong_bytes_for_a_digest_are_refused_and_named() {
    let layout = sample_layout();
    let registry = Registry::start("plain");
    registry.seed(layout.path(), "image", "src/img:v1");
    let manifest = registry.raw_manifest("src/img:v1");
    let proxy = FaultProxy::start(&registry, &["--corrupt-blobs"]);
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("layout");

    let (code, _, stderr) = outcome(
        ferry(home.path())
            .args(["copy", "--insecure", &format!("{}/src/img:v1", proxy.host)])
            .arg(format!("oci:{}:img", dir.display())),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("wrong content for sha256:"), "{stderr}");
    // The digest named is one of the image's blobs, and no file under its name exists.
    let named = layer_digests(&manifest)
        .into_iter()
        .chain(std::iter::once(
            serde_json::from_slice::<serde_json::Value>(&manifest).unwrap()["config"]["digest"]
                .as_str()
                .unwrap()
                .to_string(),
        ))
        .find(|d| stderr.contains(d.as_str()))
        .unwrap_or_else(|| panic!("no blob digest of the image in: {stderr}"));
    let hex = named.trim_start_matches("sha256:");
    assert!(!dir.join("blobs/sha256").join(hex).exists());
    assert!(
        !dir.join("index.json").exists(),
        "a tag points at an incomplete image"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    // It was refused, not retried forever: one GET per blob.
    let gets = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains(hex))
        .count();
    assert_eq!(gets, 1, "{:?}", proxy.requests());
}

#[test]
fn a_body_cut_off_mid_blob_is_resumed_with_range() {
    let layout = tempfile::tempdir().unwrap();
    make_layout(
        layout.path(),
        "img",
        "image",
        &[
            "--layers",
            "2",
            "--layer-size",
            "2000000",
            "--compress",
            "none",
        ],
    );
    let registry = Registry::start("plain");
    registry.seed(layout.path(), "img", "src/img:v1");
    let proxy = FaultProxy::start(&registry, &["--truncate-first-blob-get"]);
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("layout");

    ferry_ok(
        ferry(home.path())
            .args(["copy", "--insecure", &format!("{}/src/img:v1", proxy.host)])
            .arg(format!("oci:{}:img", dir.display())),
    );
    let requests = proxy.requests();
    let ranged: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/blobs/") && r.contains("bytes="))
        .collect();
    // Every blob (two layers and a config) was cut once and resumed from where it broke.
    assert_eq!(ranged.len(), 3, "{requests:?}");
    assert!(ranged.iter().all(|r| r.ends_with(" 206")), "{ranged:?}");
    assert!(
        ranged.iter().all(|r| !r.contains("bytes=0-")),
        "restarted instead of resumed: {ranged:?}"
    );
    assert_eq!(
        layout_raw_manifest(&dir, "img"),
        registry.raw_manifest("src/img:v1")
    );
    skopeo_verifies_layout(&dir, "img");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_early_is_refreshed() {
    // Tokens live about 5 s (the registry allows 60 s of leeway on a 55 s-expired token) but
    // the token service claims an hour, so ferry's cache believes a dead token is good.
    let registry = Registry::start_with(
        "token",
        &["--token-ttl", "-55", "--token-expires-in", "3600"],
    );
    let layout = sample_layout();
    registry.seed(layout.path(), "image", "src/img:v1");

    let options = ClientOptions {
        transport: TransportOptions {
            insecure: true,
            ..TransportOptions::default()
        },
        credential: Some(Credential::Basic {
            username: registry.user.clone().unwrap(),
            password: Secret::new(registry.password.clone().unwrap()),
        }),
        ..ClientOptions::default()
    };
    let client = RegistryClient::new(&registry.host, "src/img", options).unwrap();
    let manifest: Manifest = client.get_manifest("src/img", "v1").await.unwrap();
    let token_requests = || {
        std::fs::read_to_string(registry.dir.path().join("token.log"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("GET /token"))
            .count()
    };
    let before = token_requests();

    tokio::time::sleep(Duration::from_secs(7)).await;
    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::new(store_dir.path());
    let progress: ferry::registry::ProgressFn = std::sync::Arc::new(|_| {});
    for blob in manifest.references().unwrap().blobs {
        let mut writer = store.writer(&blob.digest, blob.size).await.unwrap();
        client
            .download_blob("src/img", &blob, &mut writer, &progress)
            .await
            .unwrap();
        writer.commit().await.unwrap();
        assert!(store.contains(&blob.digest, blob.size).await);
    }
    assert!(
        token_requests() > before,
        "the expired token was never replaced"
    );
    assert!(
        registry.log().contains("token not to be used after") || registry.log().contains("expired"),
        "the registry never refused the old token, so the test proved nothing"
    );
}

#[test]
fn busy_and_failing_answers_are_retried_with_backoff() {
    let layout = sample_layout();
    let registry = Registry::start("plain");
    registry.seed(layout.path(), "image", "src/img:v1");
    let proxy = FaultProxy::start(&registry, &["--refuse-first-two"]);
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("layout");
    let started = std::time::Instant::now();
    ferry_ok(
        ferry(home.path())
            .args(["copy", "--insecure", &format!("{}/src/img:v1", proxy.host)])
            .arg(format!("oci:{}:img", dir.display())),
    );
    // Retry-After: 1 was honoured at least once on the way.
    assert!(started.elapsed() >= Duration::from_secs(1));
    let requests = proxy.requests();
    let manifest_get: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("GET /v2/src/img/manifests/v1 "))
        .collect();
    let statuses: Vec<&str> = manifest_get
        .iter()
        .map(|r| r.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(statuses, ["429", "503", "200"], "{requests:?}");
    assert_eq!(
        layout_raw_manifest(&dir, "img"),
        registry.raw_manifest("src/img:v1")
    );
}

#[tokio::test]
async fn tags_and_manifest_heads_agree_with_skopeo() {
    let layout = sample_layout();
    let registry = Registry::start("plain");
    for tag in ["v1", "v1.2", "stable"] {
        registry.seed(layout.path(), "index", &format!("src/multi:{tag}"));
    }
    let options = ClientOptions {
        transport: TransportOptions {
            insecure: true,
            ..TransportOptions::default()
        },
        ..ClientOptions::default()
    };
    let client = RegistryClient::new(&registry.host, "src/multi", options).unwrap();
    let mut tags = client.list_tags("src/multi").await.unwrap();
    tags.sort();
    let expected: Vec<String> = registry.skopeo_tags("src/multi").into_iter().collect();
    assert_eq!(tags, expected);

    let raw = registry.raw_manifest("src/multi:stable");
    let head = client
        .head_manifest("src/multi", "stable")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.digest, ferry::digest::Digest::of(&raw));
    assert_eq!(head.size, raw.len() as u64);
    assert_eq!(head.media_type, ferry::manifest::OCI_INDEX);
    assert!(
        client
            .head_manifest("src/multi", "nope")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        client.list_tags("src/none").await,
        Err(ferry::registry::RegistryError::NotFound { .. })
    ));
}
