//! `--platform` against real registries: a two-platform index filtered to one platform passes
//! skopeo at the target with its new digest, `ls --json` shows both digests, an index pulled by
//! digest stays whole (with a warning saying why), an image set's own `platforms` wins over
//! the command line, and impossible or malformed platforms are refused.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn image_at<'a>(images: &'a [Value], path: &str, tag: &str) -> &'a Value {
    images
        .iter()
        .find(|i| i["path"] == path && i["tag"] == tag)
        .unwrap_or_else(|| panic!("no {path}:{tag} in {images:?}"))
}

fn architectures(raw: &[u8]) -> Vec<String> {
    let index: Value = serde_json::from_slice(raw).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_string())
        .collect()
}

/// Every finished pull is verified (common::pull_insecure).
fn pull(home: &Path, args: &[&str]) -> (i32, String, String) {
    pull_insecure(home, args)
}

#[test]
fn a_platform_filter_keeps_one_platform_and_records_both_digests() {
    let source = Registry::start("plain");
    let target = Registry::start("plain");
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let both = "linux/amd64,linux/arm64/v8";
    let multi = work.path().join("multi");
    let source_digest = make_layout(&multi, "v1", "index", &["--platforms", both]);
    source.seed(&multi, "v1", "apps/multi:v1");
    let pinned = work.path().join("pinned");
    let pinned_digest = make_layout(
        &pinned,
        "v1",
        "index",
        &["--platforms", both, "--seed", "5"],
    );
    source.seed(&pinned, "v1", "apps/pinned:v1");

    let set = work.path().join("set.yaml");
    std::fs::write(
        &set,
        format!(
            "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {}\n    tags: [v1]\n",
            source.at("apps/multi")
        ),
    )
    .unwrap();
    let list = work.path().join("list.txt");
    std::fs::write(
        &list,
        format!("{}@{pinned_digest}\n", source.at("apps/pinned")),
    )
    .unwrap();
    let bundle = work.path().join("bundle");
    let (code, stdout, stderr) = pull(
        home.path(),
        &[
            bundle.to_str().unwrap(),
            "--images",
            set.to_str().unwrap(),
            "--images-from-list",
            list.to_str().unwrap(),
            "--platform",
            "linux/arm64",
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("--platform rewrote 1 index(es)"),
        "{stderr}"
    );
    assert!(stderr.contains(&source_digest), "{stderr}");
    assert!(
        stderr.contains("left 1 index(es) pulled by digest whole")
            && stderr.contains(&pinned_digest),
        "{stderr}"
    );

    // ls shows the bundle's digest and the source's; the pinned index is untouched.
    let images = listed(home.path(), &bundle);
    let filtered = image_at(&images, "apps/multi", "v1");
    assert_eq!(filtered["source_digest"], source_digest.as_str());
    let bundle_digest = filtered["digest"].as_str().unwrap().to_string();
    assert_ne!(bundle_digest, source_digest);
    let pinned_record = images
        .iter()
        .find(|i| i["tag"] == pinned_digest.trim_start_matches("sha256:"))
        .expect("the pinned index is listed under its digest");
    assert_eq!(pinned_record["digest"], pinned_digest.as_str());
    assert!(pinned_record.get("source_digest").is_none());
    verified(home.path(), &bundle);

    // At the target: skopeo reads the new index, its digest is over its bytes, it has only
    // arm64, and a full copy finds every blob.
    ferry_ok(&mut push_cmd(home.path(), &target, &bundle, "mirror", &[]));
    let raw = target.raw_manifest("mirror/apps/multi:v1");
    assert_eq!(format!("sha256:{}", sha256_hex(&raw)), bundle_digest);
    assert_eq!(architectures(&raw), ["arm64"]);
    assert_eq!(
        architectures(&source.raw_manifest("apps/multi:v1")),
        ["amd64", "arm64"]
    );
    let scratch = tempfile::tempdir().unwrap();
    target.skopeo_copy_out("mirror/apps/multi:v1", scratch.path(), "v1");
    let pinned_path = pinned_record["path"].as_str().unwrap();
    let whole = target.raw_manifest(&format!("mirror/{pinned_path}@{pinned_digest}"));
    assert_eq!(architectures(&whole), ["amd64", "arm64"]);

    // An image set's own platforms replace the command line's.
    std::fs::write(
        &set,
        format!(
            "apiVersion: ferry/v1\nkind: ImageSet\nartifacts:\n  - source: {}\n    tags: [v1]\n    platforms: [linux/amd64]\n",
            source.at("apps/multi")
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = pull(
        home.path(),
        &[
            work.path().join("b2").to_str().unwrap(),
            "--images",
            set.to_str().unwrap(),
            "--platform",
            "linux/arm64",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let planned = image_at(plan["images"].as_array().unwrap(), "apps/multi", "v1");
    assert_eq!(planned["source_digest"], source_digest.as_str());
    assert_ne!(planned["digest"], bundle_digest.as_str());
    assert_ne!(planned["digest"], source_digest.as_str());

    // No entry for the platform asked: refused, naming the image; a malformed platform too.
    let (code, _, stderr) = pull(
        home.path(),
        &[
            work.path().join("b3").to_str().unwrap(),
            "--images-from-list",
            list.to_str().unwrap(),
            "--images",
            set.to_str().unwrap(),
            "--platform",
            "linux/s390x",
        ],
    );
    // The set's own platform (amd64) is there; the listed pinned index is kept whole.
    assert_eq!(code, 0, "{stderr}");
    std::fs::write(&list, format!("{}\n", source.at("apps/multi:v1"))).unwrap();
    let (code, _, stderr) = pull(
        home.path(),
        &[
            work.path().join("b4").to_str().unwrap(),
            "--images-from-list",
            list.to_str().unwrap(),
            "--platform",
            "linux/s390x",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("none of the platforms asked for (linux/s390x)")
            && stderr.contains("apps/multi:v1"),
        "{stderr}"
    );
    assert!(!work.path().join("b4").exists());
    let (code, _, stderr) = pull(
        home.path(),
        &[
            work.path().join("b5").to_str().unwrap(),
            "--images-from-list",
            list.to_str().unwrap(),
            "--platform",
            "linux",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("OS/ARCH"), "{stderr}");

    // Without --platform the index is carried as the source has it.
    let (code, stdout, stderr) = pull(
        home.path(),
        &[
            work.path().join("b6").to_str().unwrap(),
            "--images-from-list",
            list.to_str().unwrap(),
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let whole = &plan["images"][0];
    assert_eq!(whole["digest"], source_digest.as_str());
    assert!(whole.get("source_digest").is_none());
}
