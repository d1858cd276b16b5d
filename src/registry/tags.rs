//! Tag listing, following `Link` pagination for registries that paginate.

use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::client::RegistryClient;
use super::error::RegistryError;

/// Pages this long keep a listing of thousands of tags to a few requests.
const PAGE: usize = 1000;

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
        let mut url = self.url(&format!("{repository}/tags/list?n={PAGE}"));
        let mut tags = Vec::new();
        // Pages are bounded so a registry whose Link points back to itself cannot loop forever.
        for _ in 0..100_000 {
            let response = self
                .send(&scope, true, || {
                    self.http().request(Method::GET, url.clone())
                })
                .await?;
            let response = self
                .expect(response, &scope, "tag list", &[StatusCode::OK])
                .await?;
            let next = next_link(response.headers()).and_then(|l| self.resolve(&l).ok());
            let target = self.target(Some(repository));
            let body = response
                .bytes()
                .await
                .map_err(|e| super::error::classify_transport(target.clone(), &e))?;
            let page: Page =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                    target,
                    detail: format!("tag list is not valid JSON: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) if n != url => url = n,
                _ => return Ok(tags),
            }
        }
        Ok(tags)
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
