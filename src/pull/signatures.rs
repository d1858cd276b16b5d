//! `--verify-signatures`: every image of the plan held to the policy before any of its layers
//! is fetched. Its signatures are found among the referrers the plan already carries (the
//! policy turns `--include-referrers` on), their small payloads read from the source, and the
//! verdict taken by [`crate::trust`]. A refused image leaves the plan with everything that
//! refers to it; the pull then fails naming each, or with `--skip-unsigned` goes on without
//! them and says so.

use std::collections::{BTreeSet, HashMap};

use futures_util::{StreamExt, TryStreamExt};

use super::error::PullError;
use super::options::PullOptions;
use crate::bundle::PolicyRecord;
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::referrer_tags::subject_of;
use crate::registry::{RegistryClient, RegistryError};
use crate::report::Reporter;
use crate::source::{Plan, PlannedImage};
use crate::trust::{
    Checker, DockerReference, ImageSignature, Manifests, PAYLOAD_LIMIT, Policy, REWRITTEN_INDEX,
    SignatureLayer, Verdict, signature_layers,
};

/// Holds the plan's images to `policy`: refused ones are left out (and the pull fails unless
/// `--skip-unsigned`). Returns what `bundle.json` records of the policy.
pub async fn hold_to_policy(
    options: &PullOptions,
    policy: &Policy,
    plan: &mut Plan,
    reporter: &dyn Reporter,
) -> Result<PolicyRecord, PullError> {
    // Where each image's signatures are, from the manifests the plan holds.
    type Name = Result<Option<DockerReference>, String>;
    let mut subjects: Vec<(usize, Name, Vec<SignatureLayer>)> = Vec::new();
    for (at, image) in plan.images.iter().enumerate() {
        if subject_of(&image.tag).is_some() {
            continue;
        }
        // A Helm chart read over HTTP has no registry, and no docker name.
        let reference = match image.registry.is_empty() {
            true => Ok(None),
            false => DockerReference::parse(&image.source).map(Some),
        };
        let layers = signature_layers(&image.digest, &InPlan { plan, image });
        subjects.push((at, reference, layers));
    }
    // Their payloads, small, fetched together, each once.
    let mut wanted: HashMap<Digest, (usize, u64)> = HashMap::new();
    for (at, _, layers) in &subjects {
        for layer in layers {
            wanted
                .entry(layer.payload.clone())
                .or_insert((*at, layer.size));
        }
    }
    // One client per registry: its tokens serve every payload there.
    let mut clients: HashMap<&str, RegistryClient> = HashMap::new();
    for (at, _) in wanted.values() {
        let image = &plan.images[*at];
        if !clients.contains_key(image.registry.as_str()) {
            let client = options.access.client(&image.registry, &image.repository)?;
            clients.insert(&image.registry, client);
        }
    }
    let payloads: HashMap<Digest, Option<Vec<u8>>> =
        futures_util::stream::iter(wanted.iter().map(|(digest, (at, size))| {
            let image = &plan.images[*at];
            let client = &clients[image.registry.as_str()];
            async move {
                let bytes = payload(client, &image.repository, digest, *size).await?;
                Ok::<_, PullError>((digest.clone(), bytes))
            }
        }))
        .buffer_unordered(options.concurrency.max(1))
        .try_collect()
        .await?;
    let checker = Checker::new(policy);
    let mut refused: Vec<(usize, String)> = Vec::new();
    let mut accepted = 0;
    for (at, reference, layers) in subjects {
        let image = &plan.images[at];
        let reference = match reference {
            Ok(reference) => reference,
            Err(reason) => {
                refused.push((at, reason));
                continue;
            }
        };
        if image.source_digest.is_some() {
            refused.push((at, REWRITTEN_INDEX.into()));
            continue;
        }
        let signatures: Vec<ImageSignature> = layers
            .into_iter()
            .filter_map(|layer| {
                let bytes = payloads.get(&layer.payload)?.as_ref()?;
                Some(ImageSignature {
                    payload: bytes.clone(),
                    signature: layer.signature,
                    found: layer.found,
                })
            })
            .collect();
        match checker.check(reference.as_ref(), &image.digest, &signatures)? {
            Verdict::Accepted(_) => accepted += 1,
            Verdict::Refused(reason) => refused.push((at, reason)),
        }
    }
    let lines: Vec<String> = refused
        .iter()
        .map(|(at, reason)| format!("{}: {reason}", plan.images[*at].source))
        .collect();
    if !lines.is_empty() && !options.skip_unsigned {
        return Err(PullError::Refused {
            policy: policy.file.clone(),
            refused: lines,
        });
    }
    for line in &lines {
        reporter.warn(&format!("left out (--skip-unsigned): {line}"));
    }
    let gone: BTreeSet<usize> = refused.iter().map(|(at, _)| *at).collect();
    leave_out(plan, &gone);
    Ok(policy.record(accepted))
}

/// The manifests of the plan beside one image: its path's tags, and every manifest by digest.
struct InPlan<'a> {
    plan: &'a Plan,
    image: &'a PlannedImage,
}

impl Manifests for InPlan<'_> {
    fn tagged(&self, tag: &str) -> Option<Manifest> {
        let tagged = self
            .plan
            .images
            .iter()
            .find(|i| i.path == self.image.path && i.tag == tag)?;
        self.plan.manifests.get(&tagged.digest).cloned()
    }

    fn by_digest(&self, digest: &Digest) -> Option<Manifest> {
        self.plan.manifests.get(digest).cloned()
    }
}

/// A payload blob from the image's repository, checked against its digest; `None` when the
/// source does not have it or it is not what the digest says (the signature then does not
/// count).
async fn payload(
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
    size: u64,
) -> Result<Option<Vec<u8>>, PullError> {
    if size > PAYLOAD_LIMIT {
        return Ok(None);
    }
    let mut stream = match client.blob_stream(repository, digest).await {
        Ok(stream) => Box::pin(stream),
        Err(RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::Unreachable {
            target: client.target(Some(repository)),
            detail: format!("reading signature payload {digest}: {e}"),
        })?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > size {
            return Ok(None);
        }
    }
    Ok((Digest::of(&bytes) == *digest).then_some(bytes))
}

/// Removes the images at `gone` from the plan, with every tag that refers to one of their
/// manifests (and what refers to those), unless an image kept at the same path needs that
/// manifest too; then the manifests and blobs nothing needs any more.
fn leave_out(plan: &mut Plan, gone: &BTreeSet<usize>) {
    if gone.is_empty() {
        return;
    }
    let mut removed: Vec<PlannedImage> = Vec::new();
    let mut kept: Vec<PlannedImage> = Vec::new();
    for (at, image) in std::mem::take(&mut plan.images).into_iter().enumerate() {
        if gone.contains(&at) {
            removed.push(image);
        } else {
            kept.push(image);
        }
    }
    loop {
        let dropped: BTreeSet<(String, Digest)> = removed
            .iter()
            .flat_map(|i| i.parts.keys().map(move |d| (i.path.clone(), d.clone())))
            .filter(|(path, digest)| {
                !kept.iter().any(|k| {
                    k.path == *path
                        && subject_of(&k.tag).is_none()
                        && (k.digest == *digest || k.parts.contains_key(digest))
                })
            })
            .collect();
        let (refer, stay): (Vec<PlannedImage>, Vec<PlannedImage>) =
            kept.into_iter().partition(|k| {
                subject_of(&k.tag).is_some_and(|s| dropped.contains(&(k.path.clone(), s)))
            });
        kept = stay;
        if refer.is_empty() {
            break;
        }
        removed.extend(refer);
    }
    plan.images = kept;
    let needed: BTreeSet<&Digest> = plan.images.iter().flat_map(|i| i.parts.keys()).collect();
    plan.manifests.retain(|d, _| needed.contains(d));
    plan.held.retain(|d, _| needed.contains(d));
    plan.web_blobs.retain(|d, _| needed.contains(d));
    plan.left_out.retain(|d, _| needed.contains(d));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::referrer_tags::schema_tag;

    fn digest(name: &str) -> Digest {
        Digest::of(name.as_bytes())
    }

    fn image(path: &str, tag: &str, root: &str, parts: &[&str]) -> PlannedImage {
        PlannedImage {
            archive: "a.tar".into(),
            path: path.into(),
            tag: tag.into(),
            source: format!("r.example/{path}:{tag}"),
            mirror: None,
            registry: "r.example".into(),
            repository: path.into(),
            digest: digest(root),
            media_type: crate::manifest::OCI_INDEX.into(),
            parts: std::iter::once(root)
                .chain(parts.iter().copied())
                .map(|p| (digest(p), 1))
                .collect(),
            source_digest: None,
        }
    }

    #[test]
    fn a_refused_image_leaves_with_what_refers_to_it_but_not_with_what_others_need() {
        let sig = |of: &str| format!("{}.sig", schema_tag(&digest(of)));
        let mut plan = Plan {
            images: vec![
                // Refused: an index with a child another tag also holds.
                image("app", "v1", "index1", &["child", "layer1"]),
                image("app", &sig("index1"), "sig-of-index1", &["payload1"]),
                image("app", &sig("child"), "sig-of-child", &["payload2"]),
                image("app", &sig("sig-of-index1"), "sig-of-sig", &["payload3"]),
                // Kept: another index with the same child.
                image("app", "v2", "index2", &["child", "layer2"]),
                // Kept: the same index at another path, and its signature there.
                image("copy", "v1", "index1", &["child", "layer1"]),
                image("copy", &sig("index1"), "sig-of-index1", &["payload1"]),
            ],
            ..Plan::default()
        };
        for name in [
            "index1",
            "index2",
            "child",
            "sig-of-index1",
            "sig-of-child",
            "sig-of-sig",
        ] {
            let manifest = Manifest {
                bytes: name.as_bytes().to_vec().into(),
                media_type: crate::manifest::OCI_MANIFEST.into(),
                digest: digest(name),
            };
            plan.manifests.insert(digest(name), manifest);
        }
        leave_out(&mut plan, &BTreeSet::from([0]));
        let left: Vec<(String, String)> = plan
            .images
            .iter()
            .map(|i| (i.path.clone(), i.tag.clone()))
            .collect();
        assert_eq!(
            left,
            [
                ("app".to_string(), sig("child")),
                ("app".to_string(), "v2".to_string()),
                ("copy".to_string(), "v1".to_string()),
                ("copy".to_string(), sig("index1")),
            ]
        );
        assert!(!plan.manifests.contains_key(&digest("sig-of-sig")));
        assert!(plan.manifests.contains_key(&digest("index1")));
    }
}
