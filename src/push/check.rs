//! The offline check, before the target hears a word: the bundle opened with every file there
//! at its size, its archives indexed, every tag checked as `verify` checks it, and what it holds
//! laid out as the push's inventory.

use super::error::PushError;
use super::inventory::Inventory;
use super::options::PushOptions;
use crate::bundle::{Bundle, BundleError};
use crate::trust::check_bundle_signature;
use crate::trust::in_bundle::{InBundleError, check_bundle};

/// Reads and checks the bundle in `options.dir`; a broken bundle is refused, every problem
/// named. With `--key` its signature is checked first, before anything else is read; with
/// `--verify-signatures` every image is held to the policy with the bundle's signatures.
pub(super) async fn read_bundle(options: &PushOptions) -> Result<Inventory, PushError> {
    let verified = match &options.key {
        Some(key) => Some(check_bundle_signature(&options.dir, key)?),
        None => None,
    };
    let dir = options.dir.clone();
    let policy = options.signature_policy.clone();
    let target = options.target.repository.clone();
    let modules = options.modules_path.clone();
    let aliases = options.aliases.clone();
    // Manifests are walked with the async walker from the blocking thread.
    let handle = tokio::runtime::Handle::current();
    let inventory = tokio::task::spawn_blocking(move || {
        let mut bundle = match &verified {
            Some(metadata) => Bundle::open_verified(&dir, metadata)?,
            None => Bundle::open(&dir)?,
        };
        // The signed bytes of bundle.json (tens of MiB at thousands of images) are parsed.
        drop(verified);
        let problems = bundle.inconsistencies()?;
        if !problems.is_empty() {
            return Err(BundleError::Inconsistent { problems }.into());
        }
        let inventory =
            Inventory::read(&mut bundle, &target, modules.as_deref(), &aliases, &handle)?;
        let conflicts = inventory.conflicting_tags();
        if !conflicts.is_empty() {
            return Err(PushError::Conflicts { conflicts });
        }
        if let Some(policy) = &policy {
            let verdicts = check_bundle(&bundle, policy).map_err(|e| match e {
                InBundleError::Bundle(e) => PushError::Bundle(e),
                InBundleError::Trust(e) => PushError::Trust(e),
            })?;
            if !verdicts.refused.is_empty() {
                return Err(PushError::Refused {
                    policy: policy.file.clone(),
                    refused: verdicts
                        .refused
                        .iter()
                        .map(|(name, why)| format!("{name}: {why}"))
                        .collect(),
                });
            }
        }
        Ok(inventory)
    })
    .await
    .expect("reading the bundle does not panic")?;
    // The check built and dropped several times what the inventory keeps.
    crate::allocator::release_free_memory();
    Ok(inventory)
}
