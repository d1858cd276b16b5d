//! `--include-referrers`: the signatures, SBOMs and attestations of the manifests a pull takes,
//! found as a client finds them: the referrers tag schema (`<repo>:sha256-<hex>`, an index of
//! the manifests whose `subject` is that digest), else the OCI 1.1 referrers API, plus cosign's
//! `sha256-<hex>.sig`, `.att` and `.sbom` tags. What is found is searched again (a signature of
//! an SBOM), a few levels deep.
//!
//! In the bundle the referrers of a manifest always travel in tag-schema form: the source's
//! index when it has one, else one made from the API's answer (entries sorted by digest, so the
//! same referrers give the same bytes). Push can then keep the schema current at any target.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures_util::{StreamExt, TryStreamExt};

use super::manifest_cache::ManifestCache;
use super::plan::Plan;
use super::sizing::{Want, plan_images};
use super::{SourceError, Take};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest, OCI_INDEX};
use crate::referrer_tags::{COSIGN_SUFFIXES, schema_tag};
use crate::registry::{RegistryClient, RegistryError};

/// Referrers of referrers are followed this many levels down.
const MAX_LEVELS: usize = 4;

/// A manifest whose referrers are looked for, and where its images live.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Subject {
    archive: String,
    path: String,
    repo: String,
    digest: Digest,
}

/// Adds to `plan` the referrers of every manifest of the images `referring` asks them for.
pub(crate) async fn add_referrers(
    client: &RegistryClient,
    plan: &mut Plan,
    referring: &[Want],
    concurrency: usize,
) -> Result<(), SourceError> {
    let mut frontier: BTreeSet<Subject> = BTreeSet::new();
    for want in referring {
        let Some(image) = plan
            .images
            .iter()
            .find(|i| i.path == want.path && i.tag == want.tag)
        else {
            continue;
        };
        // An index --platform rewrote is not at the source, and nothing there refers to it.
        let rewritten = image.source_digest.as_ref().map(|_| &image.digest);
        for digest in image
            .parts
            .keys()
            .filter(|d| plan.manifests.contains_key(d) && Some(*d) != rewritten)
        {
            frontier.insert(Subject {
                archive: image.archive.clone(),
                path: image.path.clone(),
                repo: image.repository.clone(),
                digest: digest.clone(),
            });
        }
    }
    let mut tags: HashMap<String, HashSet<String>> = HashMap::new();
    let mut api: Option<bool> = None;
    // Per bundle path: one source repository may go to two paths, each needing its referrers.
    let mut visited: HashSet<(String, String, Digest)> = HashSet::new();
    for _ in 0..MAX_LEVELS {
        frontier.retain(|s| visited.insert((s.archive.clone(), s.path.clone(), s.digest.clone())));
        if frontier.is_empty() {
            break;
        }
        for subject in &frontier {
            if !tags.contains_key(&subject.repo) {
                let listed = match client.list_tags(&subject.repo).await {
                    Ok(listed) => listed,
                    // A registry may let images be read but not listed: then only its
                    // referrers API can tell.
                    Err(e @ (RegistryError::Denied { .. } | RegistryError::NotFound { .. })) => {
                        plan.warnings.push(format!(
                            "the tags of {}/{} cannot be listed ({e}): referrers there are \
                             found only through the referrers API, cosign's tags not at all",
                            client.registry(),
                            subject.repo
                        ));
                        Vec::new()
                    }
                    Err(e) => return Err(e.into()),
                };
                tags.insert(subject.repo.clone(), listed.into_iter().collect());
            }
        }
        // The API is asked only for subjects the tag schema says nothing about.
        let unlisted: Vec<&Subject> = frontier
            .iter()
            .filter(|s| !tags[&s.repo].contains(&schema_tag(&s.digest)))
            .collect();
        if api.is_none()
            && let Some(first) = unlisted.first()
        {
            api = Some(
                client
                    .referrers(&first.repo, &first.digest)
                    .await?
                    .is_some(),
            );
        }
        let mut made: HashMap<(String, String), Manifest> = HashMap::new();
        if api == Some(true) {
            let answers: Vec<(&Subject, Option<Vec<Descriptor>>)> =
                futures_util::stream::iter(unlisted.iter().map(|s| async move {
                    Ok::<_, RegistryError>((*s, client.referrers(&s.repo, &s.digest).await?))
                }))
                .buffer_unordered(concurrency.max(1))
                .try_collect()
                .await?;
            for (subject, found) in answers {
                if let Some(index) = found.filter(|f| !f.is_empty()).map(schema_index) {
                    made.insert((subject.repo.clone(), schema_tag(&subject.digest)), index);
                }
            }
        }
        let mut wants = Vec::new();
        for subject in &frontier {
            let listed = &tags[&subject.repo];
            let schema = schema_tag(&subject.digest);
            let mut names = Vec::new();
            if listed.contains(&schema)
                || made.contains_key(&(subject.repo.clone(), schema.clone()))
            {
                names.push(schema.clone());
            }
            for suffix in COSIGN_SUFFIXES {
                let tag = format!("{schema}.{suffix}");
                if listed.contains(&tag) {
                    names.push(tag);
                }
            }
            for tag in names {
                let taken = plan
                    .images
                    .iter()
                    .any(|i| i.path == subject.path && i.tag == tag)
                    || wants
                        .iter()
                        .any(|(w, _): &(Want, Subject)| w.path == subject.path && w.tag == tag);
                if taken {
                    continue;
                }
                wants.push((
                    Want {
                        archive: subject.archive.clone(),
                        path: subject.path.clone(),
                        tag: tag.clone(),
                        repo: subject.repo.clone(),
                        reference: tag,
                        take: Take::default(),
                    },
                    subject.clone(),
                ));
            }
        }
        let found = fetch_each(client, wants, &made, concurrency).await?;
        let mut next = BTreeSet::new();
        for (subject, result) in found {
            let mut part = match result {
                Ok(part) => part,
                Err(reason) => {
                    plan.warnings.push(format!(
                        "a referrer of {}/{}@{} is left out: {reason}",
                        client.registry(),
                        subject.repo,
                        subject.digest
                    ));
                    continue;
                }
            };
            for image in &mut part.images {
                if made.contains_key(&(image.repository.clone(), image.tag.clone())) {
                    image.source = format!(
                        "{}/{} referrers of {}",
                        client.registry(),
                        image.repository,
                        subject.digest
                    );
                }
                for digest in image
                    .parts
                    .keys()
                    .filter(|d| part.manifests.contains_key(d))
                {
                    next.insert(Subject {
                        digest: digest.clone(),
                        ..subject.clone()
                    });
                }
            }
            plan.merge(part).map_err(SourceError::Usage)?;
        }
        frontier = next;
    }
    Ok(())
}

/// Each referrer tag planned on its own: one that the source lists but cannot serve (a
/// signature deleted under its index) is reported, not fatal.
async fn fetch_each(
    client: &RegistryClient,
    wants: Vec<(Want, Subject)>,
    made: &HashMap<(String, String), Manifest>,
    concurrency: usize,
) -> Result<Vec<(Subject, Result<Plan, String>)>, SourceError> {
    futures_util::stream::iter(wants.into_iter().map(|(want, subject)| async move {
        let key = (want.repo.clone(), want.reference.clone());
        let known = ManifestCache::with(
            made.get(&key)
                .map(|m| (key.clone(), m.clone()))
                .into_iter()
                .collect(),
        );
        match plan_images(client, vec![want], known, Vec::new(), 1).await {
            Ok(part) => Ok((subject, Ok(part))),
            Err(SourceError::Registry(RegistryError::NotFound { .. })) => Ok((
                subject,
                Err("the source lists it but no longer has it (or a manifest it names)".into()),
            )),
            Err(other) => Err(other),
        }
    }))
    .buffer_unordered(concurrency.max(1))
    .try_collect()
    .await
}

/// A tag-schema index of `referrers`, sorted by digest: the same referrers, the same bytes.
fn schema_index(mut referrers: Vec<Descriptor>) -> Manifest {
    referrers.sort_by(|a, b| a.digest.cmp(&b.digest));
    referrers.dedup_by(|a, b| a.digest == b.digest);
    let document = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": referrers,
    });
    let bytes = serde_json::to_vec(&document).expect("JSON values serialise");
    Manifest::from_bytes(bytes, Some(OCI_INDEX)).expect("a made index parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_index_does_not_depend_on_the_order_received() {
        let d = |n: u8| {
            let mut d = Descriptor::new(
                crate::manifest::OCI_MANIFEST,
                format!("sha256:{}", format!("{n:02x}").repeat(32))
                    .parse()
                    .unwrap(),
                10,
            );
            d.extra
                .insert("artifactType".into(), "application/x-sig".into());
            d
        };
        let one = schema_index(vec![d(2), d(1)]);
        let two = schema_index(vec![d(1), d(2), d(1)]);
        assert_eq!(one.bytes, two.bytes);
        assert_eq!(one.references().unwrap().manifests.len(), 2);
        assert!(
            String::from_utf8(one.bytes.to_vec())
                .unwrap()
                .contains("artifactType")
        );
    }
}
