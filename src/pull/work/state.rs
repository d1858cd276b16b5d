//! The state file of a pull's work directory: what was asked, when, and the plan it resolved
//! to with every manifest, so that a rerun finishes the snapshot it started.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
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

/// The state file: what was asked, when, and what it resolved to. A new run's state borrows
/// its plan, so that writing it copies nothing; a state read back owns what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State<'a> {
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
    pub images: Cow<'a, [PlannedImage]>,
    /// The plan's warnings, repeated on a resumed run.
    pub warnings: Cow<'a, [String]>,
    /// Every manifest of the plan.
    pub manifests: Vec<StoredManifest<'a>>,
    /// Small blobs the plan holds rather than fetches (Helm chart configs, layers the resolver
    /// read). Named as when it held only made blobs, so earlier states still read.
    #[serde(default, rename = "generated")]
    pub held: Vec<Base64<'a>>,
    /// Blobs fetched from a URL (Helm charts' `.tgz`): where each is; its size is in `images`.
    #[serde(default)]
    pub web_blobs: Cow<'a, BTreeMap<Digest, WebBlob>>,
    /// Blobs left out against an earlier bundle.
    #[serde(default)]
    pub left_out: Vec<BlobRecord>,
}

/// A manifest in the state file: its bytes, exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredManifest<'a> {
    /// Its media type.
    pub media_type: Cow<'a, str>,
    /// Its bytes.
    pub bytes: Base64<'a>,
}

/// Bytes in the state file, as a base64 string: encoded as they are written out, with no copy
/// in memory.
#[derive(Debug, Clone)]
pub struct Base64<'a>(pub Cow<'a, [u8]>);

impl Serialize for Base64<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Base64Display::new(&self.0, &STANDARD))
    }
}

impl<'de> Deserialize<'de> for Base64<'_> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = STANDARD
            .decode(text)
            .map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))?;
        Ok(Base64(Cow::Owned(bytes)))
    }
}

impl<'a> State<'a> {
    /// A state for a new pull of `plan`, borrowing from it.
    pub fn new(
        request: &serde_json::Value,
        chunk_size: u64,
        gost: bool,
        plan: &'a Plan,
    ) -> State<'a> {
        State {
            version: STATE_VERSION,
            request: serde_json::value::to_raw_value(request).expect("a request serialises"),
            created: now(),
            chunk_size,
            gost,
            images: Cow::Borrowed(&plan.images),
            warnings: Cow::Borrowed(&plan.warnings),
            manifests: plan
                .manifests
                .values()
                .map(|m| StoredManifest {
                    media_type: Cow::Borrowed(&m.media_type),
                    bytes: Base64(Cow::Borrowed(&m.bytes)),
                })
                .collect(),
            held: plan
                .held
                .values()
                .map(|b| Base64(Cow::Borrowed(b)))
                .collect(),
            web_blobs: Cow::Borrowed(&plan.web_blobs),
            left_out: BlobRecord::list(&plan.left_out),
        }
    }

    /// The plan back, every manifest re-checked against its digest.
    pub fn plan(&self) -> Result<Plan, String> {
        self.clone().take_plan()
    }

    /// [`State::plan`], with what the plan is made of moved out of the state rather than
    /// copied: for a run that continues the earlier one and needs nothing of its state after
    /// the plan (at thousands of images both at once were the resumed pull's peak).
    pub fn take_plan(&mut self) -> Result<Plan, String> {
        let mut manifests = BTreeMap::new();
        for stored in std::mem::take(&mut self.manifests) {
            let manifest =
                Manifest::from_bytes(stored.bytes.0.into_owned(), Some(&stored.media_type))
                    .map_err(|e| e.to_string())?;
            manifests.insert(manifest.digest.clone(), manifest);
        }
        let images = std::mem::take(&mut self.images).into_owned();
        every_manifest_there(&images, |d| manifests.contains_key(d))?;
        let mut held = BTreeMap::new();
        for stored in std::mem::take(&mut self.held) {
            let bytes = Bytes::from(stored.0.into_owned());
            held.insert(Digest::of(&bytes), bytes);
        }
        Ok(Plan {
            images,
            warnings: std::mem::take(&mut self.warnings).into_owned(),
            manifests,
            held,
            web_blobs: std::mem::take(&mut self.web_blobs).into_owned(),
            notes: Vec::new(),
            // A resumed pull continues what was planned; --strict judged it when it was made.
            unselected: Vec::new(),
            left_out: std::mem::take(&mut self.left_out)
                .into_iter()
                .map(|b| (b.digest, b.size))
                .collect(),
            mirrors: Default::default(),
        })
    }

    /// What the bundle readers would refuse of its plan ([`crate::pull::readable`]), found
    /// without building the plan: a state of thousands of images is not held twice. An error
    /// when a manifest does not match its digest or an image's manifest is missing.
    fn unreadable(&self) -> Result<Vec<String>, String> {
        let mut sizes = BTreeMap::new();
        for stored in &self.manifests {
            let manifest = Manifest::from_bytes(stored.bytes.0.to_vec(), Some(&stored.media_type))
                .map_err(|e| e.to_string())?;
            sizes.insert(manifest.digest, manifest.bytes.len() as u64);
        }
        every_manifest_there(&self.images, |d| sizes.contains_key(d))?;
        Ok(crate::pull::readable::unreadable_images(
            &self.images,
            &sizes,
        ))
    }

    /// The names of the archive files its plan lays out; empty when the plan cannot be read.
    pub fn file_names(&self) -> HashSet<String> {
        self.clone().into_file_names()
    }

    /// [`State::file_names`] of a state not needed after: its plan is moved out, not copied.
    pub fn into_file_names(mut self) -> HashSet<String> {
        self.take_plan()
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
        // Base64 makes four characters of every three bytes.
        let manifests: usize = self
            .manifests
            .iter()
            .map(|m| m.bytes.0.len() * 4 / 3 + 128)
            .sum();
        let held: usize = self.held.iter().map(|g| g.0.len() * 4 / 3 + 8).sum();
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

/// An error naming the first of `images` whose manifest `known` lacks.
fn every_manifest_there(
    images: &[PlannedImage],
    known: impl Fn(&Digest) -> bool,
) -> Result<(), String> {
    match images.iter().find(|image| !known(&image.digest)) {
        Some(image) => Err(format!("the manifest of {} is missing", image.source)),
        None => Ok(()),
    }
}

/// The state file in `dir`: `None` when there is none, `Err` saying why it cannot be used.
pub fn read_state(dir: &Path) -> Option<Result<State<'static>, String>> {
    let path = dir.join(STATE_FILE);
    let file = match crate::small_file::open_small(&path, STATE_LIMIT) {
        Ok(file) => file?,
        Err(e) => return Some(Err(format!("cannot read {}: {e}", path.display()))),
    };
    // Parsed as it is read: the text is tens of MiB for thousands of images, and held whole
    // beside what it describes it was a resumed pull's peak.
    let parsed = serde_json::from_reader::<_, State>(std::io::BufReader::new(file));
    Some(
        parsed
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
                let problems = state.unreadable()?;
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
