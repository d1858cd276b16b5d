//! Listings that a registry may split into pages (`Link: <…>; rel="next"`): tag lists and
//! referrers. The pages are followed on the registry's own origin only (the credentials go
//! along), never twice, and only so far.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::body::read_limited;
use super::client::RegistryClient;
use super::error::RegistryError;

/// How one kind of listing is read.
pub(super) struct Listing<'a> {
    /// What it is, for messages ("the tag list").
    pub what: &'a str,
    /// The `Accept` header to send, if any.
    pub accept: Option<&'a str>,
    /// Most pages followed.
    pub max_pages: usize,
    /// Largest page body read.
    pub page_limit: usize,
    /// Most bytes read over all pages together.
    pub total_limit: usize,
    /// Answers to the first request that mean "this registry has no such listing".
    pub absent: &'a [StatusCode],
}

impl RegistryClient {
    /// Reads `path` and every page after it, handing each page's body to `page`. Returns
    /// `false` when the first answer is one of `listing.absent`.
    pub(super) async fn get_pages(
        &self,
        scope: &Scope,
        path: &str,
        listing: &Listing<'_>,
        mut page: impl FnMut(&[u8]) -> Result<(), RegistryError>,
    ) -> Result<bool, RegistryError> {
        let target = self.target(scope.repository());
        let protocol = |detail: String| RegistryError::Protocol {
            target: target.clone(),
            detail,
        };
        let what = listing.what;
        let mut url = self.url(path);
        let mut seen = HashSet::new();
        let mut total = 0usize;
        loop {
            if !seen.insert(url.clone()) {
                return Err(protocol(format!(
                    "{what} links back to a page already read ({url})"
                )));
            }
            if seen.len() > listing.max_pages {
                return Err(protocol(format!(
                    "{what} goes on past {} pages; refusing to follow it",
                    listing.max_pages
                )));
            }
            let response = self
                .send(scope, true, || {
                    let request = self.http().request(Method::GET, url.clone());
                    match listing.accept {
                        Some(accept) => request.header(reqwest::header::ACCEPT, accept),
                        None => request,
                    }
                })
                .await?;
            if seen.len() == 1 && listing.absent.contains(&response.status()) {
                return Ok(false);
            }
            let response = self
                .expect(response, scope, what, &[StatusCode::OK])
                .await?;
            let next = match next_link(response.headers()) {
                None => None,
                Some(link) => Some(
                    self.resolve(&link)
                        .map_err(|e| protocol(format!("{what}: link '{link}': {e}")))?,
                ),
            };
            let body = read_limited(response, listing.page_limit, &target, what).await?;
            total = total.saturating_add(body.len());
            if total > listing.total_limit {
                return Err(protocol(format!(
                    "{what} goes on past {}; refusing the rest",
                    crate::report::human_bytes(listing.total_limit as u64)
                )));
            }
            page(&body)?;
            match next {
                // The credentials of this registry would go along: never to another origin.
                Some(n) if !self.same_origin(&n) => {
                    return Err(protocol(format!(
                        "{what} links to another host ({}); refusing to follow it",
                        n.origin().ascii_serialization()
                    )));
                }
                Some(n) => url = n,
                None => return Ok(true),
            }
        }
    }
}

/// The target of `Link: <url>; rel="next"`.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
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
