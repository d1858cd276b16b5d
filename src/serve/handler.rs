//! The answer to one request, from the catalog alone: headers and small JSON bodies built here,
//! blob bytes streamed from the archive files in bounded buffers.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::header::{
    ACCEPT_RANGES, ALLOW, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, LINK, RANGE,
    WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;

use super::body::{Budget, pieces};
use super::catalog::{Catalog, Repository};
use super::htpasswd::Htpasswd;
use super::range::{Span, span};
use super::route::{ManifestRef, Page, Route, Unroutable, route};
use crate::digest::Digest;
use crate::manifest::OCI_INDEX;
use crate::segment::BlobSource;

/// A response body: small ones whole, blobs streamed.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// The most entries a listing returns in one page when the client sets no `n`.
const PAGE_LIMIT: usize = 10_000;

/// What every request is answered from.
pub struct Shared {
    /// The served repositories.
    pub catalog: Catalog,
    /// Who may log in, when logins are required.
    pub htpasswd: Option<Htpasswd>,
    /// Blob bytes read and not yet sent, for all clients together.
    pub budget: Budget,
}

/// A response, and what the access log says of it.
pub struct Answer {
    /// The response.
    pub response: Response<Body>,
    /// The user who logged in.
    pub user: Option<String>,
    /// The body's length.
    pub bytes: u64,
}

/// Answers one request.
pub async fn answer(
    shared: Arc<Shared>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Answer {
    let mut user = None;
    if shared.htpasswd.is_some() {
        let header = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let checker = shared.clone();
        // bcrypt is slow on purpose: off the threads that move bytes.
        user = tokio::task::spawn_blocking(move || {
            checker
                .htpasswd
                .as_ref()
                .and_then(|h| h.login(header.as_deref()))
        })
        .await
        .ok()
        .flatten();
        if user.is_none() {
            let mut answer = error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            answer.response.headers_mut().insert(
                WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"ferry\""),
            );
            return answer;
        }
    }
    let mut answer = if method == Method::GET || method == Method::HEAD {
        read(&shared, path, query, headers, method == Method::HEAD)
    } else {
        let mut answer = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this registry is a bundle served read-only: push to a registry instead",
        );
        answer
            .response
            .headers_mut()
            .insert(ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        answer
    };
    answer.user = user;
    answer
}

fn read(
    shared: &Shared,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    head: bool,
) -> Answer {
    let catalog = &shared.catalog;
    let route = match route(path, query) {
        Ok(route) => route,
        Err(Unroutable::NotFound) => {
            return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint");
        }
        Err(Unroutable::BadName(reason)) => {
            return error(StatusCode::BAD_REQUEST, "NAME_INVALID", &reason);
        }
        Err(Unroutable::BadDigest(reason)) => {
            return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", &reason);
        }
        Err(Unroutable::BadReference(reason)) => {
            return error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", &reason);
        }
        Err(Unroutable::BadQuery(reason)) => {
            return error(StatusCode::BAD_REQUEST, "UNSUPPORTED", &reason);
        }
    };
    let repository = |name: &str| {
        catalog.repositories.get(name).ok_or(Refusal {
            status: StatusCode::NOT_FOUND,
            code: "NAME_UNKNOWN",
            message: "no such repository".into(),
            length: None,
        })
    };
    let result = match route {
        Route::Base => Ok(json(StatusCode::OK, "application/json", b"{}".to_vec())),
        Route::Catalog(page) => {
            let names: Vec<&String> = catalog.repositories.keys().collect();
            let (entries, next) = paginate(&names, &page);
            let body = serde_json::json!({ "repositories": entries });
            Ok(with_next(
                json(
                    StatusCode::OK,
                    "application/json",
                    body.to_string().into_bytes(),
                ),
                "/v2/_catalog",
                next,
                &page,
            ))
        }
        Route::Tags(name, page) => repository(&name).map(|repo| {
            let tags: Vec<&String> = repo.tags.keys().collect();
            let (entries, next) = paginate(&tags, &page);
            let body = serde_json::json!({ "name": name, "tags": entries });
            with_next(
                json(
                    StatusCode::OK,
                    "application/json",
                    body.to_string().into_bytes(),
                ),
                &format!("/v2/{name}/tags/list"),
                next,
                &page,
            )
        }),
        Route::Manifest(name, reference) => {
            repository(&name).and_then(|repo| manifest(repo, &reference))
        }
        Route::Blob(name, digest) => {
            repository(&name).and_then(|repo| blob(repo, &digest, headers, &shared.budget))
        }
        Route::Referrers(name, digest, filter) => {
            repository(&name).map(|repo| referrers(repo, &digest, filter.as_deref()))
        }
        Route::Upload => Err(Refusal {
            status: StatusCode::NOT_FOUND,
            code: "BLOB_UPLOAD_UNKNOWN",
            message: "this registry takes no uploads".into(),
            length: None,
        }),
    };
    let mut answer = result.unwrap_or_else(Refusal::answer);
    if head {
        answer.response = answer.response.map(|_| empty());
        answer.bytes = 0;
    }
    answer
}

fn manifest(repo: &Repository, reference: &ManifestRef) -> Result<Answer, Refusal> {
    let digest = match reference {
        ManifestRef::Tag(tag) => repo.tags.get(tag),
        ManifestRef::Digest(digest) => Some(digest),
    };
    let manifest = digest.and_then(|d| repo.manifests.get(d)).ok_or(Refusal {
        status: StatusCode::NOT_FOUND,
        code: "MANIFEST_UNKNOWN",
        message: "no such manifest".into(),
        length: None,
    })?;
    // Its type is one of `manifest::MANIFEST_TYPES` (every other is refused when the bundle
    // is read): a crafted bundle cannot make a browser render a "manifest" typed text/html.
    let media_type = manifest.media_type.as_str();
    let mut answer = json(StatusCode::OK, media_type, manifest.bytes.clone());
    content_digest(answer.response.headers_mut(), &manifest.digest);
    Ok(answer)
}

fn blob(
    repo: &Repository,
    digest: &Digest,
    headers: &HeaderMap,
    budget: &Budget,
) -> Result<Answer, Refusal> {
    // A manifest is a blob too, and some clients fetch it as one.
    let source = match (repo.blobs.get(digest), repo.manifests.get(digest)) {
        (Some(source), _) => Source::File(source.clone()),
        (None, Some(manifest)) => Source::Memory(manifest.bytes.clone()),
        (None, None) => {
            return Err(Refusal {
                status: StatusCode::NOT_FOUND,
                code: "BLOB_UNKNOWN",
                message: "no such blob".into(),
                length: None,
            });
        }
    };
    let total = source.len();
    // Two Range headers are no single range: the whole blob, as for anything else unclear.
    let mut ranges = headers.get_all(RANGE).iter();
    let range = match (ranges.next(), ranges.next()) {
        (Some(only), None) => only.to_str().ok(),
        _ => None,
    };
    let (status, start, len) = match span(range, total) {
        Span::Whole => (StatusCode::OK, 0, total),
        Span::Part { start, len } => (StatusCode::PARTIAL_CONTENT, start, len),
        Span::Unsatisfiable => {
            return Err(Refusal {
                status: StatusCode::RANGE_NOT_SATISFIABLE,
                code: "UNSUPPORTED",
                message: "the range lies past the end of the blob".into(),
                length: Some(total),
            });
        }
    };
    // A file that cannot be read after all (the bundle changed under the server) ends the
    // body early: the client sees a broken transfer, never a short blob.
    let mut response = Response::new(source.body(start, len, budget));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, header("application/octet-stream"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, header("nosniff"));
    headers.insert(CONTENT_LENGTH, header(&len.to_string()));
    headers.insert(ACCEPT_RANGES, header("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        headers.insert(
            CONTENT_RANGE,
            header(&format!("bytes {start}-{}/{total}", start + len - 1)),
        );
    }
    content_digest(headers, digest);
    Ok(Answer {
        response,
        user: None,
        bytes: len,
    })
}

/// A blob's bytes: in the archive files, or a manifest held in memory.
enum Source {
    File(BlobSource),
    Memory(Bytes),
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::File(source) => source.len(),
            Source::Memory(bytes) => bytes.len() as u64,
        }
    }

    fn body(&self, start: u64, len: u64, budget: &Budget) -> Body {
        match self {
            Source::Memory(bytes) => Full::new(bytes.slice(start as usize..(start + len) as usize))
                .map_err(|never| match never {})
                .boxed_unsync(),
            Source::File(source) => {
                let stream = pieces(source.slice(start, len), budget).map_ok(Frame::data);
                StreamBody::new(stream).boxed_unsync()
            }
        }
    }
}

fn referrers(repo: &Repository, digest: &Digest, filter: Option<&str>) -> Answer {
    let listed = repo
        .referrers
        .get(digest)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let manifests: Vec<_> = listed
        .iter()
        .filter(|d| {
            filter.is_none_or(|f| d.extra.get("artifactType").and_then(|t| t.as_str()) == Some(f))
        })
        .collect();
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut answer = json(StatusCode::OK, OCI_INDEX, body.to_string().into_bytes());
    if filter.is_some() {
        answer
            .response
            .headers_mut()
            .insert("OCI-Filters-Applied", header("artifactType"));
    }
    answer
}

/// The entries of a sorted listing after `page.last`, at most `page.n` of them, and the last
/// one shown when more follow.
fn paginate<'a>(sorted: &[&'a String], page: &Page) -> (Vec<&'a String>, Option<&'a String>) {
    let start = page
        .last
        .as_ref()
        .map_or(0, |last| sorted.partition_point(|entry| *entry <= last));
    let limit = page.n.unwrap_or(PAGE_LIMIT).min(PAGE_LIMIT);
    let rest = &sorted[start..];
    let shown: Vec<&String> = rest.iter().take(limit).copied().collect();
    let next = (rest.len() > limit && limit > 0).then(|| *shown.last().expect("limit > 0"));
    (shown, next)
}

/// Adds the `Link` header that points at the next page.
fn with_next(mut answer: Answer, path: &str, next: Option<&String>, page: &Page) -> Answer {
    if let Some(last) = next {
        let n = page.n.unwrap_or(PAGE_LIMIT).min(PAGE_LIMIT);
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("last", last)
            .append_pair("n", &n.to_string())
            .finish();
        answer
            .response
            .headers_mut()
            .insert(LINK, header(&format!("<{path}?{query}>; rel=\"next\"")));
    }
    answer
}

/// A request that gets an error instead of content.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: std::borrow::Cow<'static, str>,
    /// For a range past the end: the blob's length, sent as `Content-Range: bytes */LEN`.
    length: Option<u64>,
}

impl Refusal {
    fn answer(self) -> Answer {
        let mut answer = error(self.status, self.code, &self.message);
        if let Some(length) = self.length {
            answer
                .response
                .headers_mut()
                .insert(CONTENT_RANGE, header(&format!("bytes */{length}")));
        }
        answer
    }
}

/// An error in the spec's form: `{"errors":[{"code","message"}]}`.
fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    let body = serde_json::json!({
        "errors": [{ "code": code, "message": message, "detail": null }]
    });
    json(status, "application/json", body.to_string().into_bytes())
}

fn json(status: StatusCode, media_type: &str, bytes: impl Into<Bytes>) -> Answer {
    let bytes: Bytes = bytes.into();
    let len = bytes.len() as u64;
    let mut response = Response::new(
        Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        http::HeaderValue::from_str(media_type)
            .unwrap_or_else(|_| http::HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(CONTENT_LENGTH, header(&len.to_string()));
    headers.insert(X_CONTENT_TYPE_OPTIONS, header("nosniff"));
    Answer {
        response,
        user: None,
        bytes: len,
    }
}

fn content_digest(headers: &mut HeaderMap, digest: &Digest) {
    headers.insert("Docker-Content-Digest", header(&digest.to_string()));
    headers.insert(ETAG, header(&format!("\"{digest}\"")));
}

fn header(text: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(text).expect("built from printable text")
}

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_last_and_n() {
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let sorted: Vec<&String> = names.iter().collect();
        let page = |n: Option<usize>, last: Option<&str>| Page {
            n,
            last: last.map(str::to_string),
        };
        let (shown, next) = paginate(&sorted, &page(Some(2), None));
        assert_eq!(shown, vec!["a", "b"]);
        assert_eq!(next.map(String::as_str), Some("b"));
        let (shown, next) = paginate(&sorted, &page(Some(2), Some("b")));
        assert_eq!(shown, vec!["c", "d"]);
        assert_eq!(next, None);
        let (shown, _) = paginate(&sorted, &page(None, Some("bb")));
        assert_eq!(shown, vec!["c", "d"]);
        let (shown, next) = paginate(&sorted, &page(Some(0), None));
        assert!(shown.is_empty() && next.is_none());
    }
}
