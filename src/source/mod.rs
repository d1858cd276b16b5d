//! Source resolution: what a pull takes from the source registry, decided from a description of
//! the source's structure (`layouts/`), the user's selection, and what the registry holds
//! (tags, channel files, digest lists). Only manifests and small metadata files are read.

pub mod description;
pub mod filter;
pub mod held;
pub mod image_files;
pub(crate) mod manifest_cache;
pub mod parts;
pub mod plan;
pub mod platforms;
pub mod referrers;
pub mod resolve;
pub mod sizing;
pub mod versions;
pub mod wanted;

use std::fmt;
use std::str::FromStr;

use semver::Version;

use crate::reference::{Reference, join};
use crate::registry::{MirrorError, RegistryError};

pub use description::Description;
pub use filter::{Constraint, ModuleFilter, VersionSet};
pub use parts::Parts;
pub use plan::{Plan, PlannedImage, WebBlob};
pub use platforms::PlatformSpec;
pub use resolve::resolve;

/// The source repository root, `host[:port]/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRoot {
    /// `host[:port]`.
    pub registry: String,
    /// The root repository path, e.g. `deckhouse/ee`.
    pub path: String,
}

impl SourceRoot {
    /// The repository `sub` under the root ("" is the root itself).
    pub fn repo(&self, sub: &str) -> String {
        join(&self.path, sub)
    }
}

impl FromStr for SourceRoot {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, String> {
        let trimmed = input.trim_end_matches('/');
        if !trimmed.contains('/') {
            return Err(format!(
                "'{input}' is missing the repository path: write host[:port]/path, e.g. \
                 registry.example.com/deckhouse/ee"
            ));
        }
        let reference = Reference::parse(trimmed).map_err(|e| e.to_string())?;
        if reference.tag.is_some() || reference.digest.is_some() {
            return Err(format!(
                "'{input}' names a tag or digest; give the repository root only \
                 (host[:port]/path)"
            ));
        }
        Ok(SourceRoot {
            registry: reference.registry,
            path: reference.repository,
        })
    }
}

impl fmt::Display for SourceRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// Parses `1.2.3` or `v1.2.3`.
pub fn parse_version(input: &str) -> Result<Version, String> {
    Version::parse(input.strip_prefix('v').unwrap_or(input))
        .map_err(|e| format!("'{input}' is not a version (expected 1.2.3 or v1.2.3): {e}"))
}

/// What the user asked a pull to take.
#[derive(Debug, Clone)]
pub struct Request {
    /// Take the platform.
    pub platform: bool,
    /// Take modules.
    pub modules: bool,
    /// Take the security databases.
    pub security: bool,
    /// Of the selected modules, take only their extra images.
    pub only_extra_images: bool,
    /// Lower the platform version floor to this.
    pub since_version: Option<Version>,
    /// Take exactly this platform tag.
    pub platform_tag: Option<String>,
    /// Module whitelist (`-i`).
    pub include: Vec<ModuleFilter>,
    /// Module blacklist (`-e`).
    pub exclude: Vec<ModuleFilter>,
    /// The module catalog's path under the root, overriding the description.
    pub modules_path_suffix: Option<String>,
    /// What to take of every image beyond its own graph.
    pub take: Take,
}

/// What a pull takes of an image beyond the graph of its tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Take {
    /// Of every index keep only these platforms (empty: all, bytes unchanged).
    pub platforms: Vec<PlatformSpec>,
    /// Also take what refers to each manifest (signatures, SBOMs, attestations).
    pub referrers: bool,
}

/// What can go wrong while resolving.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The layout description cannot be used.
    #[error("layout '{origin}': {reason}")]
    Layout {
        /// Built-in name or file.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The request does not fit what the source holds (an unknown module, channel).
    #[error("{0}")]
    Usage(String),
    /// Channels are suspended by the publisher.
    #[error("the source has suspended release channel(s): {}", channels.join(", "))]
    Suspended {
        /// The channels.
        channels: Vec<String>,
    },
    /// Something the source must have is not there.
    #[error("{0}")]
    Missing(String),
    /// A metadata file in an image cannot be used.
    #[error("{image}: {file}: {reason}")]
    BadFile {
        /// The image.
        image: String,
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A manifest of the source cannot be followed.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// Talking to the source registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A Helm chart of an image set cannot be taken.
    #[error("{}: {source}", file.display())]
    Chart {
        /// The image set file naming it.
        file: std::path::PathBuf,
        /// What is wrong.
        #[source]
        source: Box<crate::imageset::charts::ChartError>,
    },
    /// An image its mirrors do not have, whose next source failed too.
    #[error("{name} is not at {}; {error}", passed.join(", "))]
    NotAtMirrors {
        /// The image as asked.
        name: String,
        /// The sources that answered "not found", in the order tried.
        passed: Vec<String>,
        /// What the last source said.
        error: Box<RegistryError>,
    },
    /// The mirror rules refuse an image or cannot be used.
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    /// Modules were named, but the source has no module catalog where it was looked for.
    #[error("modules were asked for, but {repository} does not exist")]
    NoModuleCatalog {
        /// Where it was looked for, `host/path`.
        repository: String,
    },
    /// No release channel of the platform is where the layout says.
    #[error("no release channel found in {repository} (checked: {})", checked.join(", "))]
    NoReleaseChannels {
        /// Where they were looked for, `host/path`.
        repository: String,
        /// The channels looked for.
        checked: Vec<String>,
    },
}

impl SourceError {
    /// True for errors in what the user asked (exit code 2).
    pub fn is_usage(&self) -> bool {
        match self {
            SourceError::Layout { .. }
            | SourceError::Usage(_)
            | SourceError::NoModuleCatalog { .. } => true,
            // A blocked registry is the site's policy, not a mistake in the command line.
            SourceError::Mirror(e) => !matches!(e, MirrorError::Blocked { .. }),
            _ => false,
        }
    }
}
