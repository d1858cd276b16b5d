//! The plan: every image a pull takes, where it goes in the bundle and what it weighs, found
//! from manifests alone.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::parts::Parts;
use crate::digest::Digest;
use crate::manifest::Manifest;

/// One tag the bundle will hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedImage {
    /// The archive it goes to (`platform.tar`).
    pub archive: String,
    /// Its repository path under the target root ("" for the root).
    pub path: String,
    /// Its tag in the bundle (a version, a channel alias, or a 64-hex digest).
    pub tag: String,
    /// Where it comes from: `host/repo:tag` or `host/repo@sha256:…`, as it was asked for
    /// (also when a mirror served it).
    pub source: String,
    /// Where it was read when that is not `source`: the mirror (or registries.conf location)
    /// that stood in for its registry, `host/repo:tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// The registry (`host[:port]`) its manifests and blobs are read from.
    pub registry: String,
    /// The source repository its manifests and blobs are read from.
    pub repository: String,
    /// Digest of its manifest or index.
    pub digest: Digest,
    /// Media type of that manifest or index.
    pub media_type: String,
    /// Every manifest and blob it needs with its size, each once.
    pub parts: Parts,
    /// The digest the source has for it, when `--platform` rewrote its index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<Digest>,
}

/// A blob read from a plain HTTP(S) URL rather than from a registry: a Helm chart's `.tgz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebBlob {
    /// Where it is.
    pub url: String,
    /// The Helm repository it belongs to, whose login (from Helm's `repositories.yaml`) goes
    /// with the request when `url` is on the repository's origin.
    pub repository: String,
}

impl PlannedImage {
    /// Every byte the tag needs.
    pub fn size(&self) -> u64 {
        self.parts.values().fold(0, |a, b| a.saturating_add(b))
    }
}

/// Everything a pull takes.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The tags, sorted by archive, path, tag.
    pub images: Vec<PlannedImage>,
    /// Things the user should know (optional parts the source lacks).
    pub warnings: Vec<String>,
    /// Selectors that selected nothing (also among the warnings): `--strict` fails on them.
    pub unselected: Vec<String>,
    /// Every manifest and index of every image, exactly as the source sent it.
    pub manifests: BTreeMap<Digest, Manifest>,
    /// Small blobs the plan holds and the bundle takes from memory, never fetched: made here
    /// (a Helm chart's config) or read whole while resolving (the layers whose files the
    /// layout resolver reads), by digest.
    pub held: BTreeMap<Digest, Bytes>,
    /// Blobs fetched from a URL rather than from a registry (a Helm chart's `.tgz`), by digest.
    pub web_blobs: BTreeMap<Digest, WebBlob>,
    /// How selections were made (the tags kept and why the others went), for the dry run.
    pub notes: Vec<String>,
    /// Blobs the images need but the bundle leaves out, because the bundle it is made against
    /// (`--since-bundle`) holds them; with sizes.
    pub left_out: BTreeMap<Digest, u64>,
    /// Which mirrors the images were read through, for the dry run.
    pub mirrors: BTreeSet<String>,
}

impl Plan {
    /// Adds another plan's images, manifests, blobs and notes, keeping images sorted by archive,
    /// path, tag. Two plans placing the same tag at the same path are an error.
    pub fn merge(&mut self, other: Plan) -> Result<(), String> {
        for image in &other.images {
            if self
                .images
                .iter()
                .any(|i| i.path == image.path && i.tag == image.tag)
            {
                return Err(format!(
                    "two sources put a tag '{}' at '{}' ({}, {})",
                    image.tag,
                    image.path,
                    image.source,
                    self.images
                        .iter()
                        .find(|i| i.path == image.path && i.tag == image.tag)
                        .map(|i| i.source.as_str())
                        .unwrap_or_default()
                ));
            }
        }
        self.images.extend(other.images);
        self.images.sort_by(|a, b| {
            (a.archive.as_bytes(), a.path.as_bytes(), a.tag.as_bytes()).cmp(&(
                b.archive.as_bytes(),
                b.path.as_bytes(),
                b.tag.as_bytes(),
            ))
        });
        self.warnings.extend(other.warnings);
        self.unselected.extend(other.unselected);
        self.manifests.extend(other.manifests);
        self.held.extend(other.held);
        self.web_blobs.extend(other.web_blobs);
        self.notes.extend(other.notes);
        self.left_out.extend(other.left_out);
        self.mirrors.extend(other.mirrors);
        Ok(())
    }

    /// Records a selector that selected nothing: a warning, and an error with `--strict`.
    pub fn unselected(&mut self, message: String) {
        self.warnings.push(message.clone());
        self.unselected.push(message);
    }

    /// Gives the images read at `registry`, in `repository` or below it, back the names they
    /// were asked by: `asked` (`host/repo`) in place of `registry/repository` in `source`,
    /// whose old value, the place actually read, becomes `mirror`.
    pub fn name_as_asked(&mut self, registry: &str, repository: &str, asked: &str) {
        let read = format!("{registry}/{repository}");
        for image in &mut self.images {
            let under = image.repository == repository
                || image
                    .repository
                    .strip_prefix(repository)
                    .is_some_and(|rest| rest.starts_with('/'));
            if image.registry != registry || !under || image.mirror.is_some() {
                continue;
            }
            if let Some(rest) = image.source.strip_prefix(&read) {
                image.mirror = Some(image.source.clone());
                image.source = format!("{asked}{rest}");
            }
        }
    }

    /// Bytes to download: every manifest and blob of the plan, each once, but those left out.
    pub fn total_bytes(&self) -> u64 {
        let mut seen = BTreeSet::new();
        self.images
            .iter()
            .flat_map(|i| i.parts.iter())
            .filter(|(digest, _)| !self.left_out.contains_key(*digest) && seen.insert(*digest))
            .fold(0, |total, (_, size)| total.saturating_add(size))
    }

    /// Leaves out every blob (not manifest) that `held` has with the same size. Manifests stay:
    /// they are small, and push writes tags from them.
    pub fn leave_out(&mut self, held: &BTreeMap<Digest, u64>) {
        self.left_out = self
            .images
            .iter()
            .flat_map(|i| i.parts.iter())
            .filter(|(digest, size)| {
                !self.manifests.contains_key(*digest) && held.get(*digest) == Some(size)
            })
            .map(|(digest, size)| (digest.clone(), size))
            .collect();
    }

    /// Lets go of every manifest and held blob, for once they are written into the archive
    /// files (and the state file): the rest of a pull needs the images alone, and at thousands
    /// of images the manifests are megabytes.
    pub fn release_contents(&mut self) {
        self.manifests = BTreeMap::new();
        self.held = BTreeMap::new();
    }

    /// Bytes left out.
    pub fn left_out_bytes(&self) -> u64 {
        self.left_out.values().sum()
    }

    /// Archive names in order.
    pub fn archives(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.images.iter().map(|i| i.archive.as_str()).collect();
        names.dedup();
        names
    }

    /// The layouts of one archive: path → its tags.
    pub fn layouts(&self, archive: &str) -> BTreeMap<&str, Vec<&PlannedImage>> {
        let mut layouts: BTreeMap<&str, Vec<&PlannedImage>> = BTreeMap::new();
        for image in self.images.iter().filter(|i| i.archive == archive) {
            layouts.entry(image.path.as_str()).or_default().push(image);
        }
        layouts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(path: &str, registry: &str, repository: &str, source: &str) -> PlannedImage {
        PlannedImage {
            archive: "a.tar".into(),
            path: path.into(),
            tag: "v1".into(),
            source: source.into(),
            mirror: None,
            registry: registry.into(),
            repository: repository.into(),
            digest: format!("sha256:{}", "a".repeat(64)).parse().unwrap(),
            media_type: crate::manifest::OCI_MANIFEST.into(),
            parts: Parts::default(),
            source_digest: None,
        }
    }

    #[test]
    fn images_read_through_a_mirror_keep_the_name_asked() {
        let mut plan = Plan {
            images: vec![
                image(
                    "a",
                    "m:5000",
                    "hub/library/nginx",
                    "m:5000/hub/library/nginx:1",
                ),
                image(
                    "b",
                    "m:5000",
                    "hub/library/nginx/sub",
                    "m:5000/hub/library/nginx/sub:1",
                ),
                image(
                    "c",
                    "m:5000",
                    "hub/library/nginxx",
                    "m:5000/hub/library/nginxx:1",
                ),
                image(
                    "d",
                    "other",
                    "hub/library/nginx",
                    "other/hub/library/nginx:1",
                ),
            ],
            ..Plan::default()
        };
        plan.name_as_asked("m:5000", "hub/library/nginx", "docker.io/library/nginx");
        let got: Vec<(&str, Option<&str>)> = plan
            .images
            .iter()
            .map(|i| (i.source.as_str(), i.mirror.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "docker.io/library/nginx:1",
                    Some("m:5000/hub/library/nginx:1")
                ),
                (
                    "docker.io/library/nginx/sub:1",
                    Some("m:5000/hub/library/nginx/sub:1")
                ),
                ("m:5000/hub/library/nginxx:1", None),
                ("other/hub/library/nginx:1", None),
            ]
        );
        // Named once: a second call does not rename again.
        plan.name_as_asked("m:5000", "hub/library/nginx", "x.io/y");
        assert_eq!(plan.images[0].source, "docker.io/library/nginx:1");
    }
}
