//! What the bundle readers would refuse is refused when the plan is made: every bundle a pull
//! finishes must pass `ferry verify` and `ferry push` on the other side of the gap. Each
//! problem names the source item it comes from.

use crate::bundle::index::check_entry_path;
use crate::bundle::names::{ArchiveFileName, parse_archive_file};
use crate::manifest::MANIFEST_LIMIT;
use crate::reference::{validate_repository, validate_tag};
use crate::report::{human_bytes, printable};
use crate::source::Plan;

/// Every problem the bundle readers would have with what `plan` lays out, one line each.
pub fn unreadable(plan: &Plan) -> Vec<String> {
    let mut problems = Vec::new();
    for image in &plan.images {
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
            if let Some(manifest) = plan.manifests.get(digest)
                && manifest.bytes.len() as u64 > MANIFEST_LIMIT
            {
                problems.push(format!(
                    "{at}: manifest {digest} is {}, over the {} a bundle reader takes",
                    human_bytes(manifest.bytes.len() as u64),
                    human_bytes(MANIFEST_LIMIT)
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}
