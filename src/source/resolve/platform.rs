//! What the platform takes: the release channels' versions (or the one tag asked for), each
//! version's images in the platform's repositories, the component images its digests file
//! pins, and a tag per channel pointing at its version.

use std::collections::BTreeMap;

use super::{Resolver, digests_in};
use crate::source::versions::{ChannelState, platform_versions, version_tag};
use crate::source::{Request, SourceError, parse_version};

impl Resolver<'_> {
    /// Wants what the platform takes, as `request` selects it.
    pub(super) async fn platform(&mut self, request: &Request) -> Result<(), SourceError> {
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
            return Err(SourceError::NoReleaseChannels {
                repository: format!("{}/{release_repo}", self.root.registry),
                checked: names,
            });
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
}
