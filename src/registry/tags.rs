//! Tag listing, following `Link` pagination for registries that paginate.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::client::{RegistryClient, read_limited};
use super::error::RegistryError;

/// Pages this long keep a listing of thousands of tags to a few requests.
const PAGE: usize = 1000;
/// A page body larger than this is refused.
const PAGE_LIMIT: usize = 16 << 20;
/// More pages or tags than this in one repository is not a registry, it is a trap.
const MAX_PAGES: usize = 1_000;
const MAX_TAGS: usize = 1_000_000;

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
        let mut url = self.url(&format!("{repository}/tags/list?n={PAGE}"));
        let mut seen = HashSet::new();
        let mut tags = Vec::new();
        loop {
            if !seen.insert(url.clone()) {
                return Err(protocol(format!(
                    "the tag list links back to a page already read ({url})"
                )));
            }
            if seen.len() > MAX_PAGES {
                return Err(protocol(format!(
                    "the tag list goes on past {MAX_PAGES} pages; refusing to follow it"
                )));
            }
            let response = self
                .send(&scope, true, || {
                    self.http().request(Method::GET, url.clone())
                })
                .await?;
            let response = self
                .expect(response, &scope, "tag list", &[StatusCode::OK])
                .await?;
            let next = match next_link(response.headers()) {
                None => None,
                Some(link) => Some(
                    self.resolve(&link)
                        .map_err(|e| protocol(format!("tag list link '{link}': {e}")))?,
                ),
            };
            let body = read_limited(response, PAGE_LIMIT, &target, "a tag list page").await?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|e| protocol(format!("tag list is not valid JSON: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            if tags.len() > MAX_TAGS {
                return Err(protocol(format!(
                    "the repository lists more than {MAX_TAGS} tags; refusing them"
                )));
            }
            match next {
                // The credentials of this registry would go along: never to another origin.
                Some(n) if !self.same_origin(&n) => {
                    return Err(protocol(format!(
                        "the tag list links to another host ({}); refusing to follow it",
                        n.origin().ascii_serialization()
                    )));
                }
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
    }
}

/// The target of `Link: <url>; rel="next"`.
pub(super) fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let value = value.to_str().ok()?;
        for part in value.split(',') {
            let (target, params) = part.split_once(';')?;
            if params.replace(' ', "").contains("rel=\"next\"") {
                let t = target.trim().trim_start_matches('<').trim_end_matches('>');
                return Some(t.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(next_link(&headers), None);
        headers.insert(
            reqwest::header::LINK,
            r#"</v2/a/tags/list?last=v9&n=1000>; rel="next""#.parse().unwrap(),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("/v2/a/tags/list?last=v9&n=1000")
        );
        headers.insert(
            reqwest::header::LINK,
            r#"</v2/a/tags/list?n=1>; rel="prev""#.parse().unwrap(),
        );
        assert_eq!(next_link(&headers), None);
    }
}
