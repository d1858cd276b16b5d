//! The offline check (`verify` and `push` with `--verify-signatures`): every image of a bundle
//! held to a policy with the signatures the bundle carries beside it, against the manifests
//! the bundle holds. The image's name is where the pull took it from, as `bundle.json` records
//! it: that is the name its publisher signed and the policy's scopes speak of.

use std::collections::HashMap;

use super::error::TrustError;
use super::found::{Manifests, signature_layers};
use super::identity::DockerReference;
use super::payload::PAYLOAD_LIMIT;
use super::policy::Policy;
use super::verify::{Checker, ImageSignature, Verdict};
use crate::bundle::{ArchiveLayouts, Bundle, BundleError, BundleLayout};
use crate::digest::Digest;
use crate::layout::entry_tag;
use crate::manifest::{Descriptor, Manifest};
use crate::referrer_tags::subject_of;

/// What the policy said of each image of a bundle.
#[derive(Debug, Default)]
pub struct BundleVerdicts {
    /// Images accepted: `path:tag` in the bundle.
    pub accepted: Vec<String>,
    /// Images refused: `path:tag (source)` and why.
    pub refused: Vec<(String, String)>,
}

/// Errors of the offline check: the bundle cannot be read, or the policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InBundleError {
    /// The bundle cannot be read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The policy cannot be used.
    #[error(transparent)]
    Trust(#[from] TrustError),
}

/// Holds every image of `bundle` (not the signatures, SBOMs and attestations that refer to
/// images) to `policy`. Blocking: it reads the archives' indexes and small files.
pub fn check_bundle(bundle: &Bundle, policy: &Policy) -> Result<BundleVerdicts, InBundleError> {
    let checker = Checker::new(policy);
    let mut verdicts = BundleVerdicts::default();
    let Some(metadata) = &bundle.metadata else {
        verdicts.refused.push((
            bundle.dir.display().to_string(),
            "the bundle has no bundle.json (a d8 bundle?): the names its images were pulled \
             under, which signatures and policies speak of, are not recorded"
                .into(),
        ));
        return Ok(verdicts);
    };
    let mut opened: HashMap<String, ArchiveLayouts> = HashMap::new();
    for image in &metadata.images {
        if subject_of(&image.tag).is_some() {
            continue;
        }
        let name = format!(
            "{}:{}",
            crate::bundle::contents::display_path(&image.path),
            image.tag
        );
        let refuse = |verdicts: &mut BundleVerdicts, reason: String| {
            verdicts.refused.push((name.clone(), reason));
        };
        let Some(source) = &image.source else {
            refuse(
                &mut verdicts,
                "bundle.json does not record where it was pulled from".into(),
            );
            continue;
        };
        // A Helm chart read over HTTP is named by its URL, not a docker name.
        let reference = if source.contains("://") {
            None
        } else {
            match DockerReference::parse(source) {
                Ok(reference) => Some(reference),
                Err(reason) => {
                    refuse(&mut verdicts, format!("its source {reason}"));
                    continue;
                }
            }
        };
        if image.source_digest.is_some() {
            refuse(&mut verdicts, super::verify::REWRITTEN_INDEX.into());
            continue;
        }
        let archive_name = image.archive.clone().unwrap_or_default();
        if !opened.contains_key(&archive_name) {
            let Some(archive) = bundle.archives.iter().find(|a| a.name == archive_name) else {
                refuse(
                    &mut verdicts,
                    format!("bundle.json names archive '{archive_name}', which the bundle lacks"),
                );
                continue;
            };
            opened.insert(archive_name.clone(), ArchiveLayouts::open(archive)?);
        }
        let layouts = &opened[&archive_name];
        let Some(layout) = layouts.layouts.iter().find(|l| l.path == image.path) else {
            refuse(&mut verdicts, "no layout at its path in its archive".into());
            continue;
        };
        let held = Held { layouts, layout };
        let mut signatures = Vec::new();
        for layer in signature_layers(&image.digest, &held) {
            let Some(location) = layouts.blob_location(&layout.path, &layer.payload) else {
                continue;
            };
            let Ok(bytes) = layouts.index.read_small(location, PAYLOAD_LIMIT) else {
                continue;
            };
            if Digest::of(&bytes) != layer.payload {
                continue;
            }
            signatures.push(ImageSignature {
                payload: bytes,
                signature: layer.signature,
                found: layer.found,
            });
        }
        match checker.check(reference.as_ref(), &image.digest, &signatures)? {
            Verdict::Accepted(_) => verdicts.accepted.push(name),
            Verdict::Refused(reason) => verdicts
                .refused
                .push((format!("{name} ({source})"), reason)),
        }
    }
    Ok(verdicts)
}

/// The manifests of one layout, read from the archive as they are asked for.
struct Held<'a> {
    layouts: &'a ArchiveLayouts,
    layout: &'a BundleLayout,
}

impl Manifests for Held<'_> {
    fn tagged(&self, tag: &str) -> Option<Manifest> {
        let descriptor = self
            .layout
            .index
            .manifests
            .iter()
            .find(|d| entry_tag(d) == Some(tag))?;
        self.layouts
            .read_manifest(&self.layout.path, descriptor)
            .ok()
    }

    fn by_digest(&self, digest: &Digest) -> Option<Manifest> {
        let location = self.layouts.blob_location(&self.layout.path, digest)?;
        let bytes = self
            .layouts
            .index
            .read_small(location, crate::manifest::MANIFEST_LIMIT)
            .ok()?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()?
            .get("mediaType")?
            .as_str()?
            .to_string();
        let descriptor = Descriptor::new(media_type, digest.clone(), location.size);
        self.layouts
            .read_manifest(&self.layout.path, &descriptor)
            .ok()
    }
}
