//! Authentication: learn the registry's challenge from its first 401, answer with basic
//! credentials or a bearer token for the scopes a request needs, cache tokens per scope, and
//! forget a token the registry stops accepting (tokens expire during long transfers).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::sync::Mutex;

use super::body::{ERROR_BODY_LIMIT, read_limited, read_prefix};
use super::credentials::Credential;
use super::error::{RegistryError, Target, classify_transport, describe_error_body};

/// The access a request needs, in the registry's token-scope terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Registry-wide requests (`/v2/`): no repository scope.
    Registry,
    /// Read a repository.
    Pull(String),
    /// Read and write a repository.
    Push(String),
    /// Write `to`, read `from`: a cross-repository blob mount.
    Mount {
        /// The repository receiving the blob.
        to: String,
        /// The repository the blob comes from.
        from: String,
    },
}

impl Scope {
    fn scopes(&self) -> Vec<String> {
        match self {
            Scope::Registry => Vec::new(),
            Scope::Pull(r) => vec![format!("repository:{r}:pull")],
            Scope::Push(r) => vec![format!("repository:{r}:pull,push")],
            Scope::Mount { to, from } => vec![
                format!("repository:{to}:pull,push"),
                format!("repository:{from}:pull"),
            ],
        }
    }

    /// The repository the request is about, for error messages.
    pub fn repository(&self) -> Option<&str> {
        match self {
            Scope::Registry => None,
            Scope::Pull(r) | Scope::Push(r) => Some(r),
            Scope::Mount { to, .. } => Some(to),
        }
    }
}

#[derive(Debug, Clone)]
enum Challenge {
    Basic,
    Bearer {
        realm: reqwest::Url,
        service: Option<String>,
    },
}

struct CachedToken {
    value: String,
    valid_until: Instant,
}

/// The longest a token is trusted, whatever its answer says.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A token answer larger than this is refused.
const TOKEN_ANSWER_LIMIT: usize = 1 << 20;

/// The authentication state of one registry client.
pub(crate) struct Auth {
    registry: String,
    /// The registry's own origin: where credentials may go.
    base: reqwest::Url,
    credential: Option<Credential>,
    allow_http_realm: bool,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<Scope, CachedToken>>,
    /// Whether the user was told that the token service is another host.
    warned_realm: AtomicBool,
}

impl Auth {
    pub(crate) fn new(
        registry: String,
        base: reqwest::Url,
        credential: Option<Credential>,
        allow_http_realm: bool,
    ) -> Self {
        Auth {
            registry,
            base,
            credential,
            allow_http_realm,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            warned_realm: AtomicBool::new(false),
        }
    }

    /// Authentication for a web server that is no registry (a Helm repository): `login`, when
    /// there is one, goes as basic credentials from the first request on, unasked, as Helm
    /// sends it. A token service it names may be plain HTTP only when the server itself is.
    pub(crate) fn unasked(registry: String, base: reqwest::Url, login: Option<Credential>) -> Self {
        let challenge = login.as_ref().map(|_| Challenge::Basic);
        let allow_http_realm = base.scheme() == "http";
        Auth {
            challenge: Mutex::new(challenge),
            ..Auth::new(registry, base, login, allow_http_realm)
        }
    }

    /// Whether the login may go to this token service: over HTTPS, or over plain HTTP to the
    /// registry's own host when `--insecure` allows plain HTTP at all.
    fn credentials_allowed(&self, realm: &reqwest::Url) -> bool {
        let same_host = realm.host_str() == self.base.host_str();
        if !same_host && !self.warned_realm.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "{}: the token service is another host ({}); the login goes there",
                self.registry,
                realm.origin().ascii_serialization()
            );
        }
        realm.scheme() == "https" || (self.allow_http_realm && same_host)
    }

    pub(crate) fn has_credentials(&self) -> bool {
        self.credential.is_some()
    }

    fn target(&self, scope: &Scope) -> Target {
        Target {
            registry: self.registry.clone(),
            repository: scope.repository().map(str::to_string),
        }
    }

    /// The `Authorization` header for a request, if the registry asked for one.
    pub(crate) async fn header(
        &self,
        http: &reqwest::Client,
        scope: &Scope,
    ) -> Result<Option<String>, RegistryError> {
        if let Some(Credential::Bearer(token)) = &self.credential {
            return Ok(Some(format!("Bearer {}", token.expose())));
        }
        let challenge = self.challenge.lock().await.clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(match &self.credential {
                Some(Credential::Basic { username, password }) => Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", password.expose()))
                )),
                _ => None,
            }),
            Some(Challenge::Bearer { realm, service }) => {
                if let Some(t) = self.tokens.lock().await.get(scope)
                    && t.valid_until > Instant::now()
                {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                // The cache is not locked while a token is fetched: one slow token service
                // must not stall every other transfer. Two fetches for one scope may race;
                // either token works.
                let token = self
                    .fetch_token(http, &realm, service.as_deref(), scope)
                    .await?;
                let header = format!("Bearer {}", token.value);
                self.tokens.lock().await.insert(scope.clone(), token);
                Ok(Some(header))
            }
        }
    }

    /// Handles a 401 to a request that carried credentials (`sent_auth`) or none: remembers
    /// the challenge and drops the token that was refused. Returns false when retrying cannot
    /// help (the registry asks for nothing we can give, or refused what we gave).
    pub(crate) async fn on_unauthorized(
        &self,
        scope: &Scope,
        www_authenticate: Option<&str>,
        sent_auth: bool,
    ) -> Result<bool, RegistryError> {
        self.tokens.lock().await.remove(scope);
        let Some(value) = www_authenticate else {
            return Ok(false);
        };
        let challenges =
            http_auth::parse_challenges(value).map_err(|e| RegistryError::Protocol {
                target: self.target(scope),
                detail: format!("cannot parse WWW-Authenticate '{value}': {e}"),
            })?;
        let param = |c: &http_auth::ChallengeRef, name: &str| {
            c.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        let mut learned = None;
        for c in &challenges {
            if c.scheme.eq_ignore_ascii_case("bearer") {
                let Some(realm) = param(c, "realm") else {
                    continue;
                };
                let realm = reqwest::Url::parse(&realm).map_err(|e| RegistryError::Protocol {
                    target: self.target(scope),
                    detail: format!("token realm '{realm}' is not a URL: {e}"),
                })?;
                if realm.scheme() == "http" && !self.allow_http_realm {
                    return Err(RegistryError::Protocol {
                        target: self.target(scope),
                        detail: format!(
                            "the token service {realm} is plain HTTP; credentials would travel \
                             unencrypted (use --insecure to allow it)"
                        ),
                    });
                }
                learned = Some(Challenge::Bearer {
                    realm,
                    service: param(c, "service"),
                });
                break;
            }
            if c.scheme.eq_ignore_ascii_case("basic") {
                learned = Some(Challenge::Basic);
            }
        }
        let Some(learned) = learned else {
            return Ok(false);
        };
        let retry = match &learned {
            // Basic credentials either work or not: retry only if they were not sent yet.
            Challenge::Basic => {
                !sent_auth && matches!(self.credential, Some(Credential::Basic { .. }))
            }
            // A refused token may have expired: a fresh one is worth one more try.
            Challenge::Bearer { .. } => true,
        };
        *self.challenge.lock().await = Some(learned);
        Ok(retry)
    }

    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        realm: &reqwest::Url,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<CachedToken, RegistryError> {
        let target = self.target(scope);
        let mut url = realm.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scope.scopes() {
                q.append_pair("scope", &s);
            }
            if let Some(Credential::Basic { username, .. }) = &self.credential
                && self.credentials_allowed(realm)
            {
                q.append_pair("account", username);
            }
        }
        let credential = self
            .credential
            .as_ref()
            .filter(|_| self.credentials_allowed(realm));
        let request = match credential {
            Some(Credential::Basic { username, password }) => {
                http.get(url).basic_auth(username, Some(password.expose()))
            }
            Some(Credential::IdentityToken(token)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", token.expose().to_string()),
                    ("client_id", "ferry".to_string()),
                ];
                if let Some(s) = service {
                    form.push(("service", s.to_string()));
                }
                let scopes = scope.scopes().join(" ");
                if !scopes.is_empty() {
                    form.push(("scope", scopes));
                }
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{k}={}", url_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                http.post(realm.clone())
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body)
            }
            Some(Credential::Bearer(_)) | None => http.get(url),
        };
        let response = request
            .send()
            .await
            .map_err(|e| classify_transport(target.clone(), &e))?;
        let status = response.status();
        let body = if status.is_success() {
            read_limited(response, TOKEN_ANSWER_LIMIT, &target, "the token answer").await?
        } else {
            read_prefix(response, ERROR_BODY_LIMIT).await
        };
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                target,
                detail: format!(
                    "the token service {realm} refused {}: {}",
                    if self.credential.is_some() {
                        "the credentials"
                    } else {
                        "anonymous access"
                    },
                    describe_error_body(&body)
                ),
                had_credentials: self.credential.is_some(),
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                target,
                what: format!("token request to {realm}"),
                status: status.as_u16(),
                detail: describe_error_body(&body),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                target: target.clone(),
                detail: format!(
                    "the token service {realm} answered something that is not a token: {e}"
                ),
            })?;
        let value = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Protocol {
                target,
                detail: format!("the token service {realm} answered without a token"),
            })?;
        // The spec's default lifetime is 60 s; renew a little early to avoid using a token in
        // its last seconds. A lifetime beyond a day is not believed.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).max(10))
            .min(MAX_TOKEN_LIFETIME)
            - Duration::from_secs(5);
        let now = Instant::now();
        Ok(CachedToken {
            value,
            valid_until: now.checked_add(lifetime).unwrap_or(now),
        })
    }
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
