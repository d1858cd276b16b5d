//! Tag listing, following `Link` pagination for registries that paginate.

use super::auth::Scope;
use super::client::RegistryClient;
use super::error::RegistryError;
use super::pages::Listing;

/// Pages this long keep a listing of thousands of tags to a few requests.
const PAGE: usize = 1000;
/// More tags than this in one repository is not a registry, it is a trap.
const MAX_TAGS: usize = 1_000_000;
/// Most bytes of tag list read over all pages (a million tags of 60 characters).
const LISTING_LIMIT: usize = 64 << 20;

impl RegistryClient {
    /// Every tag of a repository, in the registry's order. A repository that does not exist is
    /// a `NotFound` error.
    pub async fn list_tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let scope = Scope::Pull(repository.to_string());
        let target = self.target(Some(repository));
        let protocol = |detail: String| RegistryError::Protocol {
            target: target.clone(),
            detail,
        };
        let listing = Listing {
            what: "the tag list",
            accept: None,
            max_pages: 1_000,
            page_limit: 16 << 20,
            total_limit: LISTING_LIMIT,
            absent: &[],
        };
        let mut tags = Vec::new();
        self.get_pages(
            &scope,
            &format!("{repository}/tags/list?n={PAGE}"),
            &listing,
            |body| {
                let page: Page = serde_json::from_slice(body)
                    .map_err(|e| protocol(format!("the tag list is not valid JSON: {e}")))?;
                let page = page.tags.unwrap_or_default();
                // A tag the distribution spec does not allow (over 128 characters, control
                // characters, anything but [A-Za-z0-9_.-]) is no tag of a registry.
                if let Some(bad) = page
                    .iter()
                    .find(|t| crate::reference::validate_tag(t).is_err())
                {
                    return Err(protocol(format!(
                        "the tag list holds '{}' ({} bytes), which is not a tag (the \
                         distribution spec allows [A-Za-z0-9_][A-Za-z0-9._-], at most 128); \
                         refusing the list",
                        crate::report::printable(&bad.chars().take(64).collect::<String>()),
                        bad.len()
                    )));
                }
                tags.extend(page);
                if tags.len() > MAX_TAGS {
                    return Err(protocol(format!(
                        "the repository lists more than {MAX_TAGS} tags; refusing them"
                    )));
                }
                Ok(())
            },
        )
        .await?;
        Ok(tags)
    }
}
