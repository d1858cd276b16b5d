//! The OCI 1.1 referrers API: `GET /v2/<name>/referrers/<digest>` lists the manifests whose
//! `subject` is that digest. Registries without it (distribution 2.8) answer 404; then the
//! caller falls back to the referrers tag schema.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::client::{RegistryClient, read_limited};
use super::error::RegistryError;
use super::tags::next_link;
use crate::digest::Digest;
use crate::manifest::{Descriptor, MANIFEST_LIMIT, OCI_INDEX};

/// More pages than this for one subject is not a registry, it is a trap.
const MAX_PAGES: usize = 100;

impl RegistryClient {
    /// What refers to `digest` in `repository`, by the referrers API; `None` when the registry
    /// has no such API (404, 405 or 400 for the path).
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let scope = Scope::Pull(repository.to_string());
        let target = self.target(Some(repository));
        let protocol = |detail: String| RegistryError::Protocol {
            target: target.clone(),
            detail,
        };
        let mut url = self.url(&format!("{repository}/referrers/{digest}"));
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        loop {
            if !seen.insert(url.clone()) || seen.len() > MAX_PAGES {
                return Err(protocol(format!(
                    "the referrers of {digest} run past {MAX_PAGES} pages or loop; refusing them"
                )));
            }
            let response = self
                .send(&scope, true, || {
                    self.http()
                        .request(Method::GET, url.clone())
                        .header(reqwest::header::ACCEPT, OCI_INDEX)
                })
                .await?;
            if found.is_empty()
                && seen.len() == 1
                && matches!(
                    response.status(),
                    StatusCode::NOT_FOUND
                        | StatusCode::METHOD_NOT_ALLOWED
                        | StatusCode::BAD_REQUEST
                )
            {
                return Ok(None);
            }
            let what = format!("referrers of {digest}");
            let response = self
                .expect(response, &scope, &what, &[StatusCode::OK])
                .await?;
            let next = match next_link(response.headers()) {
                None => None,
                Some(link) => Some(
                    self.resolve(&link)
                        .map_err(|e| protocol(format!("referrers link '{link}': {e}")))?,
                ),
            };
            let body = read_limited(response, MANIFEST_LIMIT as usize, &target, &what).await?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|e| protocol(format!("{what} is not an image index: {e}")))?;
            found.extend(page.manifests);
            match next {
                Some(n) if !self.same_origin(&n) => {
                    return Err(protocol(format!(
                        "{what} link to another host ({}); refusing to follow it",
                        n.origin().ascii_serialization()
                    )));
                }
                Some(n) => url = n,
                None => return Ok(Some(found)),
            }
        }
    }
}
