//! What the modules take: the catalog's modules the filters select, each selected version's
//! image, release image and pinned digests, its extra images, and its channel tags.

use std::collections::{BTreeMap, BTreeSet};

use super::{Resolver, digests_in};
use crate::source::filter::{Constraint, ModuleOffer, VersionSet, select};
use crate::source::{Request, SourceError, join};

impl Resolver<'_> {
    /// Wants what the modules take, as `request`'s filters select them.
    pub(super) async fn modules(&mut self, request: &Request) -> Result<(), SourceError> {
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
                return Err(SourceError::NoModuleCatalog {
                    repository: format!("{}/{catalog_repo}", self.root.registry),
                });
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

    /// Wants what module `name` of the catalog takes.
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

#[cfg(test)]
mod tests {
    use super::*;

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
