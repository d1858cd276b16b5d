//! An image's graph: from its root manifest or index, every child manifest (children before
//! their parents, the order a registry accepts them in) and every config and layer, each once
//! in each role it plays, whatever the media types; with limits on depth, count and sizes.

use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest, ManifestError};

/// Everything an image needs, as found by [`walk`].
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Every manifest and index, children before their parents, each once: the order in which
    /// a registry accepts them.
    pub manifests: Vec<Manifest>,
    /// Every config and layer, each once, in the order first met; a layer that names a
    /// manifest's bytes is here too, as well as among `manifests`.
    pub blobs: Vec<Descriptor>,
    /// Manifests that some manifest names as its `subject`. They are not part of the image;
    /// callers decide whether to follow them.
    pub subjects: Vec<Descriptor>,
}

impl Graph {
    /// Total bytes of the image: every manifest and blob, each digest counted once (a layer
    /// that is also a manifest of the graph is one file in a layout).
    pub fn total_bytes(&self) -> u64 {
        let manifests: std::collections::HashSet<&Digest> =
            self.manifests.iter().map(|m| &m.digest).collect();
        self.manifests
            .iter()
            .map(|m| m.bytes.len() as u64)
            .chain(
                self.blobs
                    .iter()
                    .filter(|b| !manifests.contains(&b.digest))
                    .map(|b| b.size),
            )
            .fold(0, u64::saturating_add)
    }
}

/// Deepest nesting of indexes a graph may have (an index of images is depth 2).
pub const MAX_DEPTH: usize = 8;
/// Most manifests one graph may have.
pub const MAX_MANIFESTS: usize = 10_000;
/// Largest size a descriptor may claim (1 TiB): beyond it, sums could overflow and no real
/// blob is that big.
pub const MAX_BLOB_SIZE: u64 = 1 << 40;

/// Walks an image graph from its root: index → manifests → config and layers, whatever the
/// media types. `fetch` reads a child manifest by descriptor from wherever the image lives.
/// Graphs deeper than [`MAX_DEPTH`], with more than [`MAX_MANIFESTS`] manifests, or with a size
/// over [`MAX_BLOB_SIZE`] are refused.
pub async fn walk<E>(
    root: Manifest,
    mut fetch: impl AsyncFnMut(&Descriptor) -> Result<Manifest, E>,
) -> Result<Graph, E>
where
    E: From<ManifestError>,
{
    let mut graph = Graph::default();
    // One set per role: a digest named as a layer and as a manifest is needed both ways (the
    // registry takes it as a blob of the repository and as a manifest), so meeting it in one
    // role must not hide it in the other.
    let mut seen_blobs = std::collections::HashSet::new();
    let mut seen_manifests = std::collections::HashSet::new();
    let root_digest = root.digest.clone();
    let too_big = |reason: String| ManifestError::TooBig {
        digest: root_digest.clone(),
        reason,
    };
    // Depth-first with an explicit stack: (manifest, its depth, children already pushed).
    let mut stack = vec![(root, 1usize, false)];
    seen_manifests.insert(stack[0].0.digest.clone());
    let mut manifests = 1usize;
    while let Some((manifest, depth, expanded)) = stack.pop() {
        if expanded {
            graph.manifests.push(manifest);
            continue;
        }
        let refs = manifest.references()?;
        if let Some(huge) = refs
            .manifests
            .iter()
            .chain(&refs.blobs)
            .find(|d| d.size > MAX_BLOB_SIZE)
        {
            return Err(too_big(format!("{} claims {} bytes", huge.digest, huge.size)).into());
        }
        if !refs.manifests.is_empty() && depth >= MAX_DEPTH {
            return Err(too_big(format!("indexes nest deeper than {MAX_DEPTH}")).into());
        }
        manifests += refs.manifests.len();
        if manifests > MAX_MANIFESTS {
            return Err(too_big(format!("more than {MAX_MANIFESTS} manifests")).into());
        }
        let children = refs.manifests.clone();
        for blob in refs.blobs {
            if seen_blobs.insert(blob.digest.clone()) {
                graph.blobs.push(blob);
            }
        }
        if let Some(subject) = refs.subject
            && !graph.subjects.contains(&subject)
        {
            graph.subjects.push(subject);
        }
        let parent = manifest.digest.clone();
        stack.push((manifest, depth, true));
        for child in children.iter().rev() {
            if seen_manifests.insert(child.digest.clone()) {
                let fetched = fetch(child).await?;
                // What a parent names is what it gets: the same digest and the same size.
                if fetched.digest != child.digest || fetched.bytes.len() as u64 != child.size {
                    return Err(ManifestError::Invalid {
                        digest: child.digest.clone(),
                        reason: format!(
                            "it is {} bytes ({}), its parent {} says {} bytes",
                            fetched.bytes.len(),
                            fetched.digest,
                            parent,
                            child.size
                        ),
                    }
                    .into());
                }
                stack.push((fetched, depth + 1, false));
            }
        }
    }
    // Graphs are held by the thousand (one per tag of a bundle): no spare room in them.
    graph.manifests.shrink_to_fit();
    graph.blobs.shrink_to_fit();
    graph.subjects.shrink_to_fit();
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{OCI_INDEX, OCI_MANIFEST};

    const CONFIG: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const LAYER: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// A manifest of the test graph from its JSON.
    fn parsed(json: serde_json::Value) -> Manifest {
        Manifest::from_bytes(serde_json::to_vec(&json).unwrap(), None).unwrap()
    }

    /// The descriptor of `m` with `media_type`.
    fn naming(m: &Manifest, media_type: &str) -> serde_json::Value {
        serde_json::json!({
            "mediaType": media_type, "digest": m.digest.to_string(), "size": m.bytes.len(),
        })
    }

    #[test]
    fn a_layer_that_is_also_a_manifest_is_kept_in_both_roles() {
        const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
        let config = serde_json::json!({"mediaType": "a/b", "digest": CONFIG, "size": 2});
        let layer = serde_json::json!({"mediaType": TAR, "digest": LAYER, "size": 0});
        let image = |layers: Vec<serde_json::Value>| {
            parsed(serde_json::json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers,
            }))
        };
        let index = |children: Vec<serde_json::Value>| {
            parsed(serde_json::json!({
                "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children,
            }))
        };
        // The first image names as layers the second image and the nested index holding it:
        // the walk meets the nested index as a manifest first (the root names it) and the
        // second image as a layer first (before the nested index is opened).
        let second = image(vec![layer.clone()]);
        let nested = index(vec![naming(&second, OCI_MANIFEST)]);
        let first = image(vec![layer, naming(&second, TAR), naming(&nested, TAR)]);
        let root = index(vec![
            naming(&first, OCI_MANIFEST),
            naming(&nested, OCI_INDEX),
        ]);
        let known = [first.clone(), second.clone(), nested.clone()];
        let graph = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(walk(root.clone(), async |d: &Descriptor| {
                Ok::<_, ManifestError>(known.iter().find(|m| m.digest == d.digest).unwrap().clone())
            }))
            .unwrap();
        let digests = |list: Vec<&Digest>| -> Vec<String> {
            list.into_iter().map(Digest::to_string).collect()
        };
        assert_eq!(
            digests(graph.manifests.iter().map(|m| &m.digest).collect()),
            digests(vec![
                &first.digest,
                &second.digest,
                &nested.digest,
                &root.digest
            ]),
            "every manifest, children before parents"
        );
        assert_eq!(
            digests(graph.blobs.iter().map(|b| &b.digest).collect()),
            [
                CONFIG,
                LAYER,
                &second.digest.to_string(),
                &nested.digest.to_string()
            ],
            "every blob once, manifests named as layers too"
        );
        let manifest_bytes: usize = known.iter().chain([&root]).map(|m| m.bytes.len()).sum();
        assert_eq!(
            graph.total_bytes(),
            manifest_bytes as u64 + 2,
            "each digest counted once"
        );
    }
}
