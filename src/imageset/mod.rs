//! Images beyond one platform's layout: image set files (flux mirror's `Config` or ferry's
//! `ImageSet`: repositories with tag selectors, Helm charts from HTTP(S) repositories, per-host
//! credentials and CAs) and plain image lists. Each becomes part of the pull's plan, in an
//! archive of its own.

pub mod charts;
pub mod config;
pub mod list;
mod mirrored;
pub mod select;

use std::collections::{BTreeMap, HashMap};

use crate::reference::Reference;
use crate::registry::{Mirrors, RegistryClient, RegistryError};
use crate::report::Reporter;
use crate::source::manifest_cache::ManifestCache;
use crate::source::sizing::Want;
use crate::source::wanted::build_plan;
use crate::source::{Plan, PlannedImage, SourceError, Take, WebBlob};
use charts::{ChartClient, ChartError, ChartOptions};
use config::ImageSet;
use list::{LIST_ARCHIVE, ListedImage};
use mirrored::Asked;
use select::TagSelector;

pub use config::{ConfigError, Host};

/// How registries are reached: a client for a host, with the credentials and CA the image sets
/// give it, and the mirrors that stand in for registries.
pub trait Clients {
    /// The client for `registry` (`host[:port]`).
    fn client(&self, registry: &str) -> Result<RegistryClient, RegistryError>;
    /// The mirror rules in force.
    fn mirrors(&self) -> &Mirrors;
}

/// Resolves image sets and an image list into one plan; charts are downloaded as `charts`
/// says. Images are read through the mirrors `clients` gives their registries, under the
/// names they were asked by.
pub async fn resolve(
    sets: &[ImageSet],
    listed: &[ListedImage],
    clients: &dyn Clients,
    charts: &ChartOptions,
    take: &Take,
    concurrency: usize,
    reporter: &dyn Reporter,
) -> Result<Plan, SourceError> {
    let mut plan = Plan::default();
    let mirrors = clients.mirrors();
    let mut asked: Vec<Asked> = Vec::new();
    let mut made: HashMap<String, RegistryClient> = HashMap::new();
    let mut chart_client: Option<ChartClient> = None;
    for set in sets {
        reporter.begin(&format!("resolving {}", set.file.display()), 0, 0);
        for artifact in &set.artifacts {
            let source = Reference::parse(&artifact.source)
                .map_err(|e| SourceError::Usage(format!("{}: {e}", set.file.display())))?;
            let path = match &artifact.destination {
                Some(destination) => {
                    Reference::parse(destination)
                        .map_err(|e| SourceError::Usage(format!("{}: {e}", set.file.display())))?
                        .repository
                }
                None => source.repository.clone(),
            };
            let mut fixed = None;
            let tags = if artifact.tags.is_empty() {
                let selector = TagSelector::new(artifact.selector.as_ref().expect("checked"))
                    .map_err(|e| {
                        SourceError::Usage(format!(
                            "{}: {}: {e}",
                            set.file.display(),
                            artifact.source
                        ))
                    })?;
                let (at, listed) = mirrored::list_tags(
                    mirrors,
                    &source.registry,
                    &source.repository,
                    clients,
                    &mut made,
                    &mut plan.notes,
                )
                .await?;
                // The tags chosen are read where they were listed.
                fixed = Some(at);
                let selection = selector.select(&listed);
                plan.notes
                    .push(describe_selection(&artifact.source, &selection));
                if selection.kept.is_empty() {
                    plan.unselected(format!(
                        "{}: {}: the selector keeps no tag",
                        set.file.display(),
                        artifact.source
                    ));
                }
                selection.kept
            } else {
                artifact.tags.clone()
            };
            // An artifact's own platforms replace the command line's; referrers add up.
            let artifact_take = Take {
                platforms: if artifact.platforms.is_empty() {
                    take.platforms.clone()
                } else {
                    let mut platforms = artifact.platforms.clone();
                    platforms.sort();
                    platforms.dedup();
                    platforms
                },
                referrers: take.referrers || artifact.include_referrers,
            };
            for tag in tags {
                asked.push(Asked {
                    want: Want {
                        archive: set.archive.clone(),
                        path: path.clone(),
                        tag: tag.clone(),
                        repo: source.repository.clone(),
                        reference: tag,
                        take: artifact_take.clone(),
                    },
                    registry: source.registry.clone(),
                    fixed: fixed.clone(),
                });
            }
        }
        for chart in &set.charts {
            let client = match &chart_client {
                Some(client) => client,
                None => chart_client.insert(ChartClient::new(charts).map_err(chart_error(set))?),
            };
            let charted = charts_plan(set, chart, client, &mut plan.notes)
                .await
                .map_err(chart_error(set))?;
            plan.merge(charted).map_err(SourceError::Usage)?;
        }
        reporter.finish(&format!("{} resolved", set.file.display()));
    }
    for image in listed {
        asked.push(Asked {
            want: Want {
                archive: LIST_ARCHIVE.to_string(),
                path: image.bundle_path(),
                tag: image.bundle_tag(),
                repo: image.repository.clone(),
                reference: image.reference(),
                take: take.clone(),
            },
            registry: image.registry.clone(),
            fixed: None,
        });
    }
    let placement = mirrored::place(asked, mirrors, clients, &mut made, concurrency).await?;
    plan.mirrors.extend(placement.notes);
    for ((read, _), placed) in placement.groups {
        let client = client_for(&mut made, clients, &read)?;
        let known = ManifestCache::with(placed.known);
        let mut part = build_plan(client, placed.wants, known, Vec::new(), concurrency).await?;
        // Deeper repositories first: each image takes the name of the closest one.
        for (repository, asked) in placed.renames.iter().rev() {
            part.name_as_asked(&read, repository, asked);
        }
        plan.merge(part).map_err(SourceError::Usage)?;
    }
    Ok(plan)
}

fn chart_error(set: &ImageSet) -> impl FnOnce(ChartError) -> SourceError + '_ {
    |source| SourceError::Chart {
        file: set.file.clone(),
        source: Box::new(source),
    }
}

fn client_for<'a>(
    made: &'a mut HashMap<String, RegistryClient>,
    clients: &dyn Clients,
    registry: &str,
) -> Result<&'a RegistryClient, SourceError> {
    if !made.contains_key(registry) {
        made.insert(registry.to_string(), clients.client(registry)?);
    }
    Ok(&made[registry])
}

fn describe_selection(source: &str, selection: &select::Selection) -> String {
    let mut text = format!(
        "{source}: kept {}",
        if selection.kept.is_empty() {
            "nothing".to_string()
        } else {
            selection.kept.join(", ")
        }
    );
    // A repository may have thousands of tags: the plan shows the first reasons only.
    for (tag, why) in selection.dropped.iter().take(DROPPED_SHOWN) {
        text.push_str(&format!("\n    {tag}: {why}"));
    }
    if selection.dropped.len() > DROPPED_SHOWN {
        text.push_str(&format!(
            "\n    ... and {} more tags left out",
            selection.dropped.len() - DROPPED_SHOWN
        ));
    }
    text
}

/// How many left-out tags a plan names, with the reason, per selector.
const DROPPED_SHOWN: usize = 20;

/// The chosen versions of one chart, as Helm OCI artifacts made here. Every chosen version's
/// tag is checked before any chart is downloaded; each chart is then streamed once for its
/// digest, size and `Chart.yaml`, and the plan keeps its URL to fetch it from when the bundle
/// is filled.
async fn charts_plan(
    set: &ImageSet,
    chart: &config::Chart,
    client: &ChartClient,
    notes: &mut Vec<String>,
) -> Result<Plan, ChartError> {
    let entry_error = |reason: String| ChartError::Entry {
        chart: chart.name.clone(),
        reason,
    };
    let repo = reqwest::Url::parse(&format!("{}/", chart.source.trim_end_matches('/')))
        .map_err(|e| entry_error(format!("source '{}': {e}", chart.source)))?;
    if !matches!(repo.scheme(), "http" | "https") {
        return Err(entry_error(
            "source must be an http(s) Helm repository".into(),
        ));
    }
    let destination = chart
        .destination
        .strip_prefix("oci://")
        .ok_or_else(|| entry_error("destination must start with oci://".into()))?;
    let base = Reference::parse(destination.trim_end_matches('/'))
        .map_err(|e| entry_error(format!("destination: {e}")))?;
    let path = format!("{}/{}", base.repository, chart.name);
    let repository = client.repository(&repo)?;
    let index = repository.index().await?;
    let index_url = repository.index_url();
    let entries = index
        .entries
        .get(&chart.name)
        .ok_or_else(|| ChartError::NoChart {
            url: index_url.to_string(),
            chart: chart.name.clone(),
        })?;
    let selector = TagSelector::new(&config::Selector {
        semver: Some(chart.version.clone().unwrap_or_else(|| "*".into())),
        limit: chart.limit,
        ..config::Selector::default()
    })
    .map_err(entry_error)?;
    // An index listing a version twice must not make two tags of one name.
    let mut versions: Vec<String> = entries.iter().map(|e| e.version.clone()).collect();
    versions.sort();
    versions.dedup();
    let selection = selector.select(&versions);
    notes.push(describe_selection(
        &format!("{} {}", chart.source, chart.name),
        &selection,
    ));
    // A version whose tag a bundle cannot hold is refused before any chart is downloaded.
    let mut chosen = Vec::new();
    for version in &selection.kept {
        let tag = charts::version_tag(version);
        crate::reference::validate_tag(&tag).map_err(|reason| ChartError::BadVersion {
            chart: chart.name.clone(),
            version: version.clone(),
            repository: chart.source.clone(),
            reason,
        })?;
        let entry = entries
            .iter()
            .find(|e| &e.version == version)
            .expect("a kept version is listed");
        let no_url = |reason: String| ChartError::NoUrl {
            url: index_url.to_string(),
            chart: chart.name.clone(),
            version: version.clone(),
            reason,
        };
        let url = entry
            .urls
            .first()
            .ok_or_else(|| no_url("no URL is listed".into()))?;
        let url = repo
            .join(url)
            .map_err(|e| no_url(format!("'{url}': {e}")))?;
        chosen.push((version, tag, url));
    }
    let mut plan = Plan::default();
    for (version, tag, url) in chosen {
        let file = repository.inspect(&chart.name, version, &url).await?;
        let artifact = charts::chart_artifact(&file).map_err(|problem| ChartError::BadArchive {
            chart: chart.name.clone(),
            version: version.clone(),
            url: url.to_string(),
            problem,
        })?;
        let manifest = artifact.manifest;
        let config_digest = crate::digest::Digest::of(&artifact.config);
        let mut parts = BTreeMap::new();
        parts.insert(manifest.digest.clone(), manifest.bytes.len() as u64);
        parts.insert(config_digest.clone(), artifact.config.len() as u64);
        parts.insert(artifact.layer_digest.clone(), artifact.layer_size);
        plan.images.push(PlannedImage {
            archive: set.archive.clone(),
            path: path.clone(),
            tag,
            source: url.to_string(),
            mirror: None,
            registry: String::new(),
            repository: String::new(),
            digest: manifest.digest.clone(),
            media_type: manifest.media_type.clone(),
            parts: parts.into(),
            source_digest: None,
        });
        plan.held.insert(config_digest, artifact.config.into());
        plan.web_blobs.insert(
            artifact.layer_digest,
            WebBlob {
                url: url.to_string(),
                repository: repo.to_string(),
            },
        );
        plan.manifests.insert(manifest.digest.clone(), manifest);
    }
    Ok(plan)
}
