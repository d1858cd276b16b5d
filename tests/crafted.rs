//! Bundles crafted to mislead: a `bundle.json` naming files outside the bundle, lists that
//! disagree with the files, unlisted archives, a tag that would climb out of its repository.
//! Each is refused with the file named, exit code 1, quickly.

mod common;

use common::*;
use ferry::bundle::pack::{PackOptions, layout_entries};
use serde_json::Value;

#[test]
fn bundle_json_cannot_point_outside_the_bundle() {
    for evil in [
        "/etc/hostname",
        "/dev/zero",
        "../platform.tar",
        "x/platform.tar",
    ] {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("bundle");
        sealed_bundle(&dir, false);
        edit_metadata(&dir, |m| m["archives"][0]["files"][0]["name"] = evil.into());
        refused_offline(&dir, true, &["bundle.json", "not its file number"]);
    }
    // The archive's own name is held to the same rule.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, false);
    edit_metadata(&dir, |m| m["archives"][0]["name"] = "/etc/passwd".into());
    refused_offline(&dir, true, &["bundle.json", "is not an archive name"]);

    // One archive listed twice would be read twice, each of its tags held twice.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, false);
    edit_metadata(&dir, |m| {
        let archives = m["archives"].as_array_mut().unwrap();
        archives.push(archives[0].clone());
    });
    refused_offline(
        &dir,
        true,
        &["bundle.json is not valid: it lists archive platform.tar twice"],
    );
}

#[test]
fn archives_bundle_json_does_not_list_are_problems() {
    // An empty list beside a garbage archive.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, false);
    edit_metadata(&dir, |m| {
        m["archives"] = Value::Array(Vec::new());
        m["images"] = Value::Array(Vec::new());
    });
    std::fs::write(dir.join("platform.tar"), vec![0x55u8; 4096]).unwrap();
    refused_offline(
        &dir,
        false,
        &["platform.tar is in the bundle directory but bundle.json does not list it"],
    );

    // A whole archive more than bundle.json knows.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, false);
    std::fs::copy(dir.join("platform.tar"), dir.join("module-x.tar")).unwrap();
    refused_offline(
        &dir,
        false,
        &["module-x.tar is in the bundle directory but bundle.json does not list it"],
    );
}

#[test]
fn sum_lists_that_disagree_with_bundle_json_are_problems() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, true);
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    std::fs::write(
        dir.join("SHA256SUMS"),
        format!("{}{}", "0".repeat(64), &sums[64..]),
    )
    .unwrap();
    refused_offline(
        &dir,
        false,
        &["SHA256SUMS and bundle.json disagree about platform.tar"],
    );

    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, true);
    std::fs::write(
        dir.join("GOSTSUMS"),
        format!("GOST12-256 (platform.tar) = {}\n", "1".repeat(64)),
    )
    .unwrap();
    refused_offline(
        &dir,
        false,
        &["GOSTSUMS and bundle.json disagree about platform.tar"],
    );

    // d8's `.gostsum` beside the file is held to bundle.json too; verify, reading the file,
    // says which statement is wrong: not the file, which bundle.json agrees with.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, true);
    std::fs::write(dir.join("platform.tar.gostsum"), "2".repeat(64)).unwrap();
    refused_offline(
        &dir,
        false,
        &["platform.tar.gostsum and bundle.json disagree about platform.tar"],
    );
    let home = tempfile::tempdir().unwrap();
    let (_, _, stderr) = outcome(ferry(home.path()).arg("verify").arg(&dir));
    assert!(
        stderr.contains("platform.tar.gostsum is wrong, not the file")
            && !stderr.contains("damaged"),
        "{stderr}"
    );

    // GOST sums added after a pull without them, by rhash as a checkpoint would: checked
    // against the files, not refused as unknown.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, false);
    let sums = run(std::process::Command::new("rhash")
        .args(["--gost12-256", "--bsd", "platform.tar"])
        .current_dir(&dir))
    .stdout;
    std::fs::write(dir.join("GOSTSUMS"), &sums).unwrap();
    for args in [&["verify"][..], &["verify", "--gost"]] {
        let (code, stdout, stderr) = outcome(ferry(home.path()).args(args).arg(&dir));
        assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
    }
    // Two sums for the file: rhash -c checks both, so both cannot hold; push refuses too.
    std::fs::write(
        dir.join("GOSTSUMS"),
        format!(
            "{}{}",
            String::from_utf8(sums.clone()).unwrap(),
            text_with(&sums, '6')
        ),
    )
    .unwrap();
    refused_offline(
        &dir,
        false,
        &["GOSTSUMS gives platform.tar two different sums"],
    );
    // A wrong one is named: the file's SHA-256 is bundle.json's, so it or that SHA-256 is.
    std::fs::write(dir.join("GOSTSUMS"), text_with(&sums, '3')).unwrap();
    let (code, _, stderr) = outcome(ferry(home.path()).arg("verify").arg(&dir));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("GOSTSUMS says GOST sum 333")
            && stderr.contains("GOSTSUMS or that SHA-256 is wrong"),
        "{stderr}"
    );
}

#[test]
fn a_tag_that_would_climb_out_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    make_layout(&layout, "v1", "image", &["--seed", "6"]);
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    for annotation in [
        "org.opencontainers.image.ref.name",
        "io.deckhouse.image.short_tag",
    ] {
        index["manifests"][0]["annotations"][annotation] = "../../evil".into();
    }
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let dir = work.path().join("bundle");
    pack_archives(
        &dir,
        vec![("platform.tar".into(), layout_entries(&layout, "").unwrap())],
        &PackOptions::default(),
    )
    .unwrap();
    refused_offline(
        &dir,
        true,
        &["platform.tar", "index.json", "tag '../../evil' is invalid"],
    );
}

/// A manifest whose layer descriptor claims 2^40 bytes while the layout holds 5000 bytes of the
/// right digest: verify refused it, push sent it (exit 0, "37.2 TB/s") and left an image no
/// client can pull. Both check every descriptor the same way, before the target hears a word.
#[test]
fn a_descriptor_whose_size_lies_is_refused_by_push_as_by_verify() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    make_layout(
        &layout,
        "v1",
        "image",
        &[
            "--seed",
            "8",
            "--layers",
            "1",
            "--layer-size",
            "5000",
            "--compress",
            "none",
        ],
    );
    let blobs = layout.join("blobs/sha256");
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let old = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let old_path = blobs.join(old.trim_start_matches("sha256:"));
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&old_path).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let real = std::fs::metadata(blobs.join(layer.trim_start_matches("sha256:")))
        .unwrap()
        .len();
    assert!(real > 4000, "{real}");
    manifest["layers"][0]["size"] = (1u64 << 40).into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = ferry::digest::Digest::of(&bytes);
    std::fs::remove_file(&old_path).unwrap();
    std::fs::write(blobs.join(digest.hex()), &bytes).unwrap();
    index["manifests"][0]["digest"] = digest.to_string().into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let dir = work.path().join("bundle");
    pack_archives(
        &dir,
        vec![("platform.tar".into(), layout_entries(&layout, "").unwrap())],
        &PackOptions::default(),
    )
    .unwrap();
    refused_offline(
        &dir,
        true,
        &[
            "platform.tar",
            &format!("blob {layer} is {real} bytes, its manifest says 1099511627776"),
        ],
    );
}

/// A tag in an archive's index.json that bundle.json does not list: ls does not show it, so
/// push must not write it; it refuses the bundle as verify reports it.
#[test]
fn a_tag_bundle_json_does_not_list_is_refused_by_push() {
    let work = tempfile::tempdir().unwrap();
    let layouts = work.path().join("layouts");
    make_layout(&layouts, "v1", "image", &["--seed", "4"]);
    make_layout(&layouts, "hidden", "image", &["--seed", "5"]);
    let dir = work.path().join("bundle");
    sealed_archive(&dir, "platform.tar", layout_entries(&layouts, "").unwrap());
    edit_metadata(&dir, |m| {
        let images = m["images"].as_array_mut().unwrap();
        images.retain(|i| i["tag"] != "hidden");
        assert_eq!(images.len(), 1);
    });
    let home = tempfile::tempdir().unwrap();
    let shown: Vec<String> = listed(home.path(), &dir)
        .iter()
        .map(|i| i["tag"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shown, ["v1"]);
    refused_offline(
        &dir,
        false,
        &["(root):hidden is in an archive but not in bundle.json"],
    );
}

/// A differential base whose left-out sizes add up past 2^64: verify printed a wrapped total
/// (or, built with overflow checks, panicked). Absurd sizes are refused, naming the record.
#[test]
fn sizes_that_overflow_are_refused_not_wrapped() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, false);
    edit_metadata(&dir, |m| {
        m["base"] = serde_json::json!({
            "bundle_sha256": "0".repeat(64),
            "created": "2026-01-01T00:00:00Z",
            "source": "somewhere",
            "left_out": [
                {"digest": format!("sha256:{}", "a".repeat(64)), "size": u64::MAX - 10},
                {"digest": format!("sha256:{}", "b".repeat(64)), "size": 100},
            ],
        });
    });
    refused_offline(
        &dir,
        true,
        &[
            "bundle.json",
            &format!("left-out blob sha256:{} claims", "a".repeat(64)),
        ],
    );
}

/// `bundle.json`'s list of an archive's blobs is what a later `pull --since-bundle` leaves out:
/// a list claiming a blob the archive lacks would have the next bundle leave it out while no
/// target ever got it. verify, push and serve hold the list to the archive, both ways and by
/// size, naming the blob.
#[test]
fn blob_lists_are_held_to_their_archives() {
    let claimed = format!("sha256:{}", "c".repeat(64));
    // Each changes the list and gives the digest the refusal must name.
    type Change<'a> = Box<dyn Fn(&mut Vec<Value>) -> String + 'a>;
    let cases: [(&str, Change); 3] = [
        (
            "bundle.json lists 1 blob platform.tar does not hold for its tags",
            Box::new(|blobs: &mut Vec<Value>| {
                blobs.push(serde_json::json!({"digest": claimed, "size": 7}));
                claimed.clone()
            }),
        ),
        (
            "platform.tar holds 1 blob its tags need that bundle.json does not list",
            Box::new(|blobs: &mut Vec<Value>| blobs.remove(0)["digest"].as_str().unwrap().into()),
        ),
        (
            "bundle.json lists 1 blob platform.tar does not hold for its tags",
            Box::new(|blobs: &mut Vec<Value>| {
                let size = blobs[1]["size"].as_u64().unwrap();
                blobs[1]["size"] = (size + 1).into();
                blobs[1]["digest"].as_str().unwrap().into()
            }),
        ),
    ];
    for (says, change) in cases {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("bundle");
        sealed_bundle(&dir, false);
        let mut named = String::new();
        edit_metadata(&dir, |m| {
            let blobs = m["archives"][0]["blobs"].as_array_mut().unwrap();
            assert!(
                blobs.len() >= 3,
                "the sample holds a manifest, config and layer"
            );
            named = change(blobs);
        });
        refused_offline(&dir, false, &[says, &named]);
        let home = tempfile::tempdir().unwrap();
        let refused = Server::try_start(home.path(), &["--prefix", "p", dir.to_str().unwrap()])
            .err()
            .expect("serve refuses a bundle whose list is wrong");
        assert!(
            refused.contains(says) && refused.contains(&named),
            "{refused}"
        );
    }

    // Many wrong at once are counted, a few named: one line, not thousands.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, false);
    edit_metadata(&dir, |m| {
        let blobs = m["archives"][0]["blobs"].as_array_mut().unwrap();
        for i in 0..10 {
            let digest = format!("sha256:{}", format!("{i:x}").repeat(64));
            blobs.push(serde_json::json!({"digest": digest, "size": 1}));
        }
    });
    refused_offline(
        &dir,
        false,
        &[
            "bundle.json lists 10 blobs platform.tar does not hold",
            "7 more",
        ],
    );

    // A bundle.json listing no blobs at all (ferry before 0.2) has nothing to be held to.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("bundle");
    sealed_bundle(&dir, false);
    edit_metadata(&dir, |m| {
        m["archives"][0].as_object_mut().unwrap().remove("blobs");
    });
    let home = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = outcome(ferry(home.path()).args(["verify"]).arg(&dir));
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// A listed blob must be one a push of the bundle delivers: one its archive holds *and* a tag
/// needs. A blob lying in a layout that no tag names is never sent, so a list naming it would
/// have the next differential bundle leave it out while no target got it; the same for a
/// left-out record (a differential bundle's) that no tag needs.
#[test]
fn listed_blobs_are_those_the_tags_need() {
    // An extra blob in the layout: packed, it is in the archive and in the list.
    let work = tempfile::tempdir().unwrap();
    let layouts = work.path().join("layouts");
    make_layout(&layouts, "v1", "image", &["--seed", "4"]);
    let stray = b"a blob no manifest names";
    let digest = ferry::digest::Digest::of(stray);
    std::fs::write(layouts.join("blobs/sha256").join(digest.hex()), stray).unwrap();
    let dir = work.path().join("bundle");
    let record = sealed_archive(&dir, "platform.tar", layout_entries(&layouts, "").unwrap());
    assert!(
        record.blobs.iter().any(|b| b.digest == digest),
        "the list names every entry packed"
    );
    refused_offline(
        &dir,
        false,
        &[
            "bundle.json lists 1 blob platform.tar does not hold for its tags",
            &digest.to_string(),
        ],
    );
    // Left out of the list, the stray entry is nobody's business.
    edit_metadata(&dir, |m| {
        m["archives"][0]["blobs"]
            .as_array_mut()
            .unwrap()
            .retain(|b| b["digest"] != digest.to_string().as_str());
    });
    verified(tempfile::tempdir().unwrap().path(), &dir);

    // A left-out record no tag needs.
    edit_metadata(&dir, |m| {
        m["base"] = serde_json::json!({
            "bundle_sha256": "0".repeat(64),
            "created": "2026-01-01T00:00:00Z",
            "source": "somewhere",
            "left_out": [{"digest": digest.to_string(), "size": stray.len()}],
        });
    });
    refused_offline(
        &dir,
        false,
        &[
            "bundle.json's base lists 1 blob left out that no tag of the bundle needs",
            &digest.to_string(),
        ],
    );
}

/// rhash's `GOSTSUMS` line in `sums`, its sum replaced by 64 times `digit`.
fn text_with(sums: &[u8], digit: char) -> String {
    let text = String::from_utf8(sums.to_vec()).unwrap();
    let (head, _) = text.trim_end().rsplit_once(" = ").unwrap();
    format!("{head} = {}\n", digit.to_string().repeat(64))
}
