//! One registry host (or the origin of a web repository, read through [`super::web`]): the
//! HTTP client, its authentication state, and the request loop that answers 401 challenges
//! and retries what is worth retrying.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};

use super::auth::{Auth, Scope};
use super::body::{ERROR_BODY_LIMIT, read_prefix};
use super::credentials::{self, Credential};
use super::error::{RegistryError, Target, classify_transport, describe_error_body};
use super::transport::{TransportOptions, http_client};

/// How often and how patiently to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// Delay before the first retry; it doubles each time.
    pub base_delay: Duration,
    /// Longest delay between two attempts (also caps `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1-based), with jitter so that parallel
    /// transfers that failed together do not come back together.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1 << retry.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = capped.mul_f64(f64::from(nanos % 1000) / 4000.0);
        capped + jitter
    }
}

/// Everything needed to talk to one registry.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Transport settings.
    pub transport: TransportOptions,
    /// Credentials given on the command line or in the environment. When `None`, the usual
    /// credential files are searched.
    pub credential: Option<Credential>,
    /// Retry behaviour.
    pub retry: RetryPolicy,
}

/// A client for one registry host.
pub struct RegistryClient {
    registry: String,
    base: reqwest::Url,
    http: reqwest::Client,
    auth: Auth,
    retry: RetryPolicy,
    stall_timeout: Duration,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client for `registry` (`host[:port]`). `repository` picks the most specific entry of
    /// a credentials file when the credentials were not given explicitly.
    pub fn new(
        registry: &str,
        repository: &str,
        options: ClientOptions,
    ) -> Result<Self, RegistryError> {
        let scheme = if options.transport.insecure {
            "http"
        } else {
            "https"
        };
        let base = reqwest::Url::parse(&format!("{scheme}://{registry}/")).map_err(|e| {
            RegistryError::Config(format!("'{registry}' is not a registry address: {e}"))
        })?;
        let credential = match options.credential {
            Some(c) => Some(c),
            // A credential helper may run here: keep it off the async worker threads.
            None => match tokio::runtime::Handle::try_current() {
                Ok(handle)
                    if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread =>
                {
                    tokio::task::block_in_place(|| credentials::lookup(registry, repository))?
                }
                _ => credentials::lookup(registry, repository)?,
            },
        };
        Ok(RegistryClient {
            registry: registry.to_string(),
            http: http_client(&options.transport)?,
            auth: Auth::new(
                registry.to_string(),
                base.clone(),
                credential,
                options.transport.insecure,
            ),
            base,
            retry: options.retry,
            stall_timeout: options.transport.stall_timeout,
        })
    }

    /// A client for the origin (scheme, host, port) of `url`, a web server that is no
    /// registry, sharing `http`: `login` goes with every request to that origin from the first
    /// on, and nowhere else. [`super::web`] reads files through it.
    pub(crate) fn for_origin(
        url: &reqwest::Url,
        login: Option<Credential>,
        http: reqwest::Client,
        retry: RetryPolicy,
        stall_timeout: Duration,
    ) -> Self {
        let registry = url[url::Position::BeforeHost..url::Position::AfterPort].to_string();
        let mut base = url.clone();
        base.set_path("/");
        base.set_query(None);
        base.set_fragment(None);
        RegistryClient {
            auth: Auth::unasked(registry.clone(), base.clone(), login),
            registry,
            base,
            http,
            retry,
            stall_timeout,
        }
    }

    /// The registry's `host[:port]`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The retry policy, for loops that resume transfers themselves.
    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// How long a transfer may go (nearly) without bytes.
    pub(crate) fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    /// True when `url` is the registry's own origin (scheme, host, port): the only place its
    /// credentials go.
    pub(crate) fn same_origin(&self, url: &reqwest::Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    pub(crate) fn target(&self, repository: Option<&str>) -> Target {
        Target {
            registry: self.registry.clone(),
            repository: repository.map(str::to_string),
        }
    }

    /// `https://host/v2/<path>`.
    pub(crate) fn url(&self, path: &str) -> reqwest::Url {
        self.base
            .join(&format!("v2/{path}"))
            .expect("registry paths are valid URL paths")
    }

    /// Resolves a `Location` header, which may be relative, against the registry.
    pub(crate) fn resolve(&self, location: &str) -> Result<reqwest::Url, url::ParseError> {
        self.base.join(location)
    }

    /// Checks that the registry answers and that the credentials are accepted.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let response = self
            .send(&Scope::Registry, true, || {
                self.http.request(Method::GET, self.url(""))
            })
            .await?;
        self.expect(response, &Scope::Registry, "GET /v2/", &[StatusCode::OK])
            .await
            .map(drop)
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends a request built by `build`, answering auth challenges (once per request) and,
    /// when `retry` is set, retrying connection failures, 408, 429 and 5xx with backoff.
    /// `build` is called again for every attempt, so a streamed body is recreated, not reused.
    pub(crate) async fn send(
        &self,
        scope: &Scope,
        retry: bool,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let target = self.target(scope.repository());
        let mut attempt = 0u32;
        let mut reauthenticated = false;
        loop {
            attempt += 1;
            let mut request = build()
                .build()
                .map_err(|e| classify_transport(target.clone(), &e))?;
            // Credentials go to the registry's own origin only: an upload Location may send
            // the body elsewhere (object storage), and that host must not see them.
            let auth_header = if self.same_origin(request.url()) {
                self.auth.header(&self.http, scope).await?
            } else {
                None
            };
            let sent_auth = auth_header.is_some();
            if let Some(header) = auth_header {
                let value = reqwest::header::HeaderValue::from_str(&header).map_err(|_| {
                    RegistryError::Config("credentials hold characters a header cannot".into())
                })?;
                request
                    .headers_mut()
                    .insert(reqwest::header::AUTHORIZATION, value);
            }
            let result = self.http.execute(request).await;
            let retry_left = retry && attempt < self.retry.attempts;
            let response = match result {
                Ok(r) => r,
                Err(e) => {
                    let err = classify_transport(target.clone(), &e);
                    if retry_left && is_worth_retrying(&err) {
                        tracing::warn!("{err}; retrying (attempt {attempt})");
                        tokio::time::sleep(self.retry.delay(attempt)).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                let challenge = response
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                if !reauthenticated
                    && self
                        .auth
                        .on_unauthorized(scope, challenge.as_deref(), sent_auth)
                        .await?
                {
                    reauthenticated = true;
                    attempt -= 1;
                    continue;
                }
                let body = read_prefix(response, ERROR_BODY_LIMIT).await;
                return Err(RegistryError::Unauthorized {
                    target,
                    detail: describe_error_body(&body),
                    had_credentials: self.auth.has_credentials(),
                });
            }
            let transient = status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS
                || matches!(status.as_u16(), 500 | 502 | 503 | 504);
            if transient && retry_left {
                let wait = retry_after(&response)
                    .map(|d| d.min(self.retry.max_delay))
                    .unwrap_or_else(|| self.retry.delay(attempt));
                tracing::warn!("{target}: HTTP {status}; retrying in {wait:?} (attempt {attempt})");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(response);
        }
    }

    /// Returns the response when its status is one of `ok`, else the matching error.
    pub(crate) async fn expect(
        &self,
        response: Response,
        scope: &Scope,
        what: &str,
        ok: &[StatusCode],
    ) -> Result<Response, RegistryError> {
        if ok.contains(&response.status()) {
            return Ok(response);
        }
        Err(self.status_error(response, scope, what).await)
    }

    /// The error for an unexpected answer, with the registry's own explanation.
    pub(crate) async fn status_error(
        &self,
        response: Response,
        scope: &Scope,
        what: &str,
    ) -> RegistryError {
        let target = self.target(scope.repository());
        let status = response.status();
        let body = read_prefix(response, ERROR_BODY_LIMIT).await;
        let detail = describe_error_body(&body);
        match status {
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                target,
                what: what.to_string(),
                detail,
            },
            StatusCode::FORBIDDEN => RegistryError::Denied { target, detail },
            _ => RegistryError::Status {
                target,
                what: what.to_string(),
                status: status.as_u16(),
                detail,
            },
        }
    }
}

/// Transport failures that may go away: not TLS trust problems, not unknown host names.
fn is_worth_retrying(err: &RegistryError) -> bool {
    match err {
        RegistryError::Unreachable { detail, .. } => !detail.contains("dns error"),
        _ => false,
    }
}

fn retry_after(response: &Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A response header as text, when present and readable.
pub(crate) fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
