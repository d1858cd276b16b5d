//! From wanted tags to a plan, the way both the layout resolver and image sets take: the tags
//! sized ([`super::sizing`]), then the referrers of those that ask for them added
//! ([`super::referrers`]).

use super::SourceError;
use super::manifest_cache::ManifestCache;
use super::plan::Plan;
use super::referrers::add_referrers;
use super::sizing::{Want, plan_images};
use crate::registry::RegistryClient;

/// Fetches every wanted manifest (and its children) from `client`'s registry, but those `known`
/// holds, keeps the platforms each want asks for, sizes every tag, and adds the referrers of
/// the wants that ask for them.
pub(crate) async fn build_plan(
    client: &RegistryClient,
    wants: Vec<Want>,
    known: ManifestCache,
    warnings: Vec<String>,
    concurrency: usize,
) -> Result<Plan, SourceError> {
    let referring: Vec<Want> = wants.iter().filter(|w| w.take.referrers).cloned().collect();
    let mut plan = plan_images(client, wants, known, warnings, concurrency).await?;
    if !referring.is_empty() {
        add_referrers(client, &mut plan, &referring, concurrency).await?;
    }
    Ok(plan)
}
