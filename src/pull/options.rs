//! What a pull is asked to do, as plain values: built by the settings from the command line,
//! the environment and files, so that nothing in the pull knows where they came from.

use std::path::{Path, PathBuf};

use super::access::RegistryAccess;
use super::work::{WORK_DIR_NAME, WorkPlace};
use crate::bundle::Base;
use crate::imageset::charts::ChartOptions;
use crate::imageset::config::ImageSet;
use crate::imageset::list::ListedImage;
use crate::source::{Description, Request, SourceRoot};
use crate::trust::{Policy, PrivateKey};

/// How a pull (or its dry run) runs.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The bundle directory.
    pub dir: PathBuf,
    /// Where temporary space is taken (`--tmp-dir`, default `BUNDLE_DIR/.tmp`).
    pub tmp_dir: PathBuf,
    /// The source root of the platform layout; `None` with only image sets or a list.
    pub source: Option<SourceRoot>,
    /// Image set files.
    pub image_sets: Vec<ImageSet>,
    /// An image list.
    pub image_list: Vec<ListedImage>,
    /// How each registry is reached, and the mirrors that stand in for source registries.
    pub access: RegistryAccess,
    /// How Helm charts are downloaded.
    pub charts: ChartOptions,
    /// The source's structure.
    pub description: Description,
    /// What to take.
    pub request: Request,
    /// Chunk size in bytes; 0 = none.
    pub chunk_size: u64,
    /// Write `.gostsum` files.
    pub gost: bool,
    /// Parallel requests.
    pub concurrency: usize,
    /// Replace the archives of an earlier bundle in `dir`.
    pub force: bool,
    /// Start over instead of resuming.
    pub no_resume: bool,
    /// A selector that selects nothing fails the pull.
    pub strict: bool,
    /// The earlier bundle whose blobs are left out (`--since-bundle`).
    pub since_bundle: Option<Base>,
    /// `--verify-signatures`: every image is held to this policy before its layers are
    /// fetched.
    pub signature_policy: Option<Policy>,
    /// `--skip-unsigned`: images the policy refuses are left out (and listed) instead of
    /// failing the pull.
    pub skip_unsigned: bool,
    /// `--sign-key`: `bundle.json` is signed with it once sealed.
    pub sign_key: Option<PrivateKey>,
    /// What was asked, as recorded in the state file and `bundle.json`: a rerun resumes only
    /// when this is the same.
    pub request_record: serde_json::Value,
}

impl PullOptions {
    /// True when the work directory's parent is ferry's own `.tmp` under the bundle
    /// directory, not a `--tmp-dir` the user gave.
    pub fn default_tmp_dir(&self) -> bool {
        self.tmp_dir == self.dir.join(".tmp")
    }

    /// Where the work directory lies: ferry's own `.tmp/ferry-pull` under the bundle
    /// directory, or `ferry-pull` under the `--tmp-dir` the user gave. A `--tmp-dir` inside
    /// the bundle directory, however spelled, is ferry's own below the bundle directory: no
    /// link is followed there either.
    pub fn work_place(&self) -> WorkPlace {
        let dir = lexical(&self.dir);
        let tmp = lexical(&self.tmp_dir);
        match tmp.strip_prefix(&dir) {
            Ok(inside) => WorkPlace {
                anchor: dir.clone(),
                below: inside.join(WORK_DIR_NAME),
            },
            Err(_) => WorkPlace {
                anchor: tmp,
                below: PathBuf::from(WORK_DIR_NAME),
            },
        }
    }

    /// True when the bundle directory is the work directory or lies inside it (the work
    /// directory is emptied when a pull ends).
    pub fn bundle_in_work_dir(&self) -> Option<PathBuf> {
        let place = self.work_place();
        let work = place.anchor.join(&place.below);
        lexical(&self.dir).starts_with(&work).then_some(work)
    }

    /// How the bundle names where it came from: the source root, else the image set files.
    pub fn source_name(&self) -> String {
        match &self.source {
            Some(source) => source.to_string(),
            None => {
                let mut names: Vec<String> = self
                    .image_sets
                    .iter()
                    .map(|s| s.file.display().to_string())
                    .collect();
                if !self.image_list.is_empty() {
                    names.push("an image list".into());
                }
                names.join(", ")
            }
        }
    }
}

/// `path` made absolute and with `.` and `..` resolved by name alone (no link is followed).
fn lexical(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
