//! Bundles as other tools make them (`d8 mirror`'s layouts, GNU tar in any order, split
//! chunks, rhash sums) and what push leaves behind (receipts).

use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::{Duration, Instant};

use ferry::bundle::pack::{PackOptions, layout_entries};

use super::{ferry, make_layout, names_in, outcome, pack_archives, run, seal_bundle};

/// Rewrites a layout's index.json the way d8 writes it: full source references in `ref.name`,
/// the push tag in `short_tag` (or only `ref.name`), and d8's index media type.
pub fn make_d8_style(layout: &Path, repository: &str, drop_short_tag_of: Option<&str>) {
    let path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    index["mediaType"] = "application/vnd.oci.image.layout.v1+json".into();
    for descriptor in index["manifests"].as_array_mut().unwrap() {
        let tag = descriptor["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap()
            .to_string();
        let annotations = descriptor["annotations"].as_object_mut().unwrap();
        annotations.insert(
            "org.opencontainers.image.ref.name".into(),
            format!("registry.example.com:5000/{repository}:{tag}").into(),
        );
        if drop_short_tag_of != Some(tag.as_str()) {
            annotations.insert("io.deckhouse.image.short_tag".into(), tag.into());
        }
    }
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A tree as `d8 mirror pull` lays out a platform before packing it: the root layout with an
/// image (`v1.2.3`) and an index (`v1.3.0`, named only by `ref.name`, which d8 fills with a
/// full reference), and a nested `release-channel` layout with an artifact (`stable`).
/// Returns the channel layout's directory. `layer_size` sets the image's layer size.
pub fn d8_tree(tree: &Path, layer_size: Option<u32>) -> PathBuf {
    let size = layer_size.map(|s| s.to_string());
    let mut image_args = vec!["--seed", "7"];
    if let Some(size) = &size {
        image_args.extend(["--layer-size", size.as_str()]);
    }
    make_layout(tree, "v1.2.3", "image", &image_args);
    make_layout(tree, "v1.3.0", "index", &["--seed", "8"]);
    let channels = tree.join("release-channel");
    make_layout(&channels, "stable", "artifact", &["--seed", "9"]);
    make_d8_style(tree, "deckhouse/ee", Some("v1.3.0"));
    make_d8_style(&channels, "deckhouse/ee/release-channel", None);
    channels
}

/// How GNU tar orders the entries of a d8-style archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarOrder {
    /// `--sort=name`, directories included.
    Sorted,
    /// Files only, in reverse path order: a blob's bytes before entries whose paths sort first.
    Reversed,
}

/// Packs `tree` with GNU tar as d8 does (GNU headers, mtime 0, root owner) into `tar`.
pub fn d8_tar(tree: &Path, tar: &Path, order: TarOrder) {
    let mut cmd = Command::new("tar");
    cmd.args(["--format=gnu", "--mtime=@0", "--owner=0", "--group=0"]);
    match order {
        TarOrder::Sorted => {
            cmd.arg("--sort=name")
                .arg("-cf")
                .arg(tar)
                .arg("-C")
                .arg(tree)
                .arg(".");
        }
        TarOrder::Reversed => {
            let mut names = files_under(tree);
            names.reverse();
            let list = tar.with_extension("list");
            std::fs::write(&list, names.join("\n") + "\n").unwrap();
            cmd.arg("--no-recursion")
                .arg("-cf")
                .arg(tar)
                .arg("-C")
                .arg(tree)
                .arg("-T")
                .arg(&list);
        }
    }
    run(&mut cmd);
}

/// Cuts `tar` into `<bundle>/<name>.NNNN.chunk` files of `bytes` each, as d8 does.
pub fn d8_chunks(tar: &Path, bundle: &Path, name: &str, bytes: u64) -> Vec<String> {
    run(Command::new("split")
        .args([
            "-b",
            &bytes.to_string(),
            "-d",
            "-a",
            "4",
            "--additional-suffix=.chunk",
        ])
        .arg(tar)
        .arg(bundle.join(format!("{name}."))));
    names_in(bundle)
        .into_iter()
        .filter(|n| n.starts_with(name) && n.ends_with(".chunk"))
        .collect()
}

/// Writes a bare-hex `.gostsum` beside each of `files` in `dir`, computed by rhash.
pub fn rhash_gostsums(dir: &Path, files: &[String]) {
    for file in files {
        let out = run(Command::new("rhash")
            .args(["--gost12-256", "--simple"])
            .arg(dir.join(file)));
        let hex = String::from_utf8(out.stdout).unwrap();
        std::fs::write(
            dir.join(format!("{file}.gostsum")),
            hex.split_whitespace().next().unwrap(),
        )
        .unwrap();
    }
}

/// Every file under `tree`, relative, sorted bytewise.
pub fn files_under(tree: &Path) -> Vec<String> {
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

/// A push receipt (`--receipt FILE`): `(repository, tag)` → the entry.
pub fn receipt(path: &Path) -> std::collections::BTreeMap<(String, String), serde_json::Value> {
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    entries
        .into_iter()
        .map(|e| {
            (
                (
                    e["repository"].as_str().unwrap().to_string(),
                    e["tag"].as_str().unwrap().to_string(),
                ),
                e,
            )
        })
        .collect()
}

/// A sealed bundle of one small layout, as pull would leave it.
pub fn sealed_bundle(dir: &Path, gost: bool) {
    let layouts = tempfile::tempdir().unwrap();
    make_layout(layouts.path(), "v1", "image", &["--seed", "4"]);
    let records = pack_archives(
        dir,
        vec![(
            "platform.tar".into(),
            layout_entries(layouts.path(), "").unwrap(),
        )],
        &PackOptions {
            gost,
            ..PackOptions::default()
        },
    )
    .unwrap();
    seal_bundle(dir, records);
}

pub fn edit_metadata(dir: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("bundle.json");
    let mut metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    change(&mut metadata);
    std::fs::write(&path, serde_json::to_vec(&metadata).unwrap()).unwrap();
}

/// Runs verify, push (to a port where nothing listens: a refusal must come first) and, with
/// `ls`, ls, and expects each to fail quickly naming what is wrong. (ls lists what bundle.json
/// says; it is verify's job to hold bundle.json to the files.)
pub fn refused_offline(dir: &Path, ls: bool, needles: &[&str]) {
    let home = tempfile::tempdir().unwrap();
    let mut commands = vec![
        vec!["--no-progress", "verify"],
        vec!["--no-progress", "push", "--insecure"],
    ];
    if ls {
        commands.push(vec!["ls"]);
    }
    for args in commands {
        let started = Instant::now();
        let mut cmd = ferry(home.path());
        cmd.args(&args).arg(dir);
        if args.contains(&"push") {
            cmd.arg("127.0.0.1:1/x/y");
        }
        let (code, stdout, stderr) = outcome(&mut cmd);
        let out = format!("{stdout}{stderr}");
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(!out.contains("panicked"), "{args:?}: {out}");
        assert!(
            !out.contains("cannot reach"),
            "{args:?} contacted the target first: {out}"
        );
        for needle in needles {
            assert!(out.contains(needle), "{args:?}: '{needle}' in {out}");
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{args:?} hung");
    }
}

/// Flips one byte in the middle of `entry` (a path inside an archive, e.g.
/// `security/trivy-db/blobs/sha256/<hex>`) in whichever archive of the bundle in `dir` holds it,
/// in place and at the same size: a blob damaged on the disk that carried the bundle.
pub fn damage_entry(dir: &Path, entry: &str) {
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    for record in metadata["archives"].as_array().unwrap() {
        let archive = ferry::bundle::Archive::from_record(
            dir,
            &serde_json::from_value(record.clone()).unwrap(),
        );
        let index = ferry::bundle::TarIndex::read(&archive).unwrap();
        let Some(location) = index.get(entry) else {
            continue;
        };
        let file = dir.join(record["name"].as_str().unwrap());
        assert!(file.is_file(), "{entry}: one-file archives only here");
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[(location.offset + location.size / 2) as usize] ^= 0x55;
        std::fs::write(&file, &bytes).unwrap();
        return;
    }
    panic!("no archive of {} holds {entry}", dir.display());
}
