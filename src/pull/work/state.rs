//! The state file of a pull's work directory: what was asked, when, and the plan it resolved
//! to with every manifest, so that a rerun finishes the snapshot it started.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::bundle::BlobRecord;
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::source::{Plan, PlannedImage, WebBlob};

/// The state file's name in the work directory.
pub const STATE_FILE: &str = "state.json";
/// How the temporary files of an atomic state write begin.
pub const STATE_TEMP_PREFIX: &str = ".ferry-tmp-";
/// Bumped when the state file changes shape; an older state is not resumed. 2: a chart's
/// `.tgz` is a web blob (URL, digest, size), no longer base64 bytes in `generated`.
const STATE_VERSION: u32 = 2;
/// How long an unfinished pull stays resumable.
pub const RESUME_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// A state file larger than this is not read.
const STATE_LIMIT: u64 = 512 << 20;

/// The state file: what was asked, when, and what it resolved to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The request, as pull compares it.
    /// Kept as the JSON text it was written as: a planted state's request is compared, never
    /// expanded into a value tree.
    pub request: Box<serde_json::value::RawValue>,
    /// When the pull started, in seconds since the epoch.
    pub created: u64,
    /// The chunk size the files are laid out with.
    pub chunk_size: u64,
    /// Whether the files get Streebog sums.
    pub gost: bool,
    /// Every tag of the plan.
    pub images: Vec<PlannedImage>,
    /// The plan's warnings, repeated on a resumed run.
    pub warnings: Vec<String>,
    /// Every manifest of the plan.
    pub manifests: Vec<StoredManifest>,
    /// Small blobs the plan holds rather than fetches (Helm chart configs, layers the resolver
    /// read), base64. Named as when it held only made blobs, so earlier states still read.
    #[serde(default, rename = "generated")]
    pub held: Vec<String>,
    /// Blobs fetched from a URL (Helm charts' `.tgz`): where each is; its size is in `images`.
    #[serde(default)]
    pub web_blobs: BTreeMap<Digest, WebBlob>,
    /// Blobs left out against an earlier bundle.
    #[serde(default)]
    pub left_out: Vec<BlobRecord>,
}

/// A manifest in the state file: its bytes, exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredManifest {
    /// Its media type.
    pub media_type: String,
    /// Its bytes, base64.
    pub bytes: String,
}

impl State {
    /// A state for a new pull of `plan`.
    pub fn new(request: &serde_json::Value, chunk_size: u64, gost: bool, plan: &Plan) -> State {
        State {
            version: STATE_VERSION,
            request: serde_json::value::to_raw_value(request).expect("a request serialises"),
            created: now(),
            chunk_size,
            gost,
            images: plan.images.clone(),
            warnings: plan.warnings.clone(),
            manifests: plan
                .manifests
                .values()
                .map(|m| StoredManifest {
                    media_type: m.media_type.clone(),
                    bytes: base64::engine::general_purpose::STANDARD.encode(&m.bytes),
                })
                .collect(),
            held: plan
                .held
                .values()
                .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
                .collect(),
            web_blobs: plan.web_blobs.clone(),
            left_out: BlobRecord::list(&plan.left_out),
        }
    }

    /// The plan back, every manifest re-checked against its digest.
    pub fn plan(&self) -> Result<Plan, String> {
        let mut manifests = BTreeMap::new();
        for stored in &self.manifests {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&stored.bytes)
                .map_err(|e| format!("a manifest is not base64: {e}"))?;
            let manifest =
                Manifest::from_bytes(bytes, Some(&stored.media_type)).map_err(|e| e.to_string())?;
            manifests.insert(manifest.digest.clone(), manifest);
        }
        for image in &self.images {
            if !manifests.contains_key(&image.digest) {
                return Err(format!("the manifest of {} is missing", image.source));
            }
        }
        let mut held = BTreeMap::new();
        for stored in &self.held {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(stored)
                .map_err(|e| format!("a blob is not base64: {e}"))?;
            held.insert(Digest::of(&bytes), bytes);
        }
        Ok(Plan {
            images: self.images.clone(),
            warnings: self.warnings.clone(),
            manifests,
            held,
            web_blobs: self.web_blobs.clone(),
            notes: Vec::new(),
            // A resumed pull continues what was planned; --strict judged it when it was made.
            unselected: Vec::new(),
            left_out: self
                .left_out
                .iter()
                .map(|b| (b.digest.clone(), b.size))
                .collect(),
            mirrors: Default::default(),
        })
    }

    /// The names of the archive files its plan lays out; empty when the plan cannot be read.
    pub fn file_names(&self) -> HashSet<String> {
        self.plan()
            .ok()
            .and_then(|plan| crate::pull::layout::archive_plans(&plan, self.chunk_size).ok())
            .into_iter()
            .flatten()
            .flat_map(|archive| archive.files)
            .map(|file| file.name)
            .collect()
    }

    /// About the bytes its file takes, without writing it out twice to find out.
    pub fn estimated_size(&self) -> u64 {
        let manifests: usize = self.manifests.iter().map(|m| m.bytes.len() + 128).sum();
        let held: usize = self.held.iter().map(|g| g.len() + 8).sum();
        (manifests + held + 1024 * self.images.len() + 64 * self.left_out.len()) as u64
    }

    /// How long ago the pull started.
    pub fn age(&self) -> Duration {
        Duration::from_secs(now().saturating_sub(self.created))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The state file in `dir`: `None` when there is none, `Err` saying why it cannot be used.
pub fn read_state(dir: &Path) -> Option<Result<State, String>> {
    let path = dir.join(STATE_FILE);
    let bytes = match crate::small_file::read_small(&path, STATE_LIMIT) {
        Ok(bytes) => bytes?,
        Err(e) => return Some(Err(format!("cannot read {}: {e}", path.display()))),
    };
    Some(
        serde_json::from_slice::<State>(&bytes)
            .map_err(|e| format!("{} is not readable: {e}", path.display()))
            .and_then(|state| {
                if state.version != STATE_VERSION {
                    return Err(format!(
                        "it was written by another ferry (state {})",
                        state.version
                    ));
                }
                // What a state names becomes file names and paths: held to the rules a fresh
                // plan is, so a planted state cannot point the writer anywhere else.
                let plan = state.plan()?;
                let problems = crate::pull::readable::unreadable(&plan);
                if let Some(first) = problems.first() {
                    return Err(format!(
                        "{} plans what a bundle cannot hold ({first})",
                        path.display()
                    ));
                }
                Ok(state)
            }),
    )
}
