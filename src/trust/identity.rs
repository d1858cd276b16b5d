//! Docker references as signatures and policies compare them: the fully expanded name
//! (`docker.io/library/busybox`, not `busybox`), with a tag, a digest, both or neither; and the
//! `signedIdentity` rules of containers-policy.json(5) that say which signed name an image
//! accepts.

use std::fmt;

/// A docker reference in its fully expanded form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerReference {
    /// `host[:port]/path`.
    pub name: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), if any.
    pub digest: Option<String>,
}

impl DockerReference {
    /// Parses `[host[:port]/]path[:tag][@digest]`, expanding a short name as docker does
    /// (`busybox` → `docker.io/library/busybox`).
    pub fn parse(input: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("'{input}' is not a docker reference: {why}");
        if input.is_empty() || input.contains("://") || input.chars().any(char::is_whitespace) {
            return Err(bad("expected host[:port]/path[:tag][@digest]"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let (algorithm, hex) = digest
                    .split_once(':')
                    .ok_or_else(|| bad("the digest has no algorithm"))?;
                if algorithm.is_empty() || hex.is_empty() {
                    return Err(bad("the digest is empty"));
                }
                (rest, Some(digest.to_string()))
            }
            None => (input, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if name.is_empty() || tag.as_deref() == Some("") {
            return Err(bad("an empty name or tag"));
        }
        if name.split('/').any(str::is_empty) {
            return Err(bad("an empty path component"));
        }
        Ok(DockerReference {
            name: expand(name),
            tag,
            digest,
        })
    }

    /// True when the reference names only a repository.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }
}

impl fmt::Display for DockerReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A short name made whole: the first component is a registry only when it looks like a host
/// (a dot, a port, or `localhost`).
pub fn expand(name: &str) -> String {
    let first = name.split('/').next().unwrap_or_default();
    let has_host =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_host {
        return name.to_string();
    }
    if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    }
}

/// Which signed name an image accepts (`signedIdentity` of a requirement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedIdentity {
    /// The signed name equals the image's, tag or digest included.
    MatchExact,
    /// A tagged image: the signed name equals it; an image by digest: the same repository.
    MatchRepoDigestOrExact,
    /// The same repository, whatever tag.
    MatchRepository,
    /// The signed name is exactly this one (tagged or by digest).
    ExactReference(DockerReference),
    /// The signed name is in this repository.
    ExactRepository(String),
    /// The image's name with `prefix` replaced by `signed_prefix`, then
    /// [`SignedIdentity::MatchRepoDigestOrExact`].
    RemapIdentity {
        /// What the image's name starts with.
        prefix: String,
        /// What the signature's name starts with instead.
        signed_prefix: String,
    },
}

impl SignedIdentity {
    /// The rule's name in the policy file.
    pub fn name(&self) -> &'static str {
        match self {
            SignedIdentity::MatchExact => "matchExact",
            SignedIdentity::MatchRepoDigestOrExact => "matchRepoDigestOrExact",
            SignedIdentity::MatchRepository => "matchRepository",
            SignedIdentity::ExactReference(_) => "exactReference",
            SignedIdentity::ExactRepository(_) => "exactRepository",
            SignedIdentity::RemapIdentity { .. } => "remapIdentity",
        }
    }

    /// True when an image known as `image` accepts a signature naming `signed`.
    pub fn accepts(&self, image: &DockerReference, signed: &DockerReference) -> bool {
        match self {
            SignedIdentity::MatchExact => {
                !image.is_name_only() && !signed.is_name_only() && image == signed
            }
            SignedIdentity::MatchRepoDigestOrExact => repo_digest_or_exact(image, signed),
            SignedIdentity::MatchRepository => image.name == signed.name,
            SignedIdentity::ExactReference(expected) => {
                !signed.is_name_only() && signed == expected
            }
            SignedIdentity::ExactRepository(repository) => signed.name == *repository,
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => {
                let remapped = match remap(&image.name, prefix, signed_prefix) {
                    Some(name) => DockerReference {
                        name,
                        ..image.clone()
                    },
                    None => image.clone(),
                };
                repo_digest_or_exact(&remapped, signed)
            }
        }
    }
}

/// containers/image's default rule: a signature naming only a repository never matches.
fn repo_digest_or_exact(image: &DockerReference, signed: &DockerReference) -> bool {
    if signed.is_name_only() {
        return false;
    }
    match (&image.tag, &image.digest) {
        (Some(_), _) => image == signed,
        (None, Some(_)) => image.name == signed.name,
        (None, None) => false,
    }
}

/// `name` with `prefix` (a host, namespace or repository: it ends at a `/` or at the end)
/// replaced by `signed_prefix`.
fn remap(name: &str, prefix: &str, signed_prefix: &str) -> Option<String> {
    let rest = name.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then(|| format!("{signed_prefix}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> DockerReference {
        DockerReference::parse(s).unwrap()
    }

    #[test]
    fn short_names_expand_as_docker_does() {
        assert_eq!(r("busybox").name, "docker.io/library/busybox");
        assert_eq!(r("openshift/origin:v1").name, "docker.io/openshift/origin");
        assert_eq!(r("localhost/app").name, "localhost/app");
        assert_eq!(r("127.0.0.1:5000/a/b:v1").tag.as_deref(), Some("v1"));
        assert_eq!(r("host:5000/a@sha256:ab").tag, None);
        assert!(DockerReference::parse("http://x/y").is_err());
        assert!(DockerReference::parse("x//y").is_err());
    }

    #[test]
    fn the_identity_rules_of_the_man_page() {
        let tagged = r("reg.example/app/web:v1");
        let by_digest = r("reg.example/app/web@sha256:aa");
        let cosign = r("reg.example/app/web");
        let other_tag = r("reg.example/app/web:v2");
        use SignedIdentity::*;
        assert!(MatchExact.accepts(&tagged, &tagged));
        assert!(!MatchExact.accepts(&tagged, &other_tag));
        assert!(MatchRepoDigestOrExact.accepts(&tagged, &tagged));
        assert!(!MatchRepoDigestOrExact.accepts(&tagged, &other_tag));
        assert!(MatchRepoDigestOrExact.accepts(&by_digest, &other_tag));
        // cosign names the repository only: the default rule does not take that.
        assert!(!MatchRepoDigestOrExact.accepts(&tagged, &cosign));
        assert!(!MatchRepoDigestOrExact.accepts(&by_digest, &cosign));
        assert!(MatchRepository.accepts(&tagged, &cosign));
        assert!(!MatchRepository.accepts(&r("reg.example/app/api:v1"), &cosign));
        assert!(ExactRepository("reg.example/app/web".into()).accepts(&r("mirror/x:v1"), &cosign));
        assert!(ExactReference(tagged.clone()).accepts(&r("mirror/x:v9"), &tagged));
        assert!(!ExactReference(tagged.clone()).accepts(&r("mirror/x:v9"), &cosign));
        let remap = RemapIdentity {
            prefix: "private-mirror:5000/vendor-mirror".into(),
            signed_prefix: "vendor.example.com".into(),
        };
        assert!(remap.accepts(
            &r("private-mirror:5000/vendor-mirror/productA/image1:latest"),
            &r("vendor.example.com/productA/image1:latest")
        ));
        assert!(!remap.accepts(
            &r("private-mirror:5000/vendor-mirror/productA/image1:latest"),
            &r("private-mirror:5000/vendor-mirror/productA/image1:latest")
        ));
        // A prefix ends at a path boundary.
        assert!(!remap.accepts(
            &r("private-mirror:5000/vendor-mirrorX/a:latest"),
            &r("vendor.example.comX/a:latest")
        ));
    }
}
