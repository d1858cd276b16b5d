//! Bundles crafted to confuse or exhaust the readers: a tag held twice (in one layout or in two
//! archives), a chunk numbered far away, thousands of tags naming one 4 MB manifest, a
//! descriptor whose size lies, `bundle.json` fields `ls` shows that disagree with the archives,
//! and a huge free-form request in `bundle.json`. Each is refused (or read) quickly, with
//! bounded memory, and push refuses the same bundles before contacting the target.

mod common;

use std::path::Path;

use common::*;
use ferry::bundle::pack::{PackOptions, layout_entries};
use serde_json::Value;

fn pack(dir: &Path, archives: Vec<(&str, &Path)>) {
    pack_archives(
        dir,
        archives
            .into_iter()
            .map(|(name, layout)| (name.to_string(), layout_entries(layout, "").unwrap()))
            .collect(),
        &PackOptions::default(),
    )
    .unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec(value).unwrap()).unwrap();
}

/// Two images under one tag: verify said OK, push wrote whichever came first and failed its
/// read-back. One name, one image: refused everywhere, before the target hears a word.
#[test]
fn a_tag_held_twice_is_refused_by_verify_and_push() {
    // In one layout: two index.json entries tagged v1.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    make_layout(&layout, "v1", "image", &["--seed", "4"]);
    make_layout(&layout, "other", "image", &["--seed", "5"]);
    let index_path = layout.join("index.json");
    let mut index = read_json(&index_path);
    for entry in index["manifests"].as_array_mut().unwrap() {
        entry["annotations"]["org.opencontainers.image.ref.name"] = "v1".into();
    }
    write_json(&index_path, &index);
    let dir = work.path().join("bundle");
    pack(&dir, vec![("platform.tar", &layout)]);
    refused_offline(&dir, false, &["(root):v1 is held 2 times"]);

    // In two archives, with a bundle.json listing one of them.
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    make_layout(&a, "v1", "image", &["--seed", "6"]);
    make_layout(&b, "v1", "image", &["--seed", "7"]);
    let dir = work.path().join("bundle");
    pack(&dir, vec![("a.tar", &a), ("b.tar", &b)]);
    refused_offline(&dir, false, &["(root):v1 is held 2 times (a.tar, b.tar)"]);
}

/// `x.tar.99999999999.chunk` beside `x.tar.0000.chunk`: the gap is counted, not listed one name
/// at a time (which took all the memory there was).
#[test]
fn a_chunk_numbered_far_away_is_refused_at_once() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    make_layout(&layout, "v1", "image", &["--seed", "8"]);
    let dir = work.path().join("bundle");
    std::fs::create_dir(&dir).unwrap();
    d8_tar(&layout, &dir.join("x.tar.0000.chunk"), TarOrder::Sorted);
    std::fs::write(dir.join("x.tar.99999999999.chunk"), b"").unwrap();
    let home = tempfile::tempdir().unwrap();
    for command in ["verify", "ls"] {
        let dir_arg = dir.display().to_string();
        let m = measured(home.path(), &["--no-progress", command, &dir_arg]);
        assert_eq!(m.code, 1, "{command}: {}", m.stderr);
        assert!(
            m.stderr.contains("x.tar.0001.chunk is missing")
                && m.stderr.contains("more chunks of x.tar are missing"),
            "{command}: {}",
            m.stderr
        );
        assert!(m.stderr.len() < 4000, "{command}: {} bytes", m.stderr.len());
        assert!(m.rss_kib < 100 * 1024, "{command}: {} KiB", m.rss_kib);
        assert!(m.seconds < 10.0, "{command}: {} s", m.seconds);
    }
}

/// 600 tags naming one manifest of nearly 4 MB: each tag's graph was followed and kept anew
/// (gigabytes, minutes). One manifest is followed once, however many tags name it.
#[test]
fn many_tags_of_one_big_manifest_are_followed_once() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let digest = make_layout(&layout, "t0", "image", &["--seed", "9"]);
    let blobs = layout.join("blobs/sha256");
    let mut manifest = read_json(&blobs.join(&digest[7..]));
    manifest["annotations"] = serde_json::json!({ "pad": "x".repeat(3_900_000) });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    std::fs::remove_file(blobs.join(&digest[7..])).unwrap();
    let big = ferry::digest::Digest::of(&bytes);
    std::fs::write(blobs.join(big.hex()), &bytes).unwrap();
    let entries: Vec<Value> = (0..600)
        .map(|i| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": big.to_string(),
                "size": bytes.len(),
                "annotations": { "org.opencontainers.image.ref.name": format!("t{i}") },
            })
        })
        .collect();
    write_json(
        &layout.join("index.json"),
        &serde_json::json!({ "schemaVersion": 2, "manifests": entries }),
    );
    let dir = work.path().join("bundle");
    std::fs::create_dir(&dir).unwrap();
    d8_tar(&layout, &dir.join("platform.tar"), TarOrder::Sorted);
    let home = tempfile::tempdir().unwrap();
    let dir_arg = dir.display().to_string();
    let m = measured(home.path(), &["--no-progress", "verify", &dir_arg]);
    assert_eq!(m.code, 0, "{}{}", m.stdout, m.stderr);
    assert!(m.stdout.contains("600 tags checked"), "{}", m.stdout);
    assert!(m.rss_kib < 256 * 1024, "verify: {} KiB", m.rss_kib);
    assert!(m.seconds < 60.0, "verify: {} s", m.seconds);
    // Push reads the same way before it contacts anyone (here: nobody, at a closed port).
    let m = measured(
        home.path(),
        &[
            "--no-progress",
            "push",
            "--insecure",
            &dir_arg,
            "127.0.0.1:1/x",
        ],
    );
    assert_eq!(m.code, 1, "{}", m.stderr);
    assert!(m.stderr.contains("cannot reach"), "{}", m.stderr);
    assert!(m.rss_kib < 256 * 1024, "push: {} KiB", m.rss_kib);
}

/// An index.json entry whose size is not its manifest's: a registry would refuse the manifest
/// a client then asks for by that descriptor. Verify and push refuse it.
#[test]
fn a_descriptor_that_misstates_a_manifests_size_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    make_layout(&layout, "v1", "image", &["--seed", "10"]);
    let index_path = layout.join("index.json");
    let mut index = read_json(&index_path);
    let size = index["manifests"][0]["size"].as_u64().unwrap();
    index["manifests"][0]["size"] = (size + 1).into();
    write_json(&index_path, &index);
    let dir = work.path().join("bundle");
    pack(&dir, vec![("platform.tar", &layout)]);
    refused_offline(
        &dir,
        false,
        &[&format!(
            "is {size} bytes, its descriptor says {}",
            size + 1
        )],
    );
}

/// What `ls` shows beside the digest (media type, size, archive) comes from bundle.json: verify
/// holds it to the archives, and push refuses a bundle where they disagree.
#[test]
fn bundle_json_fields_ls_shows_are_held_to_the_archives() {
    for (field, value, needle) in [
        (
            "media_type",
            Value::from("application/x-lie"),
            "is a application/x-lie",
        ),
        ("size", Value::from(12345), "needs 12345 bytes"),
        ("archive", Value::from("other.tar"), "is in other.tar"),
    ] {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("bundle");
        sealed_bundle(&dir, false);
        edit_metadata(&dir, |m| m["images"][0][field] = value.clone());
        refused_offline(&dir, false, &[needle]);
    }
}

/// bundle.json's free-form request, 60 MB of `[0,0,…]`: once parsed into a value tree it took
/// gigabytes. It is kept as text.
#[test]
fn a_huge_request_in_bundle_json_does_not_fill_the_memory() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, false);
    let path = dir.join("bundle.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let zeros = format!("[{}0]", "0,".repeat(30_000_000));
    let text = text.replacen("\"request\": {}", &format!("\"request\": {zeros}"), 1);
    assert!(text.len() > 60_000_000);
    std::fs::write(&path, text).unwrap();
    let home = tempfile::tempdir().unwrap();
    let dir_arg = dir.display().to_string();
    for args in [
        vec!["ls", &dir_arg],
        vec!["--no-progress", "verify", &dir_arg],
    ] {
        let m = measured(home.path(), &args);
        assert_eq!(m.code, 0, "{args:?}: {}", m.stderr);
        assert!(m.rss_kib < 400 * 1024, "{args:?}: {} KiB", m.rss_kib);
    }
}
