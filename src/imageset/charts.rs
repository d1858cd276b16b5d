//! Helm charts from HTTP(S) Helm repositories, turned into Helm OCI artifacts: the repository's
//! `index.yaml` lists versions, the chosen `.tgz` is the layer byte for byte, its `Chart.yaml`
//! (as JSON) the config, and the manifest is built deterministically, so the same chart always
//! has the same digest. Credentials come from Helm's `repositories.yaml`, as flux mirror reads
//! them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;

use crate::digest::Digest;
use crate::manifest::{Manifest, OCI_MANIFEST};

/// The config media type of a Helm chart in a registry.
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// The layer media type of a Helm chart in a registry.
pub const HELM_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// The largest `index.yaml` or chart read (both are held in memory while they are used).
const DOWNLOAD_LIMIT: usize = 64 << 20;

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

/// A chart version as a Helm OCI artifact.
#[derive(Debug, Clone)]
pub struct ChartArtifact {
    /// The manifest.
    pub manifest: Manifest,
    /// The config blob (`Chart.yaml` as JSON).
    pub config: Vec<u8>,
    /// The layer blob: the `.tgz` as downloaded.
    pub layer: Vec<u8>,
}

/// Credentials for a Helm repository, from `repositories.yaml`.
#[derive(Debug, Clone, Default)]
pub struct RepoLogin {
    /// Login.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
}

/// The login Helm's `repositories.yaml` (`$HELM_REPOSITORY_CONFIG`, else
/// `~/.config/helm/repositories.yaml`) has for `url`.
pub fn repo_login(url: &str) -> Result<RepoLogin, String> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        repositories: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        url: String,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
    }
    let path = match std::env::var_os("HELM_REPOSITORY_CONFIG") {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".config/helm/repositories.yaml"),
            None => return Ok(RepoLogin::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RepoLogin::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let file: File =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let wanted = url.trim_end_matches('/');
    Ok(file
        .repositories
        .into_iter()
        .find(|r| r.url.trim_end_matches('/') == wanted)
        .map(|r| RepoLogin {
            username: r.username,
            password: r.password,
        })
        .unwrap_or_default())
}

/// Downloads a URL whole (an index or a chart), at most [`DOWNLOAD_LIMIT`] bytes. The login
/// goes only to the repository's own origin.
pub async fn download(
    http: &reqwest::Client,
    url: &reqwest::Url,
    repo: &reqwest::Url,
    login: &RepoLogin,
) -> Result<Vec<u8>, String> {
    let mut request = http.get(url.clone());
    if url.origin() == repo.origin()
        && let Some(user) = &login.username
    {
        request = request.basic_auth(user, login.password.as_deref());
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("cannot fetch {url}: {}", error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("cannot fetch {url}: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() > DOWNLOAD_LIMIT {
            return Err(format!(
                "{url} is larger than {DOWNLOAD_LIMIT} bytes; refusing it"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

/// Parses `index.yaml`.
pub fn parse_index(bytes: &[u8]) -> Result<RepoIndex, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "index.yaml is not UTF-8".to_string())?;
    serde_saphyr::from_str(text).map_err(|e| {
        format!(
            "index.yaml is not a Helm repository index: {}",
            e.to_string().lines().next().unwrap_or_default()
        )
    })
}

/// The tag a chart version gets: OCI tags have no `+`, so build metadata is written with `_`.
pub fn version_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// Builds the Helm OCI artifact of a chart's `.tgz`: the config is its `Chart.yaml` as JSON.
pub fn chart_artifact(tgz: Vec<u8>) -> Result<ChartArtifact, String> {
    let chart_yaml = read_chart_yaml(&tgz)?;
    let metadata: serde_json::Value = serde_saphyr::from_str(&chart_yaml).map_err(|e| {
        format!(
            "Chart.yaml is not valid YAML: {}",
            e.to_string().lines().next().unwrap_or_default()
        )
    })?;
    let name = metadata["name"].as_str().unwrap_or_default().to_string();
    let version = metadata["version"].as_str().unwrap_or_default().to_string();
    if name.is_empty() || version.is_empty() {
        return Err("Chart.yaml lacks name or version".into());
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
            "digest": Digest::of(&tgz).to_string(),
            "size": tgz.len(),
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
    .map_err(|e| e.to_string())?;
    Ok(ChartArtifact {
        manifest,
        config,
        layer: tgz,
    })
}

/// `<chart>/Chart.yaml` out of a chart's `.tgz`.
fn read_chart_yaml(tgz: &[u8]) -> Result<String, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let entries = archive
        .entries()
        .map_err(|e| format!("the chart is not a .tgz: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("the chart is not a .tgz: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("the chart is not a .tgz: {e}"))?
            .into_owned();
        let parts: Vec<_> = path.components().collect();
        if parts.len() == 2 && parts[1].as_os_str() == "Chart.yaml" {
            if entry.size() > 1 << 20 {
                return Err("Chart.yaml is over 1 MiB".into());
            }
            let mut text = String::new();
            entry
                .take(1 << 20)
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read Chart.yaml: {e}"))?;
            return Ok(text);
        }
    }
    Err("the chart has no <name>/Chart.yaml".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgz(name: &str, version: &str) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let chart = format!("apiVersion: v2\nname: {name}\nversion: {version}\n");
        let mut header = tar::Header::new_gnu();
        header.set_size(chart.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("{name}/Chart.yaml"), chart.as_bytes())
            .unwrap();
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn the_same_chart_always_gives_the_same_artifact() {
        let bytes = tgz("podinfo", "6.5.0");
        let a = chart_artifact(bytes.clone()).unwrap();
        let b = chart_artifact(bytes.clone()).unwrap();
        assert_eq!(a.manifest.digest, b.manifest.digest);
        assert_eq!(a.layer, bytes);
        let refs = a.manifest.references().unwrap();
        assert_eq!(refs.blobs[0].media_type, HELM_CONFIG);
        assert_eq!(refs.blobs[1].media_type, HELM_LAYER);
        let config: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(config["version"], "6.5.0");
        assert_eq!(version_tag("1.2.3+build.7"), "1.2.3_build.7");
    }
}
