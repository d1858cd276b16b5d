//! Image lists: references separated by whitespace or lines, `#` comments, short names
//! normalised as docker does (`nginx` → `docker.io/library/nginx:latest`), `@sha256:` pins kept.
//! It fits the output of `kubectl get pods -A -o jsonpath='{..image}'`.

use crate::digest::Digest;
use crate::reference::Reference;

/// The archive an image list goes to.
pub const LIST_ARCHIVE: &str = "images-list.tar";

/// One image of a list, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedImage {
    /// `host[:port]`.
    pub registry: String,
    /// The repository on it.
    pub repository: String,
    /// The tag (`latest` when neither tag nor digest was written).
    pub tag: Option<String>,
    /// The pinned digest.
    pub digest: Option<Digest>,
}

impl ListedImage {
    /// Its path in the bundle: the registry host first (`:` of a port written `_`), so images
    /// of different registries never collide: `docker.io/library/nginx`.
    pub fn bundle_path(&self) -> String {
        format!("{}/{}", self.registry.replace(':', "_"), self.repository)
    }

    /// Its tag in the bundle: the tag, else the digest's hex.
    pub fn bundle_tag(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => tag.clone(),
            (None, Some(digest)) => digest.hex().to_string(),
            (None, None) => "latest".into(),
        }
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn reference(&self) -> String {
        match &self.digest {
            Some(digest) => digest.to_string(),
            None => self.bundle_tag(),
        }
    }
}

/// Parses a list; every bad reference is named with its line.
pub fn parse_list(text: &str) -> Result<Vec<ListedImage>, String> {
    let mut images = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        for word in line.split_whitespace() {
            let image = normalise(word).map_err(|e| format!("line {}: {e}", number + 1))?;
            if !images.contains(&image) {
                images.push(image);
            }
        }
    }
    Ok(images)
}

/// `nginx` → `docker.io/library/nginx:latest`, `user/app` → `docker.io/user/app:latest`; a
/// first component with a dot, a colon or `localhost` is a registry host.
pub fn normalise(input: &str) -> Result<ListedImage, String> {
    let (first, _) = input.split_once('/').unwrap_or((input, ""));
    let has_host =
        input.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_host {
        input.to_string()
    } else if input.contains('/') {
        format!("docker.io/{input}")
    } else {
        format!("docker.io/library/{input}")
    };
    let reference = Reference::parse(&full).map_err(|e| e.to_string())?;
    let tag = match (&reference.tag, &reference.digest) {
        (None, None) => Some("latest".to_string()),
        (tag, _) => tag.clone(),
    };
    Ok(ListedImage {
        registry: reference.registry,
        repository: reference.repository,
        tag,
        digest: reference.digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_normalised_as_docker_does() {
        let n = normalise("nginx").unwrap();
        assert_eq!(
            (n.registry.as_str(), n.repository.as_str(), n.tag.as_deref()),
            ("docker.io", "library/nginx", Some("latest"))
        );
        assert_eq!(n.bundle_path(), "docker.io/library/nginx");
        let u = normalise("user/app:1.2").unwrap();
        assert_eq!(u.bundle_path(), "docker.io/user/app");
        assert_eq!(u.bundle_tag(), "1.2");
        let l = normalise("127.0.0.1:5000/team/tool:v3").unwrap();
        assert_eq!(l.bundle_path(), "127.0.0.1_5000/team/tool");
        let digest = format!("sha256:{}", "a".repeat(64));
        let p = normalise(&format!("quay.io/x/y@{digest}")).unwrap();
        assert_eq!((p.tag.clone(), p.bundle_tag()), (None, "a".repeat(64)));
        assert_eq!(p.reference(), digest);
    }

    #[test]
    fn lists_take_lines_spaces_and_comments() {
        let text = "# what the cluster runs\nnginx redis:7  # cache\n\n  quay.io/a/b:1\nnginx\n";
        let images = parse_list(text).unwrap();
        let paths: Vec<String> = images.iter().map(ListedImage::bundle_path).collect();
        assert_eq!(
            paths,
            [
                "docker.io/library/nginx",
                "docker.io/library/redis",
                "quay.io/a/b"
            ]
        );
        let err = parse_list("ok:1\nBad/Name\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
    }
}
