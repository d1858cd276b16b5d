//! The layout resolver: reads the source's channels, tags and metadata files as the layout
//! description says, applies the request, and plans the tags it wants through
//! [`super::wanted`]. What the platform (`platform.rs`) and the modules (`modules.rs`) take is
//! decided in a file each; the reads they share are cached here.

mod modules;
mod platform;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;

use super::description::Description;
use super::held::HeldBlobs;
use super::image_files::read_image_files;
use super::manifest_cache::ManifestCache;
use super::plan::Plan;
use super::sizing::Want;
use super::wanted::build_plan;
use super::{Request, SourceError, SourceRoot, Take};
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::registry::{RegistryClient, RegistryError};
use crate::report::Reporter;

/// Resolves `request` against the source into a plan. `concurrency` bounds parallel requests.
pub async fn resolve(
    client: &RegistryClient,
    root: &SourceRoot,
    description: &Description,
    request: &Request,
    concurrency: usize,
    reporter: &dyn Reporter,
) -> Result<Plan, SourceError> {
    let mut resolver = Resolver {
        client,
        root,
        description,
        wants: Vec::new(),
        warnings: Vec::new(),
        unselected: Vec::new(),
        manifests: ManifestCache::default(),
        files: HashMap::new(),
        held: HeldBlobs::default(),
        take: request.take.clone(),
    };
    reporter.begin(&format!("resolving {root}"), 0, 0);
    if request.platform {
        resolver.platform(request).await?;
    }
    if request.modules {
        resolver.modules(request).await?;
    }
    if request.security {
        resolver.security().await?;
    }
    let Resolver {
        wants,
        warnings,
        unselected,
        manifests,
        held,
        ..
    } = resolver;
    let mut plan = build_plan(client, wants, manifests, warnings, concurrency).await?;
    for message in unselected {
        plan.unselected(message);
    }
    // The layers read while resolving that the bundle takes are written from memory, not
    // fetched again.
    let parts: HashSet<&Digest> = plan.images.iter().flat_map(|i| i.parts.keys()).collect();
    plan.held = held.into_needed(|d| parts.contains(d) && !plan.manifests.contains_key(d));
    reporter.finish(&format!("{} tags planned", plan.images.len()));
    Ok(plan)
}

struct Resolver<'a> {
    client: &'a RegistryClient,
    root: &'a SourceRoot,
    description: &'a Description,
    wants: Vec<Want>,
    warnings: Vec<String>,
    /// Selectors that selected nothing.
    unselected: Vec<String>,
    /// Manifests already fetched.
    manifests: ManifestCache,
    /// Files already read out of images, by (image digest, file): channels that share a
    /// version share an image, and its layers are read once.
    files: HashMap<(Digest, String), Option<Vec<u8>>>,
    /// Layers read whole while looking for files, for the bundle.
    held: HeldBlobs,
    /// What every wanted image takes beyond its graph.
    take: Take,
}

#[derive(Deserialize)]
struct VersionFile {
    version: String,
    #[serde(default)]
    suspend: bool,
}

impl Resolver<'_> {
    /// The files `wanted` of the image `manifest` in `repo` (absent ones left out), each image
    /// read at most once.
    async fn image_files(
        &mut self,
        repo: &str,
        manifest: &Manifest,
        wanted: &[&str],
    ) -> Result<BTreeMap<String, Vec<u8>>, SourceError> {
        let key = |file: &str| (manifest.digest.clone(), file.to_string());
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|f| !self.files.contains_key(&key(f)))
            .collect();
        if !missing.is_empty() {
            let mut found = read_image_files(
                self.client,
                repo,
                manifest,
                &missing,
                &self.manifests,
                &mut self.held,
            )
            .await?;
            for file in missing {
                self.files.insert(key(file), found.remove(file));
            }
        }
        Ok(wanted
            .iter()
            .filter_map(|f| {
                let bytes = self.files.get(&key(f))?.clone()?;
                Some((f.to_string(), bytes))
            })
            .collect())
    }

    /// The manifest at `repo:reference`, or `None` when the source lacks it.
    async fn manifest(
        &mut self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Manifest>, SourceError> {
        Ok(self.manifests.find(self.client, repo, reference).await?)
    }

    /// Tags of `repo`; a repository that does not exist has none.
    async fn tags(&self, repo: &str) -> Result<Option<Vec<String>>, SourceError> {
        match self.client.list_tags(repo).await {
            Ok(tags) => Ok(Some(tags)),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `version_file` of the channel image `repo:channel`, when the image exists.
    async fn channel(
        &mut self,
        repo: &str,
        channel: &str,
    ) -> Result<Option<VersionFile>, SourceError> {
        let Some(manifest) = self.manifest(repo, channel).await? else {
            return Ok(None);
        };
        let file = self.description.channels.version_file.clone();
        let image = format!("{}/{repo}:{channel}", self.root.registry);
        let mut files = self.image_files(repo, &manifest, &[&file]).await?;
        let bytes = files.remove(&file).ok_or_else(|| SourceError::BadFile {
            image: image.clone(),
            file: file.clone(),
            reason: "the channel image has no such file".into(),
        })?;
        let parsed: VersionFile =
            serde_json::from_slice(&bytes).map_err(|e| SourceError::BadFile {
                image,
                file,
                reason: e.to_string(),
            })?;
        Ok(Some(parsed))
    }

    fn want(&mut self, archive: &str, path: &str, tag: &str, repo: &str, reference: &str) {
        let want = Want {
            archive: archive.to_string(),
            path: path.to_string(),
            tag: tag.to_string(),
            repo: repo.to_string(),
            reference: reference.to_string(),
            take: self.take.clone(),
        };
        if !self
            .wants
            .iter()
            .any(|w| w.path == want.path && w.tag == want.tag)
        {
            self.wants.push(want);
        }
    }

    /// Wants the security databases the source has; a missing one is a warning.
    async fn security(&mut self) -> Result<(), SourceError> {
        let security = self.description.security.clone();
        for database in &security.databases {
            let repo = self.root.repo(&database.repo);
            if self.manifest(&repo, &database.tag).await?.is_some() {
                self.want(
                    &security.archive,
                    &database.repo,
                    &database.tag,
                    &repo,
                    &database.tag,
                );
            } else {
                self.warnings.push(format!(
                    "security database {}/{repo}:{} is not in the source; skipped",
                    self.root.registry, database.tag
                ));
            }
        }
        Ok(())
    }
}

/// Every `sha256:<64 hex>` string anywhere in a JSON document (however it nests them).
fn digests_in(bytes: &[u8]) -> Vec<Digest> {
    fn visit(value: &serde_json::Value, out: &mut Vec<Digest>) {
        match value {
            serde_json::Value::String(s) => {
                if let Ok(d) = s.parse::<Digest>()
                    && !out.contains(&d)
                {
                    out.push(d);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| visit(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| visit(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        visit(&value, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_found_however_they_nest() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let json = format!(r#"{{"x":{{"i":"{a}","j":"{b}"}},"y":["{a}","nope"],"z":3}}"#);
        assert_eq!(digests_in(json.as_bytes()).len(), 2);
    }
}
