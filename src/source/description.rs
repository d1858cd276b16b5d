//! The description of a source's structure (`layouts/*.yaml`): which repositories hold the
//! platform, its channels, modules and security databases. Built-in descriptions are compiled
//! in; a file of the same shape can replace them. Unknown keys and missing fields are refused.

use std::path::Path;

use serde::Deserialize;

use super::SourceError;

/// Built-in descriptions by name.
const BUILT_IN: &[(&str, &str)] = &[("deckhouse", include_str!("../../layouts/deckhouse.yaml"))];

/// The built-in description used where none is named.
pub const DEFAULT_LAYOUT: &str = "deckhouse";

/// A source structure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    /// Release channels.
    pub channels: Channels,
    /// The platform's repositories.
    pub platform: Platform,
    /// The module catalog.
    pub modules: Modules,
    /// Security databases.
    pub security: Security,
    /// SHA-256 of the description's text: two pulls with the same fingerprint read the source
    /// the same way.
    #[serde(skip)]
    pub fingerprint: String,
}

/// Release channels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    /// Channels every source has.
    pub names: Vec<String>,
    /// Channels a source may lack.
    #[serde(default)]
    pub optional: Vec<String>,
    /// The channel whose version is the lowest pulled by default.
    pub floor: String,
    /// The channel whose version is the highest pulled by default.
    pub ceiling: String,
    /// The file inside a channel image holding `{"version", "suspend"}`.
    pub version_file: String,
}

/// The platform's repositories.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// The archive the platform goes to.
    pub archive: String,
    /// The repository whose tags are the platform versions and channels.
    pub release_repo: String,
    /// Repositories tagged with every version and channel.
    pub repos: Vec<String>,
    /// Where the component digests are.
    pub digests: DigestsFile,
}

/// A file inside an image that lists component digests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestsFile {
    /// The repository whose image (at each version) holds the file.
    pub repo: String,
    /// The file's path in the image.
    pub file: String,
}

/// The module catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modules {
    /// Archive name pattern; `{name}` is the module.
    pub archive: String,
    /// The catalog's path under the source root.
    pub path_suffix: String,
    /// Channel and per-version release images under a module.
    pub release_repo: String,
    /// File at the root of a module image listing component digests.
    pub digests_file: String,
    /// File at the root of a module image listing extra images `{name: tag}`.
    pub extra_file: String,
    /// Where extra images live under a module.
    pub extra_repo: String,
}

/// Security databases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// The archive they go to.
    pub archive: String,
    /// Each database.
    pub databases: Vec<Database>,
}

/// One security database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Its repository under the source root.
    pub repo: String,
    /// Its tag.
    pub tag: String,
}

impl Description {
    /// A built-in description by name, or a YAML file by path (anything with a `/` or ending
    /// in `.yaml`/`.yml`).
    pub fn load(name_or_file: &str) -> Result<Description, SourceError> {
        let looks_like_file = name_or_file.contains('/')
            || name_or_file.ends_with(".yaml")
            || name_or_file.ends_with(".yml");
        if !looks_like_file {
            return Self::built_in(name_or_file).unwrap_or_else(|| {
                Err(SourceError::Layout {
                    origin: name_or_file.to_string(),
                    reason: format!(
                        "no built-in layout of that name (built in: {}); give a file path for your own",
                        BUILT_IN
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            });
        }
        let too_big = std::fs::metadata(name_or_file).is_ok_and(|m| m.len() > 1 << 20);
        if too_big {
            return Err(SourceError::Layout {
                origin: name_or_file.to_string(),
                reason: "it is over 1 MiB; a layout description is a page of YAML".into(),
            });
        }
        let text =
            std::fs::read_to_string(Path::new(name_or_file)).map_err(|e| SourceError::Layout {
                origin: name_or_file.to_string(),
                reason: format!("cannot read it: {e}"),
            })?;
        Self::parse(name_or_file, &text)
    }

    /// The built-in description called `name`; `None` when no built-in one has that name.
    pub fn built_in(name: &str) -> Option<Result<Description, SourceError>> {
        BUILT_IN
            .iter()
            .find(|(built_in, _)| *built_in == name)
            .map(|(name, text)| Self::parse(name, text))
    }

    /// Parses and checks a description.
    pub fn parse(origin: &str, text: &str) -> Result<Description, SourceError> {
        let fail = |reason: String| SourceError::Layout {
            origin: origin.to_string(),
            reason,
        };
        let mut description: Description =
            serde_saphyr::from_str(text).map_err(|e| fail(e.to_string()))?;
        description.fingerprint = crate::digest::Digest::of(text.as_bytes()).hex().to_string();
        let channels = &description.channels;
        for (key, channel) in [("floor", &channels.floor), ("ceiling", &channels.ceiling)] {
            if !channels.names.contains(channel) {
                return Err(fail(format!(
                    "channels.{key} '{channel}' is not one of channels.names"
                )));
            }
        }
        if !description.modules.archive.contains("{name}") {
            return Err(fail("modules.archive must contain {name}".into()));
        }
        if !description
            .platform
            .repos
            .contains(&description.platform.release_repo)
        {
            return Err(fail(
                "platform.repos must include platform.release_repo".into(),
            ));
        }
        Ok(description)
    }

    /// Every channel name a source may have: the required ones, then the optional ones.
    pub fn all_channels(&self) -> impl Iterator<Item = &str> {
        self.channels
            .names
            .iter()
            .chain(&self.channels.optional)
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_layout_loads() {
        let d = Description::load("deckhouse").unwrap();
        assert_eq!(d.channels.floor, "rock-solid");
        assert_eq!(d.security.databases.len(), 4);
        assert_eq!(d.all_channels().count(), 6);
    }

    #[test]
    fn unknown_keys_and_missing_fields_are_named() {
        let text = include_str!("../../layouts/deckhouse.yaml");
        let typo = text.replace(
            "release_repo: release\n",
            "release_repo: release\n  relase: x\n",
        );
        let err = Description::parse("typo.yaml", &typo)
            .unwrap_err()
            .to_string();
        assert!(err.contains("relase"), "{err}");
        let missing = text.replace("  extra_repo: extra\n", "");
        let err = Description::parse("missing.yaml", &missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("extra_repo"), "{err}");
        let err = Description::load("nonesuch").unwrap_err().to_string();
        assert!(err.contains("built in: deckhouse"), "{err}");
    }
}
