//! The offline check, before the target hears a word: the bundle opened with every file there
//! at its size, its archives indexed, every tag checked as `verify` checks it, and what it holds
//! laid out as the push's inventory.

use super::error::PushError;
use super::inventory::Inventory;
use super::options::PushOptions;
use crate::bundle::{Bundle, BundleError};

/// Reads and checks the bundle in `options.dir`; a broken bundle is refused, every problem
/// named.
pub(super) async fn read_bundle(options: &PushOptions) -> Result<Inventory, PushError> {
    let dir = options.dir.clone();
    let target = options.target.repository.clone();
    let modules = options.modules_path.clone();
    let aliases = options.aliases.clone();
    // Manifests are walked with the async walker from the blocking thread.
    let handle = tokio::runtime::Handle::current();
    let inventory = tokio::task::spawn_blocking(move || {
        let bundle = Bundle::open(&dir)?;
        let problems = bundle.inconsistencies()?;
        if !problems.is_empty() {
            return Err(BundleError::Inconsistent { problems });
        }
        Inventory::read(&bundle, &target, modules.as_deref(), &aliases, &handle)
    })
    .await
    .expect("reading the bundle does not panic")?;
    Ok(inventory)
}
