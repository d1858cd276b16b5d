//! The pull's work directory is ferry's own: a link where it goes, or a planted state and
//! journal naming files elsewhere, never make a pull write, empty or delete anything outside
//! the bundle and its work directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A registry with one small image at `src/db:1`, and a layout description that takes just it.
struct Source {
    registry: Registry,
    layout: PathBuf,
    _files: tempfile::TempDir,
}

impl Source {
    fn start() -> Source {
        let registry = Registry::start("plain");
        let files = tempfile::tempdir().unwrap();
        let layout_dir = files.path().join("oci");
        make_layout(&layout_dir, "1", "image", &["--seed", "21"]);
        registry.seed(&layout_dir, "1", "src/db:1");
        let layout = one_database_layout(files.path(), "db", "1");
        Source {
            registry,
            layout,
            _files: files,
        }
    }

    fn pull(&self, home: &Path, dir: &Path, extra: &[&str]) -> Command {
        let mut cmd = ferry(home);
        cmd.args(["--no-progress", "pull"])
            .arg(dir)
            .args(["--source", &self.registry.at("src"), "--insecure"])
            .args(["--no-platform", "--no-modules", "--layout"])
            .arg(&self.layout)
            .args(extra);
        cmd
    }
}

/// A state file of a pull of something else, with nothing planned, in `work`.
fn plant_state(work: &Path) {
    let state = serde_json::json!({
        "version": 2,
        "request": {"source": "somewhere else"},
        "created": 4_000_000_000u64,
        "chunk_size": 0,
        "gost": false,
        "images": [],
        "warnings": [],
        "manifests": [],
    });
    std::fs::write(work.join("state.json"), state.to_string()).unwrap();
}

/// A directory of the user's with files that must survive.
fn victim(parent: &Path) -> PathBuf {
    let dir = parent.join("precious");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("notes.txt"), "keep me").unwrap();
    std::fs::write(dir.join("sub/deep.tar"), "keep me too").unwrap();
    std::fs::write(dir.join("state.json"), "not ferry's").unwrap();
    std::fs::write(dir.join("journal"), "not ferry's either").unwrap();
    std::fs::write(dir.join("lock"), "a lock of someone else's").unwrap();
    dir
}

fn assert_untouched(dir: &Path) {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(read("notes.txt"), "keep me");
    assert_eq!(read("sub/deep.tar"), "keep me too");
    assert_eq!(read("state.json"), "not ferry's");
    assert_eq!(read("journal"), "not ferry's either");
    assert_eq!(read("lock"), "a lock of someone else's");
    assert_eq!(
        names_in(dir),
        ["journal", "lock", "notes.txt", "state.json", "sub"]
    );
}

#[test]
fn a_symlinked_work_dir_is_refused_and_its_target_untouched() {
    let source = Source::start();
    let home = tempfile::tempdir().unwrap();
    let victim = victim(home.path());

    // The default place: <bundle>/.tmp/ferry-pull, and <bundle>/.tmp itself.
    for link in [".tmp/ferry-pull", ".tmp"] {
        let bundle = home.path().join(format!("bundle-{}", link.len()));
        let at = bundle.join(link);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &at).unwrap();
        let (code, stdout, stderr) = outcome(&mut source.pull(home.path(), &bundle, &[]));
        assert_eq!(code, 1, "{link}: {stdout}{stderr}");
        assert!(
            stderr.contains("is a symbolic link") && stderr.contains("hint:"),
            "{link}: {stderr}"
        );
        assert_untouched(&victim);
        assert!(
            std::fs::symlink_metadata(&at).unwrap().is_symlink(),
            "the link itself stays"
        );
    }

    // --tmp-dir DIR: DIR may be the user's link, ferry-pull below it may not.
    let tmp = home.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::os::unix::fs::symlink(&victim, tmp.join("ferry-pull")).unwrap();
    let bundle = home.path().join("bundle-t");
    let tmp_arg = tmp.display().to_string();
    let (code, _, stderr) =
        outcome(&mut source.pull(home.path(), &bundle, &["--tmp-dir", &tmp_arg]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_untouched(&victim);

    // A --tmp-dir that is itself a link is the user's choice and works.
    let linked_tmp = home.path().join("linked-tmp");
    let real_tmp = home.path().join("real-tmp");
    std::fs::create_dir(&real_tmp).unwrap();
    std::os::unix::fs::symlink(&real_tmp, &linked_tmp).unwrap();
    let bundle = home.path().join("bundle-ok");
    let tmp_arg = linked_tmp.display().to_string();
    ferry_ok(&mut source.pull(home.path(), &bundle, &["--tmp-dir", &tmp_arg]));
    verified(home.path(), &bundle);
    assert!(names_in(&real_tmp).is_empty(), "{:?}", names_in(&real_tmp));
}

/// A state file of another request plus a journal naming files elsewhere: starting over
/// removes only files of that state's own plan, in the bundle directory.
#[test]
fn a_planted_journal_cannot_make_starting_over_delete_anything_else() {
    let source = Source::start();
    let home = tempfile::tempdir().unwrap();
    let victim = victim(home.path());
    let outside = victim.join("notes.txt").display().to_string();
    let bundle = home.path().join("bundle");
    let work = bundle.join(".tmp/ferry-pull");
    std::fs::create_dir_all(&work).unwrap();
    plant_state(&work);
    std::fs::write(
        work.join("journal"),
        format!(
            "sealed {outside} 7 {} -\nsealed ../precious/sub/deep.tar 11 {} -\n",
            "0".repeat(64),
            "0".repeat(64)
        ),
    )
    .unwrap();
    // Files of the user's beside the work directory, named like archives.
    std::fs::write(work.join("mine.txt"), "mine").unwrap();

    let (code, stdout, stderr) = outcome(&mut source.pull(home.path(), &bundle, &[]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("starting over"), "{stderr}");
    assert_untouched(&victim);
    verified(home.path(), &bundle);
    // Only ferry's own files went; the user's file in the work directory stays with it.
    assert_eq!(
        std::fs::read_to_string(work.join("mine.txt")).unwrap(),
        "mine"
    );
    assert_eq!(names_in(&work), ["mine.txt"]);
}

/// A planted journal claiming a plain archive name the bundle directory holds (but the state's
/// plan does not) neither makes that file "ours" nor gets it deleted.
#[test]
fn a_journal_cannot_claim_a_file_its_plan_does_not_have() {
    let source = Source::start();
    let home = tempfile::tempdir().unwrap();
    let bundle = home.path().join("bundle");
    let work = bundle.join(".tmp/ferry-pull");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(bundle.join("precious.tar"), "the user's").unwrap();
    plant_state(&work);
    std::fs::write(
        work.join("journal"),
        format!("sealed precious.tar 10 {} -\n", "0".repeat(64)),
    )
    .unwrap();
    let (code, _, stderr) = outcome(&mut source.pull(home.path(), &bundle, &[]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("is not empty") && stderr.contains("precious.tar"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("precious.tar")).unwrap(),
        "the user's"
    );
}

/// Links planted under ferry's own file names in a real work directory are refused or
/// replaced, never written through.
#[test]
fn links_under_the_work_dirs_file_names_are_never_written_through() {
    let source = Source::start();
    let home = tempfile::tempdir().unwrap();
    let victim = victim(home.path());
    let bundle = home.path().join("bundle");
    let work = bundle.join(".tmp/ferry-pull");
    std::fs::create_dir_all(&work).unwrap();
    for name in ["lock", "journal", "state.json"] {
        std::os::unix::fs::symlink(victim.join(name), work.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(
        victim.join("notes.txt"),
        work.join("security.tar.ferry-tmp"),
    )
    .unwrap();
    let (code, stdout, stderr) = outcome(&mut source.pull(home.path(), &bundle, &[]));
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_untouched(&victim);
}

/// The blob files of a registry's storage (`<dir>/data/.../blobs/sha256/xx/<hex>/data`) whose
/// digest is one of `hexes`.
fn stored_blobs(registry: &Registry, hexes: &[String]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for file in files_under(&registry.dir.path().join("data")) {
        let path = registry.dir.path().join("data").join(&file);
        if file.ends_with("/data") && hexes.iter().any(|h| file.contains(&format!("/{h}/data"))) {
            found.push(path);
        }
    }
    found
}

/// A first pull that fails on a blob the source lost, leaving its work directory; the blob is
/// back afterwards. Returns the state file.
fn interrupted_pull(source: &Source, home: &Path, bundle: &Path) -> PathBuf {
    let layouts = tempfile::tempdir().unwrap();
    let digest = make_layout(layouts.path(), "1", "image", &["--seed", "21"]);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layouts.path().join("blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap()[7..].to_string())
        .collect();
    let hidden: Vec<(PathBuf, PathBuf)> = stored_blobs(&source.registry, &layers)
        .into_iter()
        .map(|p| (p.clone(), p.with_extension("hidden")))
        .collect();
    assert!(!hidden.is_empty());
    for (from, to) in &hidden {
        std::fs::rename(from, to).unwrap();
    }
    let (code, _, stderr) = outcome(&mut source.pull(home, bundle, &[]));
    assert_eq!(code, 1, "{stderr}");
    for (from, to) in &hidden {
        std::fs::rename(to, from).unwrap();
    }
    let state = bundle.join(".tmp/ferry-pull/state.json");
    assert!(state.exists(), "the failed pull left its state");
    state
}

/// A state file is the plan a rerun continues: archive names in it become file names. A
/// planted `../OUTSIDE.tar` or an absolute path once made the resumed pull write there.
#[test]
fn a_resumed_state_cannot_name_files_outside_the_bundle() {
    let source = Source::start();
    let home = tempfile::tempdir().unwrap();
    let victim = victim(home.path());
    for evil in [
        "../OUTSIDE.tar".to_string(),
        victim.join("notes.txt").display().to_string(),
        "sub/inner.tar".to_string(),
    ] {
        let bundle = home.path().join(format!("bundle-{}", evil.len()));
        let state = interrupted_pull(&source, home.path(), &bundle);
        let mut value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        for image in value["images"].as_array_mut().unwrap() {
            image["archive"] = evil.clone().into();
        }
        std::fs::write(&state, serde_json::to_vec(&value).unwrap()).unwrap();
        let (code, stdout, stderr) = outcome(&mut source.pull(home.path(), &bundle, &[]));
        assert_eq!(code, 0, "{evil}: {stdout}{stderr}");
        assert!(
            stderr.contains("starting over") && stderr.contains("plans what a bundle cannot hold"),
            "{evil}: {stderr}"
        );
        assert_untouched(&victim);
        assert!(!home.path().join("OUTSIDE.tar").exists());
        assert!(!bundle.join("sub").exists());
        verified(home.path(), &bundle);
    }
}

/// On another file system than the work directory, a finished file is copied into the bundle
/// directory under a temporary name: a link planted under that name was written through.
#[test]
fn a_link_under_a_temporary_name_in_the_bundle_is_replaced_not_written_through() {
    let source = Source::start();
    let home = tempfile::tempdir().unwrap();
    let victim = victim(home.path());
    let tmpfs = Tmpfs::mount("64m");
    let bundle = home.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::os::unix::fs::symlink(
        victim.join("notes.txt"),
        bundle.join("security.tar.ferry-tmp"),
    )
    .unwrap();
    let tmp = tmpfs.path().display().to_string();
    ferry_ok(&mut source.pull(home.path(), &bundle, &["--force", "--tmp-dir", &tmp]));
    assert_untouched(&victim);
    assert!(
        std::fs::symlink_metadata(bundle.join("security.tar"))
            .unwrap()
            .is_file()
    );
    verified(home.path(), &bundle);
}

/// The work directory is emptied when a pull ends: the bundle cannot be it or lie inside it.
#[test]
fn the_bundle_cannot_be_the_work_directory() {
    let source = Source::start();
    let home = tempfile::tempdir().unwrap();
    let tmp = home.path().join("w");
    let tmp_arg = tmp.display().to_string();
    for bundle in [tmp.join("ferry-pull"), tmp.join("ferry-pull/inner")] {
        let (code, _, stderr) =
            outcome(&mut source.pull(home.path(), &bundle, &["--tmp-dir", &tmp_arg]));
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("the bundle directory is the work directory or inside it"),
            "{stderr}"
        );
    }
}

/// `--tmp-dir` inside the bundle directory, spelled any way, is ferry's own there: a link
/// planted at `<bundle>/.tmp` is refused as the default place's would be.
#[test]
fn a_tmp_dir_inside_the_bundle_is_checked_however_spelled() {
    let source = Source::start();
    let home = tempfile::tempdir().unwrap();
    let victim = victim(home.path());
    let bundle = home.path().join("b");
    std::fs::create_dir(&bundle).unwrap();
    std::os::unix::fs::symlink(&victim, bundle.join(".tmp")).unwrap();
    for spelled in ["./b/.tmp", "b/./.tmp", "b/x/../.tmp"] {
        let (code, _, stderr) = outcome(
            source
                .pull(
                    home.path(),
                    Path::new("b"),
                    &["--force", "--tmp-dir", spelled],
                )
                .current_dir(home.path()),
        );
        assert_eq!(code, 1, "{spelled}: {stderr}");
        assert!(stderr.contains("is a symbolic link"), "{spelled}: {stderr}");
        assert_untouched(&victim);
    }
}

/// With --force, archives of another bundle in the directory would make this one fail verify
/// (bundle.json does not list them): they are named, and neither used nor removed, whatever a
/// planted journal says of them.
#[test]
fn force_names_archives_of_another_bundle_and_leaves_them() {
    let source = Source::start();
    let home = tempfile::tempdir().unwrap();
    let bundle = home.path().join("bundle");
    let state = interrupted_pull(&source, home.path(), &bundle);
    std::fs::write(bundle.join("precious.tar"), "the user's").unwrap();
    let journal = state.with_file_name("journal");
    let mut text = std::fs::read_to_string(&journal).unwrap_or_default();
    text.push_str(&format!("sealed precious.tar 10 {} -\n", "0".repeat(64)));
    std::fs::write(&journal, text).unwrap();
    // A changed chunk size: the earlier run's files would move aside to be re-laid.
    let (code, _, stderr) =
        outcome(&mut source.pull(home.path(), &bundle, &["--force", "-c", "1GB"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("holds archives this pull does not write (precious.tar)"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("precious.tar")).unwrap(),
        "the user's"
    );
}
