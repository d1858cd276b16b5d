//! What a push is asked to do, as plain data: `settings` builds it from the command line, the
//! environment and the layout description the bundle was made with.

use std::path::PathBuf;

use crate::reference::Reference;
use crate::registry::{ClientOptions, UploadMode};
use crate::trust::{Policy, PublicKey};

/// How to push a bundle.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The target root: a registry and a repository path under it (no tag, no digest).
    pub target: Reference,
    /// How to reach it.
    pub client: ClientOptions,
    /// Where the module catalog goes under the target, replacing its path in the bundle.
    pub modules_path: Option<String>,
    /// The tags written after all others.
    pub aliases: Aliases,
    /// Parallel requests.
    pub concurrency: usize,
    /// How blob bodies are sent at first; a body refused as too large switches to PATCHes.
    pub upload_mode: UploadMode,
    /// Leave tags that point elsewhere alone (reported as drifted).
    pub no_overwrite: bool,
    /// Where to write the receipt.
    pub receipt: Option<PathBuf>,
    /// Only ask what the target has (HEAD requests) and say what would be sent.
    pub dry_run: bool,
    /// `--key`: `bundle.json.sig` must be this key's signature of `bundle.json`, checked
    /// before anything else.
    pub key: Option<PublicKey>,
    /// `--verify-signatures`: every image held to this policy, offline, before the target is
    /// asked anything.
    pub signature_policy: Option<Policy>,
}

/// Tags that only name images other tags hold, as the layout description says: written after
/// every other tag, so that none ever points at an image not yet complete at the target.
#[derive(Debug, Clone)]
pub struct Aliases {
    /// Release channel names: a tag of that name in any repository is an alias.
    pub channels: Vec<String>,
    /// The module catalog's path in a bundle: each of its tags names a module. The modules
    /// tree below it is what `modules_path` moves.
    pub catalog: String,
}
