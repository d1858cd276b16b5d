//! OCI 1.1 referrers (signatures, SBOMs) made with `scripts/mkoci.py` and pushed byte for byte
//! with `scripts/push-layout.py`.

use std::path::Path;
use std::process::Command;

use super::{repo_root, run};

/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Runs `scripts/mkoci.py … referrers` and returns (index digest, [(digest, size)] of each
/// artifact).
pub fn attach(
    layout: &Path,
    subject: &str,
    subject_size: u64,
    types: &str,
    seed: &str,
) -> (String, Vec<(String, u64)>) {
    let tag = format!("sha256-{}", subject.trim_start_matches("sha256:"));
    let out = run(Command::new("python3")
        .arg(repo_root().join("scripts/mkoci.py"))
        .arg(layout)
        .arg(&tag)
        .arg("referrers")
        .arg("--subject")
        .arg(format!("{subject}:{subject_size}:{OCI_MANIFEST}"))
        .args(["--artifact-types", types, "--seed", seed]));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let index = lines.next().unwrap().to_string();
    let artifacts = lines
        .map(|l| {
            let (d, s) = l.split_once(' ').unwrap();
            (d.to_string(), s.parse().unwrap())
        })
        .collect();
    (index, artifacts)
}

/// Pushes a layout tag with scripts/push-layout.py (byte for byte, artifactType kept).
pub fn push_layout(layout: &Path, tag: &str, dest: &str) {
    run(Command::new("python3")
        .arg(repo_root().join("scripts/push-layout.py"))
        .arg(layout)
        .arg(tag)
        .arg(dest));
}

pub fn size_of(layout: &Path, digest: &str) -> u64 {
    std::fs::metadata(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
    .len()
}
