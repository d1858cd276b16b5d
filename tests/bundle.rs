//! Bundle format v1 checked by independent tools: GNU tar, sha256sum, rhash, skopeo and umoci
//! read what ferry packs; ferry's reader refuses what it must; `verify` names damaged files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use ferry::bundle::pack::{PackEntry, PackOptions, PackSource, archive_size, layout_entries};
use ferry::bundle::{Archive, ArchiveRecord, BundleError, TarIndex};
use proptest::prelude::*;

/// Packs `(archive, prefix, layout dir)` triples and seals the bundle as pull would.
fn pack(
    bundle: &Path,
    layouts: &[(&str, &str, &Path)],
    options: PackOptions,
) -> Vec<ArchiveRecord> {
    let mut archives: Vec<(String, Vec<PackEntry>)> = Vec::new();
    for (archive, prefix, dir) in layouts {
        let entries = layout_entries(dir, prefix).unwrap();
        match archives.iter_mut().find(|(name, _)| name == archive) {
            Some((_, existing)) => existing.extend(entries),
            None => archives.push((archive.to_string(), entries)),
        }
    }
    let records = pack_archives(bundle, archives, &options).unwrap();
    seal_bundle(bundle, records.clone());
    records
}

/// The root layout and the `install` one, packed into `platform.tar`.
fn pack_platform(
    bundle: &Path,
    root: &Path,
    install: &Path,
    options: PackOptions,
) -> Vec<ArchiveRecord> {
    pack(
        bundle,
        &[
            ("platform.tar", "", root),
            ("platform.tar", "install", install),
        ],
        options,
    )
}

/// A root layout (an image and an index) and a nested one (an artifact), written by
/// `ferry copy` as pull writes layouts: every tag carries `ref.name` and `short_tag`.
fn two_layouts() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let made = dir.path().join("made");
    let root = dir.path().join("root");
    let install = dir.path().join("install");
    let home = dir.path().join("home");
    let layer = ["--layer-size", "20000"];
    for (seed, tag, kind, target) in [
        ("1", "v1.0.0", "image", &root),
        ("2", "v1.1.0", "index", &root),
        ("3", "v1.0.0", "artifact", &install),
    ] {
        let source = made.join(seed);
        make_layout(
            &source,
            tag,
            kind,
            &[&["--seed", seed][..], &layer[..]].concat(),
        );
        ferry_ok(
            ferry(&home)
                .args(["-q", "copy"])
                .arg(format!("oci:{}:{tag}", source.display()))
                .arg(format!("oci:{}:{tag}", target.display())),
        );
    }
    (dir, root, install)
}

fn entry_bytes(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|j| (i * 31 + j * 7) as u8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the entry sizes and wherever the chunk cuts fall (inside headers, inside data,
    /// on block boundaries), the index finds every entry and reads back its exact bytes.
    #[test]
    fn entries_round_trip_through_any_chunking(
        sizes in prop::collection::vec(0usize..3000, 1..7),
        chunk in prop_oneof![Just(0u64), 1u64..4000],
        long_name in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<PackEntry> = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| PackEntry {
                path: if long_name && i == 0 {
                    format!("modules/{}/blobs/sha256/{i}", "x".repeat(120))
                } else {
                    format!("dir{i}/file")
                },
                source: PackSource::Bytes(entry_bytes(i, size)),
            })
            .collect();
        let options = PackOptions { chunk_size: chunk, gost: false, force: false };
        let record = pack_archive(dir.path(), "t.tar", entries.clone(), &options).unwrap();
        prop_assert_eq!(record.size(), archive_size(&entries));
        if chunk > 0 {
            let (last, full) = record.files.split_last().unwrap();
            prop_assert!(full.iter().all(|f| f.size == chunk));
            prop_assert!(last.size > 0 && last.size <= chunk);
        } else {
            prop_assert_eq!(record.files.len(), 1);
        }
        let archive = Archive::from_record(dir.path(), &record);
        let index = TarIndex::read(&archive).unwrap();
        for (i, entry) in entries.iter().enumerate() {
            let location = index.get(&entry.path).unwrap();
            let bytes = index.read_small(location, u64::MAX).unwrap();
            prop_assert_eq!(bytes, entry_bytes(i, sizes[i]));
        }
        prop_assert_eq!(index.entries().count(), entries.len());
    }
}

#[test]
fn the_same_input_gives_the_same_bytes_and_gnu_tar_sees_plain_files() {
    let (_dir, root, install) = two_layouts();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let layouts = [
        ("platform.tar", "", root.as_path()),
        ("platform.tar", "install", &install),
    ];
    pack(a.path(), &layouts, PackOptions::default());
    pack(b.path(), &layouts, PackOptions::default());
    let bytes_a = std::fs::read(a.path().join("platform.tar")).unwrap();
    assert_eq!(
        bytes_a,
        std::fs::read(b.path().join("platform.tar")).unwrap()
    );

    let listing = run(Command::new("tar")
        .args(["--utc", "-tvf"])
        .arg(a.path().join("platform.tar")));
    let listing = String::from_utf8(listing.stdout).unwrap();
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted bytewise");
    assert!(names.contains(&"install/index.json") && names.contains(&"oci-layout"));
    for line in listing.lines() {
        assert!(
            line.starts_with("-rw-r--r-- 0/0") && line.contains("1970-01-01 00:00"),
            "not a plain 0644 file owned by 0 with mtime 0: {line}"
        );
    }
}

#[test]
fn standard_tools_check_the_sums_and_gostsums_match_rhash() {
    let (_dir, root, install) = two_layouts();
    let bundle = tempfile::tempdir().unwrap();
    let options = PackOptions {
        chunk_size: 16 * 1024,
        gost: true,
        force: false,
    };
    let records = pack(
        bundle.path(),
        &[
            ("platform.tar", "", &root),
            ("security.tar", "install", &install),
        ],
        options,
    );
    let files: Vec<&str> = records
        .iter()
        .flat_map(|r| &r.files)
        .map(|f| f.name.as_str())
        .collect();
    assert!(files.len() > 4, "chunks were cut: {files:?}");
    for file in &files {
        let sum = std::fs::read_to_string(bundle.path().join(format!("{file}.gostsum"))).unwrap();
        let rhash = run(Command::new("rhash")
            .args(["--gost12-256", "--simple"])
            .arg(bundle.path().join(file)));
        let expected = String::from_utf8(rhash.stdout).unwrap();
        assert_eq!(sum, expected.split_whitespace().next().unwrap(), "{file}");
        assert_eq!(sum.len(), 64, "hex only, no newline");
    }
    run(Command::new("sha256sum")
        .args(["--strict", "-c", "SHA256SUMS"])
        .current_dir(bundle.path()));
    let rhash = run(Command::new("rhash")
        .args(["-c", "GOSTSUMS"])
        .current_dir(bundle.path()));
    let report = String::from_utf8_lossy(&rhash.stdout);
    assert!(report.contains("Everything OK"), "{report}");
    for file in &files {
        assert!(report.contains(file), "rhash checked {file}: {report}");
    }
    // A damaged file fails the standard tools too, so the lists really bind the content.
    let victim = bundle.path().join(files[1]);
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let sha = Command::new("sha256sum")
        .args(["--quiet", "-c", "SHA256SUMS"])
        .current_dir(bundle.path())
        .output()
        .unwrap();
    assert!(!sha.status.success());
    let gost = Command::new("rhash")
        .args(["-c", "GOSTSUMS"])
        .current_dir(bundle.path())
        .output()
        .unwrap();
    assert!(!gost.status.success());
}

#[test]
fn verify_names_a_damaged_a_missing_and_a_truncated_chunk() {
    let (_dir, root, install) = two_layouts();
    let bundle = tempfile::tempdir().unwrap();
    let options = PackOptions {
        chunk_size: 20_000,
        gost: true,
        force: false,
    };
    let records = pack_platform(bundle.path(), &root, &install, options);
    let chunks: Vec<String> = records[0].files.iter().map(|f| f.name.clone()).collect();
    assert!(chunks.len() >= 4, "{chunks:?}");
    let (code, out) = verify_output(bundle.path(), &["--gost"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK"), "{out}");

    // One flipped byte inside chunk 0002: both sums and the blob's digest say where.
    let victim = bundle.path().join(&chunks[2]);
    let original = std::fs::read(&victim).unwrap();
    let mut bytes = original.clone();
    bytes[5000] ^= 0x40;
    std::fs::write(&victim, &bytes).unwrap();
    let (code, out) = verify_output(bundle.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("{}: SHA-256 is", chunks[2])), "{out}");
    assert!(
        out.contains(&format!("{}: bundle.json says GOST sum", chunks[2]))
            && out.contains("(the file is damaged)"),
        "{out}"
    );
    assert!(!out.contains(&format!("{}: SHA-256", chunks[1])), "{out}");
    std::fs::write(&victim, &original).unwrap();

    // The last chunk gone: bundle.json knows it existed.
    let last = bundle.path().join(chunks.last().unwrap());
    let kept = std::fs::read(&last).unwrap();
    std::fs::remove_file(&last).unwrap();
    let (code, out) = verify_output(bundle.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("{} is missing", chunks.last().unwrap())),
        "{out}"
    );
    std::fs::write(&last, &kept).unwrap();

    // A truncated chunk is refused before anything is read.
    let first = bundle.path().join(&chunks[0]);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap();
    file.set_len(1000).unwrap();
    let (code, out) = verify_output(bundle.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{} is 1000 bytes, bundle.json says 20000",
            chunks[0]
        )),
        "{out}"
    );
}

#[test]
fn a_tar_cut_at_a_header_boundary_is_refused() {
    let (_dir, root, _install) = two_layouts();
    let bundle = tempfile::tempdir().unwrap();
    let entries = layout_entries(&root, "").unwrap();
    pack_archive(
        bundle.path(),
        "platform.tar",
        entries,
        &PackOptions::default(),
    )
    .unwrap();
    // Drop the end-of-archive marker and the last entry: what is left ends on a header
    // boundary and reads as a shorter valid tar to a lenient reader.
    let path = bundle.path().join("platform.tar");
    let bytes = std::fs::read(&path).unwrap();
    let archive = Archive::from_record(
        bundle.path(),
        &ArchiveRecord {
            name: "platform.tar".into(),
            files: vec![ferry::bundle::FileRecord {
                name: "platform.tar".into(),
                size: bytes.len() as u64,
                sha256: String::new(),
                gost: None,
            }],
            blobs: Vec::new(),
        },
    );
    let index = TarIndex::read(&archive).unwrap();
    let last = index
        .entries()
        .map(|(_, l)| l)
        .max_by_key(|l| l.offset)
        .unwrap();
    let header_of_last = last.offset - 512;
    std::fs::write(&path, &bytes[..header_of_last as usize]).unwrap();
    let (code, out) = verify_output(bundle.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("end-of-archive marker"), "{out}");
}

#[test]
fn gnu_tar_extracts_layouts_that_skopeo_and_umoci_read() {
    let (_dir, root, install) = two_layouts();
    let bundle = tempfile::tempdir().unwrap();
    pack_platform(bundle.path(), &root, &install, PackOptions::default());
    let listed = ls_json(bundle.path());
    let images = listed.as_array().unwrap();
    let keys: Vec<(String, String)> = images
        .iter()
        .map(|i| {
            (
                i["path"].as_str().unwrap().into(),
                i["tag"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("".into(), "v1.0.0".into()),
            ("".into(), "v1.1.0".into()),
            ("install".into(), "v1.0.0".into())
        ]
    );

    let out = tempfile::tempdir().unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(bundle.path().join("platform.tar"))
        .arg("-C")
        .arg(out.path()));
    for image in images {
        let layout = out.path().join(image["path"].as_str().unwrap());
        let tag = image["tag"].as_str().unwrap();
        let raw = layout_raw_manifest(&layout, tag);
        assert_eq!(
            ferry::digest::Digest::of(&raw).to_string(),
            image["digest"].as_str().unwrap()
        );
        skopeo_verifies_layout(&layout, tag);
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        for descriptor in index["manifests"].as_array().unwrap() {
            let annotations = &descriptor["annotations"];
            assert_eq!(
                annotations["org.opencontainers.image.ref.name"],
                annotations["io.deckhouse.image.short_tag"]
            );
        }
        let umoci = run(Command::new("umoci").arg("ls").arg("--layout").arg(&layout));
        assert!(
            String::from_utf8_lossy(&umoci.stdout)
                .lines()
                .any(|l| l == tag)
        );
    }

    // The listing from bundle.json equals the one read from the archives themselves.
    std::fs::remove_file(bundle.path().join("bundle.json")).unwrap();
    assert_eq!(&ls_json(bundle.path()), &listed);
}

#[test]
fn repacking_needs_force_and_then_removes_stale_chunks() {
    let (_dir, root, _install) = two_layouts();
    let bundle = tempfile::tempdir().unwrap();
    let small = PackOptions {
        chunk_size: 10_000,
        gost: true,
        force: false,
    };
    let entries = layout_entries(&root, "").unwrap();
    let first = pack_archive(bundle.path(), "platform.tar", entries.clone(), &small).unwrap();
    assert!(first.files.len() > 3);
    match pack_archive(bundle.path(), "platform.tar", entries.clone(), &small) {
        Err(BundleError::Exists { path }) => assert!(path.ends_with(&first.files[0].name)),
        other => panic!("expected a refusal, got {other:?}"),
    }
    std::fs::write(bundle.path().join("unrelated.txt"), "keep me").unwrap();
    let big = PackOptions {
        chunk_size: 30_000,
        gost: false,
        force: true,
    };
    let second = pack_archive(bundle.path(), "platform.tar", entries, &big).unwrap();
    assert!(second.files.len() < first.files.len());
    let mut expected: Vec<String> = second.files.iter().map(|f| f.name.clone()).collect();
    expected.push("unrelated.txt".into());
    expected.sort();
    assert_eq!(
        names_in(bundle.path()),
        expected,
        "stale chunks and gostsums are gone"
    );
}

#[test]
fn verify_holds_bundle_json_to_what_the_archives_contain() {
    let (_dir, root, install) = two_layouts();
    let bundle = tempfile::tempdir().unwrap();
    pack_platform(bundle.path(), &root, &install, PackOptions::default());
    let path = bundle.path().join("bundle.json");
    let mut metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let images = metadata["images"].as_array_mut().unwrap();
    assert_eq!(images.len(), 3);
    images[0]["tag"] = "v9.9.9".into();
    images[2]["digest"] = format!("sha256:{}", "0".repeat(64)).into();
    std::fs::write(&path, serde_json::to_vec(&metadata).unwrap()).unwrap();
    let (code, out) = verify_output(bundle.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("bundle.json lists (root):v9.9.9 but no archive holds it"),
        "{out}"
    );
    assert!(
        out.contains("(root):v1.0.0 is in an archive but not in bundle.json"),
        "{out}"
    );
    assert!(
        out.contains("bundle.json says install:v1.0.0 is sha256:0000"),
        "{out}"
    );
}
