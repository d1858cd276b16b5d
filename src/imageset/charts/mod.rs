//! Helm charts from HTTP(S) Helm repositories, turned into Helm OCI artifacts: the repository's
//! `index.yaml` lists versions, the chosen `.tgz` is the layer byte for byte, its `Chart.yaml`
//! (as JSON) the config, and the manifest is built deterministically, so the same chart always
//! has the same digest. A chart is never held in memory: the plan streams it once for its
//! digest, size and `Chart.yaml`; the pull streams it again into its place in the bundle.

mod archive;
mod http;
mod login;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::Digest;
use crate::manifest::{Manifest, OCI_MANIFEST};
use crate::registry::RegistryError;
use crate::report::human_bytes;
use crate::store::StoreError;

pub use archive::{ArchiveError, ChartFile, read_chart};
pub use http::{ChartClient, ChartRepository};

/// The config media type of a Helm chart in a registry.
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// The layer media type of a Helm chart in a registry.
pub const HELM_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// How charts are downloaded.
#[derive(Debug, Clone)]
pub struct ChartOptions {
    /// TLS, proxies and the stall timeout, as for registries.
    pub transport: crate::registry::TransportOptions,
    /// The largest chart `.tgz` taken (`--chart-size-limit`).
    pub size_limit: u64,
}

/// What can go wrong with a chart.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The image set's entry cannot be used (source or destination).
    #[error("charts ({chart}): {reason}")]
    Entry {
        /// The chart's name.
        chart: String,
        /// What is wrong.
        reason: String,
    },
    /// Helm's `repositories.yaml` cannot be read.
    #[error("{path}: {reason}")]
    Logins {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Talking to the Helm repository failed (its errors are the registry layer's).
    #[error(transparent)]
    Fetch(#[from] RegistryError),
    /// A URL the plan recorded is no URL.
    #[error("'{url}' is not a URL: {reason}")]
    BadUrl {
        /// What was recorded.
        url: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A chart is larger than `--chart-size-limit`.
    #[error("{url} is larger than the chart size limit of {}; refusing it", human_bytes(*limit))]
    TooLarge {
        /// The chart.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// `index.yaml` is no Helm repository index.
    #[error("{url} is not a Helm repository index: {reason}")]
    BadIndex {
        /// The index.
        url: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The index lacks the chart.
    #[error("{url} has no chart '{chart}'")]
    NoChart {
        /// The index.
        url: String,
        /// The chart's name.
        chart: String,
    },
    /// A version's entry in the index gives no usable URL.
    #[error("{url}: {chart} {version}: {reason}")]
    NoUrl {
        /// The index.
        url: String,
        /// The chart's name.
        chart: String,
        /// The version.
        version: String,
        /// What is wrong.
        reason: String,
    },
    /// A chosen version cannot be a tag, so the bundle could not hold it.
    #[error(
        "chart '{chart}' version {version} of {repository} cannot be carried: {reason}; \
         narrow the chart's version range to leave it out"
    )]
    BadVersion {
        /// The chart's name.
        chart: String,
        /// The version, as the index gives it.
        version: String,
        /// The Helm repository.
        repository: String,
        /// Why its tag is invalid.
        reason: String,
    },
    /// A chart's archive is refused.
    #[error("chart '{chart}' {version} ({url}) is refused: {problem}")]
    BadArchive {
        /// The chart's name.
        chart: String,
        /// The version.
        version: String,
        /// Where it came from.
        url: String,
        /// What is wrong with it.
        #[source]
        problem: ArchiveError,
    },
    /// The repository serves other bytes than when the pull was planned.
    #[error("{url} changed since this pull was planned: {detail}")]
    Changed {
        /// The chart.
        url: String,
        /// How it differs.
        detail: String,
    },
    /// Writing a chart into the bundle failed.
    #[error("{url}: {source}")]
    Store {
        /// The chart.
        url: String,
        /// Why.
        #[source]
        source: StoreError,
    },
}

impl ChartError {
    /// The error for a chart whose bytes did not go into its place: a size or digest other
    /// than the plan's means the repository changed the file.
    pub fn from_store(url: &str, error: StoreError) -> ChartError {
        let url = url.to_string();
        match error {
            StoreError::DigestMismatch { expected, actual } => ChartError::Changed {
                url,
                detail: format!("it hashes to {actual}, not {expected}"),
            },
            StoreError::SizeMismatch {
                expected, actual, ..
            } => ChartError::Changed {
                url,
                detail: format!("it is not {expected} bytes ({actual} arrived)"),
            },
            other => ChartError::Store { url, source: other },
        }
    }
}

/// A repository's `index.yaml`, the parts ferry reads.
#[derive(Debug, Deserialize)]
pub struct RepoIndex {
    /// Chart name → its versions.
    #[serde(default)]
    pub entries: BTreeMap<String, Vec<IndexEntry>>,
}

/// One chart version in an index.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexEntry {
    /// Its version.
    pub version: String,
    /// Where its `.tgz` is (relative to the repository, or absolute).
    #[serde(default)]
    pub urls: Vec<String>,
}

/// Parses `index.yaml`; the error is the parser's first line.
pub fn parse_index(bytes: &[u8]) -> Result<RepoIndex, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_string())?;
    serde_saphyr::from_str(text)
        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())
}

/// The tag a chart version gets: OCI tags have no `+`, so build metadata is written with `_`.
pub fn version_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// Checks that a chart name can end a repository path: the bundle holds the chart at
/// `<destination path>/<name>`, and a registry takes no other.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.contains('/') {
        return Err(format!(
            "the chart name '{name}' holds a '/'; a chart name is one repository path component"
        ));
    }
    crate::reference::validate_repository(name)
        .map_err(|e| format!("the chart name '{name}' cannot be a repository path: {e}"))
}

/// A chart version as a Helm OCI artifact: the manifest and config made here; the layer is
/// the `.tgz`, fetched from its URL when the bundle is filled.
#[derive(Debug, Clone)]
pub struct ChartArtifact {
    /// The manifest.
    pub manifest: Manifest,
    /// The config blob (`Chart.yaml` as JSON).
    pub config: Vec<u8>,
    /// The layer's digest: the `.tgz`'s SHA-256.
    pub layer_digest: Digest,
    /// The layer's size.
    pub layer_size: u64,
}

/// Builds the Helm OCI artifact of a chart whose `.tgz` was read as `file`: the config is its
/// `Chart.yaml` as JSON.
pub fn chart_artifact(file: &ChartFile) -> Result<ChartArtifact, ArchiveError> {
    let metadata: serde_json::Value = serde_saphyr::from_str(&file.chart_yaml).map_err(|e| {
        ArchiveError::BadChartYaml(e.to_string().lines().next().unwrap_or_default().into())
    })?;
    let name = metadata["name"].as_str().unwrap_or_default().to_string();
    let version = metadata["version"].as_str().unwrap_or_default().to_string();
    if name.is_empty() || version.is_empty() {
        return Err(ArchiveError::BadChartYaml(
            "it lacks name or version".into(),
        ));
    }
    let config = serde_json::to_vec(&metadata).expect("JSON serialises");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": HELM_CONFIG,
            "digest": Digest::of(&config).to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": HELM_LAYER,
            "digest": file.digest.to_string(),
            "size": file.size,
        }],
        "annotations": {
            "org.opencontainers.image.title": name,
            "org.opencontainers.image.version": version,
        },
    });
    let manifest = Manifest::from_bytes(
        serde_json::to_vec(&manifest).expect("JSON serialises"),
        Some(OCI_MANIFEST),
    )
    .expect("a manifest made here parses");
    Ok(ChartArtifact {
        manifest,
        config,
        layer_digest: file.digest.clone(),
        layer_size: file.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_chart_always_gives_the_same_artifact() {
        let file = ChartFile {
            chart_yaml: "apiVersion: v2\nname: podinfo\nversion: 6.5.0\n".into(),
            digest: Digest::of(b"tgz"),
            size: 3,
        };
        let a = chart_artifact(&file).unwrap();
        let b = chart_artifact(&file).unwrap();
        assert_eq!(a.manifest.digest, b.manifest.digest);
        let refs = a.manifest.references().unwrap();
        assert_eq!(refs.blobs[0].media_type, HELM_CONFIG);
        assert_eq!(refs.blobs[1].media_type, HELM_LAYER);
        assert_eq!(refs.blobs[1].digest, file.digest);
        let config: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(config["version"], "6.5.0");
        assert_eq!(version_tag("1.2.3+build.7"), "1.2.3_build.7");
    }

    #[test]
    fn chart_names_must_be_one_repository_path_component() {
        assert!(check_name("nginx").is_ok());
        assert!(check_name("cert-manager").is_ok());
        assert!(check_name("Upper").unwrap_err().contains("lowercase"));
        assert!(check_name("a/b").is_err());
        assert!(check_name("-x").is_err());
    }
}
