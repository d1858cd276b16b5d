//! What the bundle readers would refuse is refused when the plan is made: every bundle a pull
//! finishes must pass `ferry verify` and `ferry push` on the other side of the gap. Each
//! problem names the source item it comes from.

use std::collections::BTreeMap;

use crate::bundle::index::check_entry_path;
use crate::bundle::names::{ArchiveFileName, parse_archive_file};
use crate::digest::Digest;
use crate::manifest::MANIFEST_LIMIT;
use crate::reference::{validate_repository, validate_tag};
use crate::report::{human_bytes, printable};
use crate::source::{Plan, PlannedImage};

/// Every problem the bundle readers would have with what `plan` lays out, one line each.
pub fn unreadable(plan: &Plan) -> Vec<String> {
    let sizes = plan
        .manifests
        .values()
        .map(|m| (m.digest.clone(), m.bytes.len() as u64))
        .collect();
    unreadable_images(&plan.images, &sizes)
}

/// [`unreadable`] for `images` whose manifests are known by their sizes alone (digest → size
/// of the bytes): a plan checked before it is built.
pub fn unreadable_images(
    images: &[PlannedImage],
    manifests: &BTreeMap<Digest, u64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for image in images {
        let at = format!(
            "{}:{} (from {})",
            if image.path.is_empty() {
                "(root)"
            } else {
                &image.path
            },
            image.tag,
            image.source
        );
        let at = printable(&at);
        let archive_ok = !image.archive.contains('/')
            && parse_archive_file(&image.archive)
                == Some(ArchiveFileName::Whole(image.archive.clone()));
        if !archive_ok {
            problems.push(format!(
                "{at}: '{}' is not an archive name (NAME.tar)",
                printable(&image.archive)
            ));
        }
        if !image.path.is_empty() {
            let normal = check_entry_path(&image.path).is_ok_and(|p| p == image.path);
            match validate_repository(&image.path) {
                Err(e) => problems.push(format!("{at}: {e}")),
                Ok(()) if !normal => {
                    problems.push(format!("{at}: the path is not a plain repository path"))
                }
                Ok(()) => {}
            }
        }
        if let Err(e) = validate_tag(&image.tag) {
            problems.push(format!("{at}: {e}"));
        }
        for digest in image.parts.keys() {
            if let Some(&size) = manifests.get(digest)
                && size > MANIFEST_LIMIT
            {
                problems.push(format!(
                    "{at}: manifest {digest} is {}, over the {} a bundle reader takes",
                    human_bytes(size),
                    human_bytes(MANIFEST_LIMIT)
                ));
            }
        }
    }
    problems.extend(conflicts(images, manifests));
    problems.sort();
    problems.dedup();
    problems
}

/// What two items of a plan disagree about: a tag placed twice at one path, a digest given
/// two sizes (or a manifest's digest another size than its bytes).
fn conflicts(images: &[PlannedImage], manifests: &BTreeMap<Digest, u64>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut placed: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    let mut sizes: BTreeMap<&Digest, (u64, &str)> = BTreeMap::new();
    for (digest, size) in manifests {
        sizes.insert(digest, (*size, "its bytes"));
    }
    for image in images {
        let source = image.source.as_str();
        if let Some(other) = placed.insert((&image.path, &image.tag), source) {
            problems.push(printable(&format!(
                "{}:{} would be placed twice (from {other} and from {source}); a tag names one \
                 image",
                if image.path.is_empty() {
                    "(root)"
                } else {
                    &image.path
                },
                image.tag
            )));
        }
        for (digest, size) in image.parts.iter() {
            match sizes.get(digest) {
                Some((known, from)) if *known != size => problems.push(printable(&format!(
                    "{source}: {digest} is {size} bytes there, {known} by {from}"
                ))),
                Some(_) => {}
                None => {
                    sizes.insert(digest, (size, source));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Manifest, OCI_MANIFEST};
    use crate::source::PlannedImage;

    fn manifest(seed: &str) -> Manifest {
        let bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"a/b","digest":"sha256:{}","size":2}},"layers":[],"annotations":{{"s":"{seed}"}}}}"#,
            "a".repeat(64)
        );
        Manifest::from_bytes(bytes.into_bytes(), None).unwrap()
    }

    fn image(tag: &str, m: &Manifest, source: &str) -> PlannedImage {
        PlannedImage {
            archive: "images-list.tar".into(),
            path: "app/one".into(),
            tag: tag.into(),
            source: source.into(),
            registry: "r".into(),
            repository: "app/one".into(),
            digest: m.digest.clone(),
            media_type: m.media_type.clone(),
            parts: [(m.digest.clone(), m.bytes.len() as u64)]
                .into_iter()
                .collect(),
            source_digest: None,
            mirror: None,
        }
    }

    #[test]
    fn a_tag_placed_twice_is_named_with_both_sources() {
        let (a, b) = (manifest("a"), manifest("b"));
        let plan = Plan {
            images: vec![
                image("v1", &a, "r/app/one:v1"),
                image("v1", &b, "r/app/one@x"),
            ],
            manifests: [(a.digest.clone(), a), (b.digest.clone(), b)].into(),
            ..Plan::default()
        };
        let problems = unreadable(&plan);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("app/one:v1 would be placed twice")
                && problems[0].contains("r/app/one:v1")
                && problems[0].contains("r/app/one@x"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_digest_given_two_sizes_is_named() {
        let a = manifest("a");
        let mut lying = image("v2", &a, "r/app/one:v2");
        // Another image names a's manifest as a blob, five bytes longer.
        lying.parts = [(a.digest.clone(), a.bytes.len() as u64 + 5)]
            .into_iter()
            .collect();
        let plan = Plan {
            images: vec![image("v1", &a, "r/app/one:v1"), lying],
            manifests: [(a.digest.clone(), a.clone())].into(),
            ..Plan::default()
        };
        let problems = unreadable(&plan);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("r/app/one:v2") && p.contains("by its bytes")),
            "{problems:?}"
        );
    }

    #[test]
    fn names_a_reader_refuses_are_refused() {
        let a = manifest("a");
        let mut upper = image("v1", &a, "http://charts/Upper-1.0.0.tgz");
        upper.path = "charts/Upper".into();
        let mut long = image(&"1".repeat(129), &a, "r/app/one:long");
        long.path = "app/two".into();
        let mut outside = image("v1", &a, "r/app/three:v1");
        outside.path = "app/three".into();
        outside.archive = "../outside.tar".into();
        let plan = Plan {
            images: vec![upper, long, outside],
            manifests: [(a.digest.clone(), a)].into(),
            ..Plan::default()
        };
        let problems = unreadable(&plan).join("\n");
        assert!(problems.contains("Upper-1.0.0.tgz"), "{problems}");
        assert!(problems.contains("r/app/one:long"), "{problems}");
        assert!(
            problems.contains("'../outside.tar' is not an archive name"),
            "{problems}"
        );
    }
}
