//! The bundle readers (verify, ls, push's inventory) take archives as other tools write them:
//! entries in any order, with or without directories, chunked or not; and every problem is a
//! message naming the file, never a panic.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// A d8-style tree: a root layout with two tags and a nested channel layout.
fn d8_tree(tree: &Path) {
    make_layout(
        tree,
        "v1.2.3",
        "image",
        &["--seed", "7", "--layer-size", "30000"],
    );
    make_layout(tree, "v1.3.0", "index", &["--seed", "8"]);
    let channels = tree.join("release-channel");
    make_layout(&channels, "stable", "artifact", &["--seed", "9"]);
    make_d8_style(tree, "deckhouse/ee", Some("v1.3.0"));
    make_d8_style(&channels, "deckhouse/ee/release-channel", None);
}

/// Every file under `tree`, relative, sorted bytewise.
fn files_under(tree: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for item in std::fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, tree, &mut out);
    out.sort();
    out
}

/// GNU tar of exactly `names` (relative to `tree`), in that order.
fn tar_in_order(tree: &Path, names: &[String], tar: &Path) {
    let list = tar.with_extension("list");
    std::fs::write(&list, names.join("\n") + "\n").unwrap();
    run(Command::new("tar")
        .args(["--format=gnu", "--no-recursion", "--mtime=@0", "-cf"])
        .arg(tar)
        .arg("-C")
        .arg(tree)
        .arg("-T")
        .arg(&list));
}

fn verify(dir: &Path) -> (i32, String) {
    let home = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = outcome(
        ferry(home.path())
            .args(["--no-progress", "verify"])
            .arg(dir),
    );
    (code, format!("{stdout}{stderr}"))
}

/// d8 writes a blob's bytes before entries whose paths sort first (index.json last, blobs in
/// the order it fetched them); verify walked a file's blobs in path order and sliced out of
/// range. Any order is a tar like any other.
#[test]
fn verify_reads_an_unchunked_d8_bundle_whose_entries_are_not_in_path_order() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    d8_tree(&tree);
    let mut names = files_under(&tree);
    // Reverse path order: the last blob by path comes first in the file.
    names.reverse();
    let bundle = work.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    tar_in_order(&tree, &names, &bundle.join("platform.tar"));

    let (code, out) = verify(&bundle);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("panicked"), "{out}");
    assert!(out.contains("3 tags checked"), "{out}");
    let home = tempfile::tempdir().unwrap();
    let listed: Vec<(String, String)> = listed(home.path(), &bundle)
        .iter()
        .map(|i| {
            (
                i["path"].as_str().unwrap().to_string(),
                i["tag"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("".to_string(), "v1.2.3".to_string()),
            ("".into(), "v1.3.0".into()),
            ("release-channel".into(), "stable".into())
        ]
    );

    // The same order, damaged: the blob is named, still no panic.
    let tar = bundle.join("platform.tar");
    let blob = names.iter().find(|n| n.contains("blobs/sha256/")).unwrap();
    let bytes = std::fs::read(&tar).unwrap();
    let at = bytes
        .windows(blob.len())
        .position(|w| w == blob.as_bytes())
        .unwrap();
    // The data starts at the next 512-byte block after the header.
    let data = (at / 512 + 1) * 512;
    let mut damaged = bytes.clone();
    damaged[data] ^= 0xff;
    std::fs::write(&tar, &damaged).unwrap();
    let (code, out) = verify(&bundle);
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("panicked"), "{out}");
    let hex = blob.rsplit('/').next().unwrap();
    assert!(
        out.contains(hex) && out.contains("does not match its digest"),
        "{out}"
    );
}

/// A tar cut at a header boundary reads as a shorter valid tar; the missing end marker tells
/// them apart, and the message names the file it is in.
#[test]
fn a_tar_without_its_end_marker_is_named() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    d8_tree(&tree);
    let bundle = work.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let tar = bundle.join("platform.tar");
    tar_in_order(&tree, &files_under(&tree), &tar);
    // GNU tar pads to 10 KiB records; strip the zero blocks after the last entry.
    let mut bytes = std::fs::read(&tar).unwrap();
    while bytes.len() >= 512 && bytes[bytes.len() - 512..].iter().all(|&b| b == 0) {
        bytes.truncate(bytes.len() - 512);
    }
    std::fs::write(&tar, &bytes).unwrap();
    let (code, out) = verify(&bundle);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("end-of-archive marker") && out.contains("platform.tar"),
        "{out}"
    );
    assert!(
        out.contains("in platform.tar"),
        "the file is named, not left blank: {out}"
    );
}
