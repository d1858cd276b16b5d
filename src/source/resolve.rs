//! The resolver: reads the source's channels, tags and metadata files as the description says,
//! applies the request, and turns the result into a [`Plan`] by fetching every manifest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::description::Description;
use super::filter::{Constraint, ModuleOffer, VersionSet, select};
use super::image_files::read_image_files;
use super::plan::{Plan, PlannedImage};
use super::platforms::{Kept, PlatformSpec, keep_platforms};
use super::versions::{ChannelState, platform_versions, version_tag};
use super::{Request, SourceError, SourceRoot, Take, parse_version};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest, walk};
use crate::reference::join;
use crate::registry::{RegistryClient, RegistryError};
use crate::report::Reporter;

/// One tag the plan needs, before its manifest is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Want {
    /// The archive it goes to.
    pub archive: String,
    /// Its path in the bundle.
    pub path: String,
    /// Its tag in the bundle.
    pub tag: String,
    /// The repository to read it from.
    pub repo: String,
    /// The tag or digest there.
    pub reference: String,
    /// What to take beyond the tag's graph.
    pub take: Take,
}

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
        manifests: HashMap::new(),
        files: HashMap::new(),
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
        ..
    } = resolver;
    let mut plan = build_plan(client, wants, manifests, warnings, concurrency).await?;
    for message in unselected {
        plan.unselected(message);
    }
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
    /// Manifests already fetched, by (repo, reference).
    manifests: HashMap<(String, String), Manifest>,
    /// Files already read out of images, by (image digest, file): channels that share a
    /// version share an image, and its layers are read once.
    files: HashMap<(Digest, String), Option<Vec<u8>>>,
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
            let mut found = read_image_files(self.client, repo, manifest, &missing).await?;
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
        let key = (repo.to_string(), reference.to_string());
        if let Some(found) = self.manifests.get(&key) {
            return Ok(Some(found.clone()));
        }
        match self.client.get_manifest(repo, reference).await {
            Ok(manifest) => {
                self.manifests.insert(key, manifest.clone());
                Ok(Some(manifest))
            }
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
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

    async fn platform(&mut self, request: &Request) -> Result<(), SourceError> {
        let platform = self.description.platform.clone();
        let release_repo = self.root.repo(&platform.release_repo);
        let mut channels: BTreeMap<String, ChannelState> = BTreeMap::new();
        let names: Vec<String> = self.description.all_channels().map(String::from).collect();
        for name in &names {
            if let Some(file) = self.channel(&release_repo, name).await? {
                let version =
                    parse_version(&file.version).map_err(|reason| SourceError::BadFile {
                        image: format!("{}/{release_repo}:{name}", self.root.registry),
                        file: self.description.channels.version_file.clone(),
                        reason,
                    })?;
                channels.insert(
                    name.clone(),
                    ChannelState {
                        version,
                        suspend: file.suspend,
                    },
                );
            }
        }
        if channels.is_empty() && request.platform_tag.is_none() {
            return Err(SourceError::Missing(format!(
                "no release channel found in {}/{release_repo} (checked: {}); is --source the \
                 repository root?",
                self.root.registry,
                names.join(", ")
            )));
        }
        for name in &self.description.channels.names {
            if !channels.contains_key(name) {
                self.warnings.push(format!(
                    "release channel '{name}' is missing in {}/{release_repo}",
                    self.root.registry
                ));
            }
        }

        let mut versions: Vec<String> = Vec::new();
        let mut aliases: BTreeMap<String, String> = BTreeMap::new();
        match &request.platform_tag {
            Some(tag) => {
                let tag = match channels.get(tag) {
                    Some(state) => version_tag(&state.version),
                    None => match parse_version(tag) {
                        Ok(v) => version_tag(&v),
                        Err(_) => tag.clone(),
                    },
                };
                let suspended: Vec<String> = channels
                    .iter()
                    .filter(|(_, s)| s.suspend && version_tag(&s.version) == tag)
                    .map(|(c, _)| c.clone())
                    .collect();
                if !suspended.is_empty() {
                    return Err(SourceError::Suspended {
                        channels: suspended,
                    });
                }
                if self.manifest(&release_repo, &tag).await?.is_some() {
                    for channel in channels.keys() {
                        aliases.insert(channel.clone(), tag.clone());
                    }
                } else {
                    self.warnings.push(format!(
                        "{}/{release_repo}:{tag} does not exist, so no release channel in the \
                         bundle points to {tag}",
                        self.root.registry
                    ));
                }
                versions.push(tag);
            }
            None => {
                let suspended: Vec<String> = channels
                    .iter()
                    .filter(|(_, s)| s.suspend)
                    .map(|(c, _)| c.clone())
                    .collect();
                if !suspended.is_empty() {
                    return Err(SourceError::Suspended {
                        channels: suspended,
                    });
                }
                let tags = self.tags(&release_repo).await?.unwrap_or_default();
                let chosen = platform_versions(
                    &tags,
                    &channels,
                    &self.description.channels.floor,
                    &self.description.channels.ceiling,
                    request.since_version.as_ref(),
                );
                versions.extend(chosen.iter().map(version_tag));
                for (channel, state) in &channels {
                    aliases.insert(channel.clone(), version_tag(&state.version));
                }
            }
        }

        let archive = platform.archive.clone();
        for version in &versions {
            let root_repo = self.root.repo("");
            if self.manifest(&root_repo, version).await?.is_none() {
                return Err(SourceError::Missing(format!(
                    "platform version {version} is not in {}/{root_repo}",
                    self.root.registry
                )));
            }
            for repo in &platform.repos {
                let source = self.root.repo(repo);
                if self.manifest(&source, version).await?.is_some() {
                    self.want(&archive, repo, version, &source, version);
                } else {
                    self.warnings.push(format!(
                        "{}/{source}:{version} does not exist; the bundle will not have it",
                        self.root.registry
                    ));
                }
            }
            let digests_repo = self.root.repo(&platform.digests.repo);
            if let Some(image) = self.manifest(&digests_repo, version).await? {
                let file = platform.digests.file.clone();
                let files = self.image_files(&digests_repo, &image, &[&file]).await?;
                match files.get(&file) {
                    Some(bytes) => {
                        for digest in digests_in(bytes) {
                            let hex = digest.hex().to_string();
                            self.want(&archive, "", &hex, &root_repo, &digest.to_string());
                        }
                    }
                    None => self.warnings.push(format!(
                        "{}/{digests_repo}:{version} has no {file}; component images are not planned",
                        self.root.registry
                    )),
                }
            }
        }
        for (channel, version) in &aliases {
            for repo in &platform.repos {
                let source = self.root.repo(repo);
                if self.manifest(&source, version).await?.is_some() {
                    self.want(&archive, repo, channel, &source, version);
                }
            }
        }
        Ok(())
    }

    async fn modules(&mut self, request: &Request) -> Result<(), SourceError> {
        let modules = self.description.modules.clone();
        // The suffix says where modules live at this source; in the bundle they are always at
        // the layout's own path, so that a bundle is the same whatever the source's shape and
        // push's --modules-path-suffix decides where they go at the target.
        let source_suffix = request
            .modules_path_suffix
            .clone()
            .unwrap_or_else(|| modules.path_suffix.clone());
        let catalog_path = modules.path_suffix.trim_matches('/').to_string();
        let catalog_repo = self.root.repo(source_suffix.trim_matches('/'));
        let catalog = match self.tags(&catalog_repo).await? {
            Some(tags) => tags,
            None if request.include.is_empty() => {
                self.warnings.push(format!(
                    "the source has no module catalog at {}/{catalog_repo}; no modules planned",
                    self.root.registry
                ));
                return Ok(());
            }
            None => {
                return Err(SourceError::Usage(format!(
                    "modules were asked for, but {}/{catalog_repo} does not exist (check \
                     --modules-path-suffix)",
                    self.root.registry
                )));
            }
        };
        // Names from the registry become repository paths: anything a registry would not
        // accept as one is left out, and said so.
        let (catalog, odd): (Vec<String>, Vec<String>) = catalog.into_iter().partition(|name| {
            crate::reference::validate_repository(name).is_ok() && !name.contains('/')
        });
        for name in odd {
            self.warnings.push(format!(
                "the module catalog lists '{}', which is not a module name; left out",
                crate::report::printable(&name)
            ));
        }
        for filter in &request.exclude {
            if !catalog.contains(&filter.name) {
                self.unselected.push(format!(
                    "-e {filter}: the source's catalog {}/{catalog_repo} has no module '{}'",
                    self.root.registry, filter.name
                ));
            }
        }
        let mut names: BTreeSet<String> = BTreeSet::new();
        if request.include.is_empty() {
            let dropped: BTreeSet<&str> = request
                .exclude
                .iter()
                .filter(|f| f.constraint == Constraint::Channels)
                .map(|f| f.name.as_str())
                .collect();
            names.extend(
                catalog
                    .iter()
                    .filter(|n| !dropped.contains(n.as_str()))
                    .cloned(),
            );
        } else {
            for filter in &request.include {
                if !catalog.contains(&filter.name) {
                    let mut known = catalog.clone();
                    known.sort();
                    return Err(SourceError::Usage(format!(
                        "module '{}' is not in the source's catalog {}/{catalog_repo}; the \
                         catalog has: {}",
                        filter.name,
                        self.root.registry,
                        known.join(", ")
                    )));
                }
                names.insert(filter.name.clone());
            }
        }
        for filter in request.include.iter().chain(&request.exclude) {
            if let Constraint::Exact {
                channel: Some(channel),
                ..
            } = &filter.constraint
                && !self.description.all_channels().any(|c| c == channel)
            {
                return Err(SourceError::Usage(format!(
                    "'{}@…+{channel}': '{channel}' is not a release channel (channels: {})",
                    filter.name,
                    self.description
                        .all_channels()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        for name in names {
            self.module(request, &catalog_path, &catalog_repo, &name)
                .await?;
        }
        Ok(())
    }

    async fn module(
        &mut self,
        request: &Request,
        catalog_path: &str,
        catalog_repo: &str,
        name: &str,
    ) -> Result<(), SourceError> {
        let modules = self.description.modules.clone();
        let archive = modules.archive.replace("{name}", name);
        let path = join(catalog_path, name);
        let repo = join(catalog_repo, name);
        let release_path = join(&path, &modules.release_repo);
        let release_repo = join(&repo, &modules.release_repo);

        let tags = self.tags(&repo).await?.unwrap_or_default();
        let mut offer = ModuleOffer {
            tags: tags.clone(),
            channels: BTreeMap::new(),
        };
        let mut channel_names = Vec::new();
        let names: Vec<String> = self.description.all_channels().map(String::from).collect();
        for channel in &names {
            if let Some(file) = self.channel(&release_repo, channel).await? {
                let version = if file.version.starts_with('v') {
                    file.version
                } else {
                    format!("v{}", file.version)
                };
                offer.channels.insert(channel.clone(), version);
                channel_names.push(channel.clone());
            } else if self.description.channels.names.contains(channel) {
                channel_names.push(channel.clone());
            }
        }
        // A pin written without its `v` means the tag that has one.
        let includes: Vec<Constraint> = request
            .include
            .iter()
            .filter(|f| f.name == name)
            .map(|f| match &f.constraint {
                Constraint::Exact { tag, channel }
                    if !tags.contains(tag) && tags.contains(&format!("v{tag}")) =>
                {
                    Constraint::Exact {
                        tag: format!("v{tag}"),
                        channel: channel.clone(),
                    }
                }
                other => other.clone(),
            })
            .collect();
        let include_refs: Vec<&Constraint> = includes.iter().collect();
        let excludes: Vec<&VersionSet> = request
            .exclude
            .iter()
            .filter(|f| f.name == name)
            .filter_map(|f| match &f.constraint {
                Constraint::Versions(set) => Some(set),
                _ => None,
            })
            .collect();
        let selection = select(&include_refs, &excludes, &offer, &channel_names);
        if selection.versions.is_empty() {
            self.unselected.push(format!(
                "module '{name}': nothing matches the filters (tags: {})",
                if tags.is_empty() {
                    "none".into()
                } else {
                    crate::report::list_some(&tags)
                }
            ));
            return Ok(());
        }

        let mut extras = 0;
        let mut releases: BTreeSet<String> = BTreeSet::new();
        for version in &selection.versions {
            let Some(image) = self.manifest(&repo, version).await? else {
                return Err(SourceError::Missing(format!(
                    "module '{name}' version {version} is not in {}/{repo}",
                    self.root.registry
                )));
            };
            let wanted = [modules.digests_file.as_str(), modules.extra_file.as_str()];
            let files = self.image_files(&repo, &image, &wanted).await?;
            if !request.only_extra_images {
                self.want(&archive, &path, version, &repo, version);
                if self.manifest(&release_repo, version).await?.is_some() {
                    self.want(&archive, &release_path, version, &release_repo, version);
                    releases.insert(version.clone());
                }
                if let Some(bytes) = files.get(&modules.digests_file) {
                    for digest in digests_in(bytes) {
                        let hex = digest.hex().to_string();
                        self.want(&archive, &path, &hex, &repo, &digest.to_string());
                    }
                }
            }
            if let Some(bytes) = files.get(&modules.extra_file) {
                let image_name = format!("{}/{repo}:{version}", self.root.registry);
                for (extra, tag) in extra_images(bytes).map_err(|reason| SourceError::BadFile {
                    image: image_name.clone(),
                    file: modules.extra_file.clone(),
                    reason,
                })? {
                    if crate::reference::validate_repository(&extra).is_err()
                        || extra.contains('/')
                        || crate::reference::validate_tag(&tag).is_err()
                    {
                        self.warnings.push(format!(
                            "{image_name}: {} names '{}:{}', which is not an image name and \
                             tag; left out",
                            modules.extra_file,
                            crate::report::printable(&extra),
                            crate::report::printable(&tag)
                        ));
                        continue;
                    }
                    let extra_path = join(&join(&path, &modules.extra_repo), &extra);
                    let extra_repo = join(&join(&repo, &modules.extra_repo), &extra);
                    self.want(&archive, &extra_path, &tag, &extra_repo, &tag);
                    extras += 1;
                }
            }
        }
        if request.only_extra_images {
            if extras == 0 {
                self.unselected.push(format!(
                    "module '{name}' has no extra images in versions {}",
                    selection
                        .versions
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            return Ok(());
        }
        for (channel, version) in &selection.aliases {
            if releases.contains(version) {
                self.want(&archive, &release_path, channel, &release_repo, version);
            }
        }
        self.want(&archive, catalog_path, name, catalog_repo, name);
        Ok(())
    }

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

/// `{name: tag}` with tags as strings or numbers.
fn extra_images(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let map: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    map.into_iter()
        .map(|(name, tag)| match tag {
            serde_json::Value::String(s) => Ok((name, s)),
            serde_json::Value::Number(n) => Ok((name, n.to_string())),
            other => Err(format!(
                "the tag of '{name}' is {other}, not a string or number"
            )),
        })
        .collect()
}

/// Fetches every wanted manifest (and its children) from `client`'s registry, keeps the
/// platforms each want asks for, sizes every tag, and adds the referrers of the wants that ask
/// for them.
pub(crate) async fn build_plan(
    client: &RegistryClient,
    wants: Vec<Want>,
    known: HashMap<(String, String), Manifest>,
    warnings: Vec<String>,
    concurrency: usize,
) -> Result<Plan, SourceError> {
    let referring: Vec<Want> = wants.iter().filter(|w| w.take.referrers).cloned().collect();
    let mut plan = plan_images(client, wants, known, warnings, concurrency).await?;
    if !referring.is_empty() {
        super::referrers::add_referrers(client, &mut plan, &referring, concurrency).await?;
    }
    Ok(plan)
}

/// One image as the source has it, after the platform filter.
struct Sized {
    /// Its manifests, children before parents, the root last.
    manifests: Vec<Manifest>,
    /// Every manifest and blob it needs, with sizes.
    parts: BTreeMap<Digest, u64>,
    /// The source's digest when the filter rewrote the root.
    source_digest: Option<Digest>,
    /// The filter would change it, but it is pinned by digest and kept whole.
    kept_whole: bool,
    /// It has platforms, none of them asked for.
    no_platform: bool,
}

/// The wants' images, each fetched and walked once (per platform selection).
pub(crate) async fn plan_images(
    client: &RegistryClient,
    wants: Vec<Want>,
    known: HashMap<(String, String), Manifest>,
    mut warnings: Vec<String>,
    concurrency: usize,
) -> Result<Plan, SourceError> {
    let known = Arc::new(known);
    // An image pulled by digest keeps every platform: whatever names it does so by that digest.
    let key_of = |w: &Want| {
        let platforms = if super::platforms::pinned(&w.reference) {
            Vec::new()
        } else {
            w.take.platforms.clone()
        };
        (w.repo.clone(), w.reference.clone(), platforms)
    };
    let mut unique: Vec<(String, String, Vec<PlatformSpec>)> = wants.iter().map(key_of).collect();
    unique.sort();
    unique.dedup();
    let sized: HashMap<(String, String, Vec<PlatformSpec>), Sized> =
        futures_util::stream::iter(unique.into_iter().map(|key| {
            let known = known.clone();
            let pinned_to = wants
                .iter()
                .find(|w| w.repo == key.0 && w.reference == key.1)
                .map(|w| w.take.platforms.clone())
                .unwrap_or_default();
            async move {
                let (repo, reference, platforms) = &key;
                let root = match known.get(&(repo.clone(), reference.clone())) {
                    Some(m) => m.clone(),
                    None => client.get_manifest(repo, reference).await?,
                };
                let fetch = async |d: &Descriptor| {
                    Ok::<_, SourceError>(client.get_manifest(repo, &d.digest.to_string()).await?)
                };
                let mut rewritten: HashMap<Digest, Manifest> = HashMap::new();
                let mut sized = Sized {
                    manifests: Vec::new(),
                    parts: BTreeMap::new(),
                    source_digest: None,
                    kept_whole: false,
                    no_platform: false,
                };
                let root = match keep_platforms(&root, platforms, &fetch).await? {
                    Kept::Whole => {
                        if platforms.is_empty() && !pinned_to.is_empty() {
                            sized.kept_whole = !matches!(
                                keep_platforms(&root, &pinned_to, &fetch).await?,
                                Kept::Whole
                            );
                        }
                        root
                    }
                    Kept::Nothing => {
                        sized.no_platform = true;
                        return Ok::<_, SourceError>((key, sized));
                    }
                    Kept::Rewritten { index, nested } => {
                        sized.source_digest = Some(root.digest.clone());
                        rewritten.extend(nested.into_iter().map(|m| (m.digest.clone(), m)));
                        index
                    }
                };
                let graph = walk(root, async |d: &Descriptor| {
                    match rewritten.get(&d.digest) {
                        Some(m) => Ok(m.clone()),
                        None => fetch(d).await,
                    }
                })
                .await?;
                for manifest in &graph.manifests {
                    sized
                        .parts
                        .insert(manifest.digest.clone(), manifest.bytes.len() as u64);
                }
                for blob in &graph.blobs {
                    // One digest, one size: a descriptor naming a manifest (or another blob of
                    // the image) with another size would make a layout no reader accepts.
                    if let Some(known) = sized.parts.insert(blob.digest.clone(), blob.size)
                        && known != blob.size
                    {
                        return Err(SourceError::Missing(format!(
                            "{}/{repo}:{reference}: {} is named with {known} and with {} bytes",
                            client.registry(),
                            blob.digest,
                            blob.size
                        )));
                    }
                }
                sized.manifests = graph.manifests;
                Ok((key, sized))
            }
        }))
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;

    let source_of = |w: &Want| {
        let separator = if super::platforms::pinned(&w.reference) {
            "@"
        } else {
            ":"
        };
        format!("{}/{}{separator}{}", client.registry(), w.repo, w.reference)
    };
    let no_platform: Vec<String> = wants
        .iter()
        .filter(|w| sized[&key_of(w)].no_platform)
        .map(&source_of)
        .collect();
    if !no_platform.is_empty() {
        let platforms = wants
            .iter()
            .find(|w| sized[&key_of(w)].no_platform)
            .map(|w| super::platforms::describe(&w.take.platforms))
            .unwrap_or_default();
        return Err(SourceError::Usage(format!(
            "{} image(s) have none of the platforms asked for ({platforms}): {}; add a \
             --platform they have, or leave --platform out",
            no_platform.len(),
            crate::report::list_some(&no_platform)
        )));
    }
    let mut manifests: BTreeMap<Digest, Manifest> = BTreeMap::new();
    for image in sized.values() {
        for manifest in &image.manifests {
            manifests
                .entry(manifest.digest.clone())
                .or_insert_with(|| manifest.clone());
        }
    }
    let mut filtered = Vec::new();
    let mut whole = Vec::new();
    let mut images: Vec<PlannedImage> = wants
        .into_iter()
        .map(|want| {
            let image = &sized[&key_of(&want)];
            let manifest = image.manifests.last().expect("a graph has its root");
            let source = source_of(&want);
            if image.kept_whole {
                whole.push(source.clone());
            }
            if let Some(from) = &image.source_digest {
                filtered.push(format!("{} ({from} -> {})", source, manifest.digest));
            }
            PlannedImage {
                source,
                mirror: None,
                registry: client.registry().to_string(),
                archive: want.archive,
                path: want.path,
                tag: want.tag,
                repository: want.repo,
                digest: manifest.digest.clone(),
                media_type: manifest.media_type.clone(),
                parts: image.parts.clone(),
                source_digest: image.source_digest.clone(),
            }
        })
        .collect();
    if !filtered.is_empty() {
        warnings.push(format!(
            "--platform rewrote {} index(es), which now have new digests: {}; a reference by \
             the source digest (repo@sha256:...) will not resolve at the target: refer to \
             them by tag or by the new digest (`ferry ls --json` shows both)",
            filtered.len(),
            crate::report::list_some(&filtered)
        ));
    }
    if !whole.is_empty() {
        warnings.push(format!(
            "--platform left {} index(es) pulled by digest whole: {}; whatever uses them names \
             them by that digest (the platform's components are pinned so in its digests \
             file), and a filtered index would have another digest that nothing names",
            whole.len(),
            crate::report::list_some(&whole)
        ));
    }
    images.sort_by(|a, b| {
        (a.archive.as_bytes(), a.path.as_bytes(), a.tag.as_bytes()).cmp(&(
            b.archive.as_bytes(),
            b.path.as_bytes(),
            b.tag.as_bytes(),
        ))
    });
    Ok(Plan {
        images,
        warnings,
        manifests,
        ..Plan::default()
    })
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

    #[test]
    fn extra_image_tags_may_be_numbers() {
        let got = extra_images(br#"{"scanner":"v3","db":2}"#).unwrap();
        assert_eq!(
            got,
            [("db".into(), "2".into()), ("scanner".into(), "v3".into())]
        );
        assert!(extra_images(br#"{"x":[1]}"#).is_err());
    }
}
