//! The bundle readers (verify, ls, push's inventory) take archives as other tools write them
//! (d8 mirror, GNU tar, Python's tarfile): entries in any order, with or without directories,
//! chunked or not; and they refuse what could escape or exhaust them (links, devices, `..`,
//! huge extension headers). Every problem is a message naming the file, never a panic.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// d8 writes a blob's bytes before entries whose paths sort first (index.json last, blobs in
/// the order it fetched them); verify walked a file's blobs in path order and sliced out of
/// range. Any order is a tar like any other.
#[test]
fn verify_reads_an_unchunked_d8_bundle_whose_entries_are_not_in_path_order() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    d8_tree(&tree, Some(30000));
    let bundle = work.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    // Reverse path order: the last blob by path comes first in the file.
    d8_tar(&tree, &bundle.join("platform.tar"), TarOrder::Reversed);
    let names = files_under(&tree);

    let (code, out) = verify_output(&bundle, &[]);
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
    let (code, out) = verify_output(&bundle, &[]);
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
    d8_tree(&tree, None);
    let bundle = work.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let tar = bundle.join("platform.tar");
    d8_tar(&tree, &tar, TarOrder::Sorted);
    // GNU tar pads to 10 KiB records; strip the zero blocks after the last entry.
    let mut bytes = std::fs::read(&tar).unwrap();
    while bytes.len() >= 512 && bytes[bytes.len() - 512..].iter().all(|&b| b == 0) {
        bytes.truncate(bytes.len() - 512);
    }
    std::fs::write(&tar, &bytes).unwrap();
    let (code, out) = verify_output(&bundle, &[]);
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

/// Writes `platform.tar` in `dir` with Python's tarfile: a valid `oci-layout` entry, then
/// whatever `body` adds to the open archive `t` (helpers: `add(name, data)`).
fn python_tar(dir: &Path, format: &str, body: &str) {
    let script = format!(
        r#"
import io, tarfile
def add(t, name, data, **fields):
    info = tarfile.TarInfo(name)
    for k, v in fields.items():
        setattr(info, k, v)
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
with tarfile.open("{tar}", "w", format=tarfile.{format}) as t:
    add(t, "oci-layout", b'{{"imageLayoutVersion":"1.0.0"}}')
{body}
"#,
        tar = dir.join("platform.tar").display()
    );
    run(Command::new("python3").arg("-c").arg(&script));
}

#[test]
fn unsafe_tars_are_refused_with_the_entry_named() {
    let upper = format!("blobs/sha256/{}", "AB".repeat(32));
    let upper_body = format!("    add(t, \"{upper}\", b\"x\")");
    let upper_refused = format!("entry '{upper}' is refused");
    let cases: [(&str, &str, &str, &[&str]); 9] = [
        (
            "dotdot",
            "GNU_FORMAT",
            r#"    add(t, "../x", b"bad")"#,
            &["entry '../x' is refused", "'..'"],
        ),
        (
            "absolute",
            "GNU_FORMAT",
            r#"    add(t, "/tmp/ferry-abs-x", b"bad")"#,
            &["entry '/tmp/ferry-abs-x' is refused", "absolute"],
        ),
        (
            "symlink",
            "GNU_FORMAT",
            r#"    add(t, "link", b"", type=tarfile.SYMTYPE, linkname="/etc/passwd")"#,
            &["entry 'link' is refused", "symbolic links"],
        ),
        (
            "hardlink",
            "GNU_FORMAT",
            r#"    add(t, "hard", b"", type=tarfile.LNKTYPE, linkname="oci-layout")"#,
            &["entry 'hard' is refused", "hard links"],
        ),
        (
            "device",
            "GNU_FORMAT",
            r#"    add(t, "dev", b"", type=tarfile.CHRTYPE, devmajor=1, devminor=3)"#,
            &["entry 'dev' is refused", "device files"],
        ),
        (
            "duplicate",
            "GNU_FORMAT",
            "    add(t, \"dup\", b\"one\")\n    add(t, \"dup\", b\"two\")",
            &["entry 'dup' is refused", "appears twice"],
        ),
        (
            "control",
            "GNU_FORMAT",
            r#"    add(t, "a\x1bb", b"x")"#,
            &["entry 'a?b' is refused", "control character"],
        ),
        (
            "pax",
            "PAX_FORMAT",
            r#"    add(t, "big", b"x", pax_headers={"comment": "c" * 20_000_000})"#,
            &["is refused", "over 64 KiB"],
        ),
        (
            "uppercase",
            "GNU_FORMAT",
            &upper_body,
            &[&upper_refused, "lowercase hex"],
        ),
    ];
    for (name, format, body, needles) in cases {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("bundle");
        std::fs::create_dir(&dir).unwrap();
        python_tar(&dir, format, body);
        let home = tempfile::tempdir().unwrap();
        for command in ["ls", "verify", "push"] {
            let mut cmd = ferry(home.path());
            cmd.arg(command).arg(&dir);
            if command == "push" {
                // Nothing listens there: the refusal must come before the target is asked.
                cmd.args(["--insecure", "127.0.0.1:1/x"]);
            }
            let (code, stdout, stderr) = outcome(&mut cmd);
            assert_eq!(code, 1, "{command} {name}: {stdout}{stderr}");
            for needle in needles {
                assert!(
                    stderr.contains(needle),
                    "{command} {name}: {needle}: {stderr}"
                );
            }
            assert!(
                !stderr.contains('\u{1b}'),
                "{command} {name}: raw control characters"
            );
        }
    }
}

#[test]
fn a_huge_pax_header_is_refused_without_reading_it() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("bundle");
    std::fs::create_dir(&dir).unwrap();
    python_tar(
        &dir,
        "PAX_FORMAT",
        r#"    add(t, "big", b"x", pax_headers={"comment": "c" * 150_000_000})"#,
    );
    let home = tempfile::tempdir().unwrap();
    let stats = home.path().join("time");
    let ferry_bin = env!("CARGO_BIN_EXE_ferry");
    let (code, _, stderr) = outcome(
        Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o"])
            .arg(&stats)
            .args([ferry_bin, "ls"])
            .arg(&dir),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("over 64 KiB"), "{stderr}");
    // GNU time puts "Command exited with non-zero status 1" first.
    let rss: u64 = std::fs::read_to_string(&stats)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(rss < 64 * 1024, "peak RSS {rss} KiB");
}

#[test]
fn a_d8_style_bundle_lists_and_verifies() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    d8_tree(&tree, Some(30000));

    // d8 packs with GNU tar headers, splits into numbered chunks and writes bare-hex
    // .gostsum files.
    let bundle = work.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let tar = work.path().join("platform.tar");
    d8_tar(&tree, &tar, TarOrder::Sorted);
    let chunks = d8_chunks(&tar, &bundle, "platform.tar", 25000);
    assert!(chunks.len() >= 3, "{chunks:?}");
    rhash_gostsums(&bundle, &chunks);

    let listed = ls_json(&bundle);
    let tags: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["path"].as_str().unwrap(), i["tag"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tags,
        [
            ("", "v1.2.3"),
            ("", "v1.3.0"),
            ("release-channel", "stable")
        ]
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tree.join("index.json")).unwrap()).unwrap();
    let pinned = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["io.deckhouse.image.short_tag"] == "v1.2.3")
        .unwrap();
    assert_eq!(listed[0]["digest"], pinned["digest"]);
    assert_eq!(listed[0]["media_type"], pinned["mediaType"]);

    let (code, out) = verify_output(&bundle, &["--gost"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 tags checked"), "{out}");

    // Without bundle.json a sum list is the only record of the files: one it names that is
    // gone is a problem (rhash -c would say Miss), and so are two sums for one file.
    let mut lines = run(std::process::Command::new("rhash")
        .args(["--gost12-256", "--bsd"])
        .args(&chunks)
        .current_dir(&bundle))
    .stdout;
    lines.extend(format!("GOST12-256 (module-lost.tar) = {}\n", "4".repeat(64)).bytes());
    std::fs::write(bundle.join("GOSTSUMS"), &lines).unwrap();
    let (code, out) = verify_output(&bundle, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("GOSTSUMS lists module-lost.tar, which is not in the bundle"),
        "{out}"
    );
    let doubled = format!(
        "GOST12-256 ({}) = {}\n{}",
        chunks[0],
        "5".repeat(64),
        String::from_utf8(lines).unwrap()
    );
    std::fs::write(bundle.join("GOSTSUMS"), doubled).unwrap();
    let (code, out) = verify_output(&bundle, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("GOSTSUMS gives {} two different sums", chunks[0])),
        "{out}"
    );
    std::fs::remove_file(bundle.join("GOSTSUMS")).unwrap();

    // A SHA256SUMS however sha256sum writes it (`-b`'s `*name`, `./name`) is read and, with no
    // bundle.json to hold the sums, checked against the files.
    let listed = run(std::process::Command::new("sha256sum")
        .arg("-b")
        .args(chunks.iter().map(|c| format!("./{c}")))
        .current_dir(&bundle))
    .stdout;
    std::fs::write(bundle.join("SHA256SUMS"), &listed).unwrap();
    let (code, out) = verify_output(&bundle, &[]);
    assert_eq!(code, 0, "{out}");
    let text = String::from_utf8(listed).unwrap();
    let wrong = text.replacen(&text[..64], &"7".repeat(64), 1);
    std::fs::write(bundle.join("SHA256SUMS"), wrong).unwrap();
    let (code, out) = verify_output(&bundle, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{}: SHA-256 is {}, SHA256SUMS says {}",
            chunks[0],
            &text[..64],
            "7".repeat(64)
        )),
        "{out}"
    );
    std::fs::remove_file(bundle.join("SHA256SUMS")).unwrap();

    // A .gostsum that disagrees is named; so is a gap in the chunk numbering.
    let sum = bundle.join(format!("{}.gostsum", chunks[1]));
    std::fs::write(&sum, "00".repeat(32)).unwrap();
    let (code, out) = verify_output(&bundle, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("{0}: {0}.gostsum says GOST sum", chunks[1]))
            && out.contains("(the file is damaged)"),
        "{out}"
    );
    std::fs::remove_file(bundle.join(&chunks[1])).unwrap();
    let (code, out) = verify_output(&bundle, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("{} is missing", chunks[1])), "{out}");
}
