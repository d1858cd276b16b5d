//! Files of web repositories that are no registries (a Helm repository's `index.yaml` and
//! charts), fetched through the registry client's request loop: the transport's CA, proxies
//! and plain-HTTP settings, retries with backoff (also after 5xx and 429), the stall timeout,
//! bounded error bodies and typed errors; a repository's login goes to its own origin only.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::{Response, StatusCode, Url};

use super::auth::Scope;
use super::body::read_limited;
use super::client::{RegistryClient, RetryPolicy};
use super::credentials::Credential;
use super::download::StallWatch;
use super::error::RegistryError;
use super::transport::{TransportOptions, http_client};
use crate::report::ProgressFn;
use crate::store::BlobSink;

/// Reads files of web repositories, all through one HTTP client.
pub struct WebClient {
    http: reqwest::Client,
    retry: RetryPolicy,
    stall_timeout: Duration,
}

impl WebClient {
    /// A client with `transport`'s settings that retries as `retry` says.
    pub fn new(transport: &TransportOptions, retry: RetryPolicy) -> Result<Self, RegistryError> {
        Ok(WebClient {
            http: http_client(transport)?,
            retry,
            stall_timeout: transport.stall_timeout,
        })
    }

    /// The repository at `root`. `login` goes with every request to the origin of `root`,
    /// unasked, as Helm sends it; a file elsewhere (a chart on another host) is fetched
    /// without it.
    pub fn repository(&self, root: &Url, login: Option<Credential>) -> WebRepository {
        WebRepository {
            client: RegistryClient::for_origin(
                root,
                login,
                self.http.clone(),
                self.retry.clone(),
                self.stall_timeout,
            ),
        }
    }
}

/// One web repository: the request loop and login of its origin.
pub struct WebRepository {
    client: RegistryClient,
}

/// A file as it arrives.
pub struct WebFile {
    /// The length the server announced, if it did.
    pub length: Option<u64>,
    /// Its bytes; a body that breaks off, stops or trickles ends with the error that says so.
    pub body: BoxStream<'static, Result<bytes::Bytes, RegistryError>>,
}

impl WebRepository {
    /// The whole file at `url`, refused past `limit` bytes.
    pub async fn read(&self, url: &Url, limit: usize) -> Result<Vec<u8>, RegistryError> {
        let response = self.get(url).await?;
        read_limited(response, limit, &self.client.target(None), url.as_str()).await
    }

    /// The file at `url`, streamed once: no resume (a reader that parses it cannot start
    /// over); [`WebRepository::download`] resumes.
    pub async fn open(&self, url: &Url) -> Result<WebFile, RegistryError> {
        let response = self.get(url).await?;
        let (target, what) = (self.client.target(None), url.to_string());
        let mut watch = StallWatch::new(self.client.stall_timeout());
        Ok(WebFile {
            length: response.content_length(),
            body: response
                .bytes_stream()
                .map(move |chunk| match chunk {
                    Ok(bytes) if watch.moved(bytes.len() as u64) => Ok(bytes),
                    Ok(_) => Err(watch.stalled(&target, &what)),
                    Err(e) => Err(watch.cut(&target, &what, &e)),
                })
                .boxed(),
        })
    }

    /// Downloads the `size` bytes at `url` into `sink`, from the bytes the sink already holds,
    /// continued with `Range` after a cut. What the sink refuses comes back as
    /// [`RegistryError::Store`]; the caller checks the digest.
    pub async fn download(
        &self,
        url: &Url,
        size: u64,
        sink: &mut impl BlobSink,
        progress: &ProgressFn,
    ) -> Result<(), RegistryError> {
        self.client
            .download(&Scope::Registry, url, url.as_str(), size, sink, progress)
            .await
    }

    /// `GET url`, retried as the client retries, answered with 200.
    async fn get(&self, url: &Url) -> Result<Response, RegistryError> {
        let response = self
            .client
            .send(&Scope::Registry, true, || {
                self.client.http().get(url.clone())
            })
            .await?;
        self.client
            .expect(response, &Scope::Registry, url.as_str(), &[StatusCode::OK])
            .await
    }
}
