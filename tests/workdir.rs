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
    let state = serde_json::json!({
        "version": 1,
        "request": {"source": "somewhere else"},
        "created": 4_000_000_000u64,
        "chunk_size": 0,
        "gost": false,
        "images": [],
        "warnings": [],
        "manifests": [],
    });
    std::fs::write(work.join("state.json"), state.to_string()).unwrap();
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
    let state = serde_json::json!({
        "version": 1,
        "request": {"source": "somewhere else"},
        "created": 4_000_000_000u64,
        "chunk_size": 0,
        "gost": false,
        "images": [],
        "warnings": [],
        "manifests": [],
    });
    std::fs::write(work.join("state.json"), state.to_string()).unwrap();
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
