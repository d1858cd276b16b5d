//! What a request asks for, read from its path and query as the distribution spec lays them
//! out. Names, tags and digests are checked here, before anything looks them up: a path that
//! does not fit the grammar never reaches the catalog, let alone a file.

use crate::digest::Digest;
use crate::reference::{validate_repository, validate_tag};

/// The longest repository name served; the distribution registry allows the same.
pub const NAME_LIMIT: usize = 255;

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRef {
    /// `/manifests/v1.2.3`.
    Tag(String),
    /// `/manifests/sha256:…`.
    Digest(Digest),
}

/// One read endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog(Page),
    /// `/v2/<name>/tags/list`.
    Tags(String, Page),
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(String, ManifestRef),
    /// `/v2/<name>/blobs/<digest>`.
    Blob(String, Digest),
    /// `/v2/<name>/referrers/<digest>`, with an optional `artifactType` filter.
    Referrers(String, Digest, Option<String>),
    /// `/v2/<name>/blobs/uploads/…`: there are no uploads to ask about.
    Upload,
}

/// `n` and `last` of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// At most this many entries.
    pub n: Option<usize>,
    /// Only entries after this one.
    pub last: Option<String>,
}

/// Why a request path cannot be answered; each maps to a status and a spec error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unroutable {
    /// No endpoint has this shape.
    NotFound,
    /// The name does not fit the grammar.
    BadName(String),
    /// The digest is not `sha256:` and 64 lowercase hex characters.
    BadDigest(String),
    /// The reference is neither a tag nor a digest.
    BadReference(String),
    /// A query parameter cannot be read.
    BadQuery(String),
}

/// Reads a request's path and query.
pub fn route(path: &str, query: Option<&str>) -> Result<Route, Unroutable> {
    let Some(rest) = path.strip_prefix("/v2") else {
        return Err(Unroutable::NotFound);
    };
    if rest.is_empty() || rest == "/" {
        return Ok(Route::Base);
    }
    let rest = rest.strip_prefix('/').ok_or(Unroutable::NotFound)?;
    if rest == "_catalog" {
        return Ok(Route::Catalog(page(query)?));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if let Some(at) = parts.iter().rposition(|p| *p == "blobs")
        && parts.get(at + 1) == Some(&"uploads")
    {
        name(&parts[..at])?;
        return Ok(Route::Upload);
    }
    let n = parts.len();
    if n < 3 {
        return Err(Unroutable::NotFound);
    }
    let (kind, last) = (parts[n - 2], parts[n - 1]);
    let name = || name(&parts[..n - 2]);
    match (kind, last) {
        ("tags", "list") => Ok(Route::Tags(name()?, page(query)?)),
        ("manifests", reference) => {
            let name = name()?;
            let reference = if reference.contains(':') {
                ManifestRef::Digest(digest(reference)?)
            } else {
                validate_tag(reference).map_err(Unroutable::BadReference)?;
                ManifestRef::Tag(reference.to_string())
            };
            Ok(Route::Manifest(name, reference))
        }
        ("blobs", reference) => Ok(Route::Blob(name()?, digest(reference)?)),
        ("referrers", reference) => {
            let name = name()?;
            let filter = parameters(query)?
                .into_iter()
                .find(|(key, _)| key == "artifactType")
                .map(|(_, value)| value);
            Ok(Route::Referrers(name, digest(reference)?, filter))
        }
        _ => Err(Unroutable::NotFound),
    }
}

fn name(parts: &[&str]) -> Result<String, Unroutable> {
    let name = parts.join("/");
    if name.len() > NAME_LIMIT {
        return Err(Unroutable::BadName(format!(
            "a repository name has at most {NAME_LIMIT} characters"
        )));
    }
    validate_repository(&name).map_err(Unroutable::BadName)?;
    Ok(name)
}

fn digest(text: &str) -> Result<Digest, Unroutable> {
    text.parse()
        .map_err(|e: crate::digest::DigestParseError| Unroutable::BadDigest(e.to_string()))
}

fn parameters(query: Option<&str>) -> Result<Vec<(String, String)>, Unroutable> {
    let query = query.unwrap_or_default();
    Ok(url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

fn page(query: Option<&str>) -> Result<Page, Unroutable> {
    let mut page = Page::default();
    for (key, value) in parameters(query)? {
        match key.as_str() {
            "n" => {
                page.n = Some(
                    value
                        .parse()
                        .map_err(|_| Unroutable::BadQuery(format!("n={value} is not a count")))?,
                )
            }
            "last" => page.last = Some(value),
            _ => {}
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_text() -> String {
        Digest::of(b"x").to_string()
    }

    #[test]
    fn the_endpoints_of_the_spec_are_read() {
        assert_eq!(route("/v2/", None), Ok(Route::Base));
        assert_eq!(route("/v2", None), Ok(Route::Base));
        assert_eq!(
            route("/v2/_catalog", Some("n=2&last=a")),
            Ok(Route::Catalog(Page {
                n: Some(2),
                last: Some("a".into())
            }))
        );
        assert_eq!(
            route("/v2/a/b/tags/list", None),
            Ok(Route::Tags("a/b".into(), Page::default()))
        );
        assert_eq!(
            route("/v2/a/manifests/v1.0", None),
            Ok(Route::Manifest("a".into(), ManifestRef::Tag("v1.0".into())))
        );
        let d = digest_text();
        assert_eq!(
            route(&format!("/v2/a/manifests/{d}"), None),
            Ok(Route::Manifest(
                "a".into(),
                ManifestRef::Digest(d.parse().unwrap())
            ))
        );
        assert_eq!(
            route(&format!("/v2/x/blobs/{d}"), None),
            Ok(Route::Blob("x".into(), d.parse().unwrap()))
        );
        assert_eq!(
            route(
                &format!("/v2/x/referrers/{d}"),
                Some("artifactType=application%2Fx-sbom%2Bjson")
            ),
            Ok(Route::Referrers(
                "x".into(),
                d.parse().unwrap(),
                Some("application/x-sbom+json".into())
            ))
        );
        assert_eq!(route("/v2/x/blobs/uploads/", None), Ok(Route::Upload));
        // A repository may itself be called "tags" or "blobs".
        assert_eq!(
            route("/v2/tags/tags/list", None),
            Ok(Route::Tags("tags".into(), Page::default()))
        );
    }

    #[test]
    fn crafted_paths_are_refused_before_any_lookup() {
        let d = digest_text();
        for bad in [
            format!("/v2/../etc/blobs/{d}"),
            format!("/v2/%2e%2e/x/blobs/{d}"),
            format!("/v2/a//b/blobs/{d}"),
            format!("/v2/UPPER/blobs/{d}"),
            format!("/v2/{}/blobs/{d}", "a".repeat(300)),
            "/v2/a%2fb/tags/list".to_string(),
        ] {
            assert!(
                matches!(route(&bad, None), Err(Unroutable::BadName(_))),
                "{bad}: {:?}",
                route(&bad, None)
            );
        }
        for bad in [
            "/v2/a/blobs/sha256:abc",
            "/v2/a/blobs/md5:0123",
            "/v2/a/blobs/..",
            "/v2/a/manifests/sha256:..%2f..%2fx",
        ] {
            assert!(
                matches!(
                    route(bad, None),
                    Err(Unroutable::BadDigest(_) | Unroutable::BadReference(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(route("/v1/x", None), Err(Unroutable::NotFound));
        assert_eq!(route("/v2/x", None), Err(Unroutable::NotFound));
        assert_eq!(route("/v2/x/other/y", None), Err(Unroutable::NotFound));
        assert!(matches!(
            route("/v2/_catalog", Some("n=lots")),
            Err(Unroutable::BadQuery(_))
        ));
    }
}
