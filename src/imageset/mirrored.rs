//! Images read through mirrors: each wanted image is read from the first of its sources (the
//! mirrors its registry's rule names, in order, then the registry itself when the rule allows)
//! that has it, and keeps the name it was asked by. Only "not found" passes on to the next
//! source: a mirror that refuses the credentials, or cannot be reached, stops the pull with its
//! name, never silently sending the request elsewhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::{StreamExt, TryStreamExt};

use super::{Clients, client_for};
use crate::manifest::Manifest;
use crate::registry::mirrors::Source;
use crate::registry::{Mirrors, RegistryClient, RegistryError};
use crate::source::SourceError;
use crate::source::sizing::Want;

/// One image as it was asked for.
pub(crate) struct Asked {
    /// The want, its `repo` and `reference` as asked.
    pub want: Want,
    /// The registry it was asked of.
    pub registry: String,
    /// Where it must be read when that is already decided (an image set entry whose tags
    /// were listed there); its `reference` is left to the want.
    pub fixed: Option<Source>,
}

/// The wants read at one registry for one registry asked.
#[derive(Default)]
pub(crate) struct Placed {
    /// The wants, `repo` and `reference` as that registry has them.
    pub wants: Vec<Want>,
    /// Manifests already fetched while looking for the image, by (repository, reference).
    pub known: HashMap<(String, String), Manifest>,
    /// (repository read, `host/repository` asked) of every want read under another name.
    pub renames: BTreeSet<(String, String)>,
}

/// Where every asked image is read, grouped by (registry read, registry asked), with what the
/// dry run says about the mirrors used.
pub(crate) struct Placement {
    /// The groups.
    pub groups: BTreeMap<(String, String), Placed>,
    /// Which mirrors were used, and which images were not found at them.
    pub notes: BTreeSet<String>,
}

/// Places every asked image at its first source that has it. Images with a single source
/// (no mirror, or one `--source-mirror`) are placed without asking.
pub(crate) async fn place(
    asked: Vec<Asked>,
    mirrors: &Mirrors,
    clients: &dyn Clients,
    made: &mut HashMap<String, RegistryClient>,
    concurrency: usize,
) -> Result<Placement, SourceError> {
    let mut candidates = Vec::new();
    for item in asked {
        let sources = match &item.fixed {
            Some(fixed) => vec![Source {
                reference: Some(item.want.reference.clone()),
                ..fixed.clone()
            }],
            None => mirrors.sources(&name_of(&item.registry, &item.want))?,
        };
        for source in &sources {
            client_for(made, clients, &source.registry)?;
        }
        candidates.push((item, sources));
    }
    let made: &HashMap<String, RegistryClient> = made;
    let found: Vec<(Asked, Source, Option<Manifest>, Vec<String>)> =
        futures_util::stream::iter(candidates.into_iter().map(|(item, sources)| async move {
            if sources.len() == 1 {
                let source = sources.into_iter().next().expect("one source");
                return Ok::<_, SourceError>((item, source, None, Vec::new()));
            }
            let mut passed = Vec::new();
            let count = sources.len();
            for (i, source) in sources.into_iter().enumerate() {
                let last = i + 1 == count;
                let reference = source.reference.clone().unwrap_or_default();
                match made[&source.registry]
                    .get_manifest(&source.repository, &reference)
                    .await
                {
                    Ok(manifest) => return Ok((item, source, Some(manifest), passed)),
                    Err(error) => passed = next_or_fail(&item, &source, error, passed, last)?,
                }
            }
            unreachable!("the last source returns")
        }))
        // In the order asked, so that the plan does not depend on which answer came first.
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;

    let mut placement = Placement {
        groups: BTreeMap::new(),
        notes: BTreeSet::new(),
    };
    let mut through: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (item, source, manifest, passed) in found {
        let asked_name = format!("{}/{}", item.registry, item.want.repo);
        if !passed.is_empty() {
            placement.notes.insert(format!(
                "{}: not at {}; read from {}",
                name_of(&item.registry, &item.want),
                passed.join(", "),
                source.via.as_deref().unwrap_or(&source.name()),
            ));
        }
        if let Some(via) = &source.via {
            *through
                .entry((item.registry.clone(), via.clone()))
                .or_default() += 1;
        }
        let group = placement
            .groups
            .entry((source.registry.clone(), item.registry.clone()))
            .or_default();
        let reference = source
            .reference
            .clone()
            .unwrap_or(item.want.reference.clone());
        if let Some(manifest) = manifest {
            group
                .known
                .insert((source.repository.clone(), reference.clone()), manifest);
        }
        if source.name() != asked_name {
            group
                .renames
                .insert((source.repository.clone(), asked_name));
        }
        group.wants.push(Want {
            repo: source.repository,
            reference,
            ..item.want
        });
    }
    for ((registry, via), count) in through {
        placement.notes.insert(format!(
            "{registry}: {count} image(s) read through the {via}"
        ));
    }
    Ok(placement)
}

/// Lists the tags of `repository` (asked of `registry`) at the first of its sources that has
/// it; the source it used goes with them, so that the tags chosen are read there too.
pub(crate) async fn list_tags(
    mirrors: &Mirrors,
    registry: &str,
    repository: &str,
    clients: &dyn Clients,
    made: &mut HashMap<String, RegistryClient>,
    notes: &mut Vec<String>,
) -> Result<(Source, Vec<String>), SourceError> {
    let name = format!("{registry}/{repository}");
    let sources = mirrors.sources(&name)?;
    let mut passed = Vec::new();
    let mut sources = sources.into_iter().peekable();
    while let Some(source) = sources.next() {
        let client = client_for(made, clients, &source.registry)?;
        match client.list_tags(&source.repository).await {
            Ok(tags) => {
                if !passed.is_empty() {
                    notes.push(format!(
                        "{name}: not at {}; tags listed at {}",
                        passed.join(", "),
                        source.via.as_deref().unwrap_or(&source.name()),
                    ));
                }
                return Ok((source, tags));
            }
            Err(RegistryError::NotFound { .. }) if sources.peek().is_some() => {
                passed.push(source.name());
            }
            Err(error) if passed.is_empty() => return Err(error.into()),
            Err(error) => {
                return Err(SourceError::NotAtMirrors {
                    name,
                    passed,
                    error: Box::new(error),
                });
            }
        }
    }
    unreachable!("the last source returns")
}

/// After `source` answered `error` for `item`: the sources passed so far, to go on with the
/// next source when it was "not found" and one is left; else the error to stop with, which
/// names the sources passed.
fn next_or_fail(
    item: &Asked,
    source: &Source,
    error: RegistryError,
    mut passed: Vec<String>,
    last: bool,
) -> Result<Vec<String>, SourceError> {
    if matches!(error, RegistryError::NotFound { .. }) && !last {
        passed.push(format!(
            "{}{}{}",
            source.name(),
            if item.want.reference.contains(':') {
                '@'
            } else {
                ':'
            },
            source.reference.as_deref().unwrap_or_default()
        ));
        return Ok(passed);
    }
    if passed.is_empty() {
        return Err(error.into());
    }
    Err(SourceError::NotAtMirrors {
        name: name_of(&item.registry, &item.want),
        passed,
        error: Box::new(error),
    })
}

/// `host/repo:tag` or `host/repo@digest`: the name mirror rules match.
fn name_of(registry: &str, want: &Want) -> String {
    let separator = if want.reference.contains(':') {
        '@'
    } else {
        ':'
    };
    format!("{registry}/{}{separator}{}", want.repo, want.reference)
}
