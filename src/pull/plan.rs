//! The plan of a pull: what to take, resolved from the platform layout, the image sets and
//! the image list (or, when a run continues, the plan it resolved then); refused when it holds
//! what a bundle reader would refuse, when `--strict` finds a selector that selected nothing,
//! or when it takes nothing at all.

use super::error::PullError;
use super::options::PullOptions;
use super::readable::unreadable;
use crate::registry::Mirrors;
use crate::report::Reporter;
use crate::source::{Plan, SourceError, SourceRoot, resolve as resolve_layout};

/// The most manifest bytes one pull plans (real images' manifests are a few kB each).
const MANIFEST_BYTES_LIMIT: u64 = 128 << 20;

/// The plan of this run: `resumed` when an earlier run's plan is continued, else resolved now.
/// Its warnings and mirrors are reported; a plan with no image is refused.
pub async fn plan(
    options: &PullOptions,
    resumed: Option<Plan>,
    reporter: &dyn Reporter,
) -> Result<Plan, PullError> {
    let plan = match resumed {
        Some(plan) => plan,
        None => resolve(options, reporter).await?,
    };
    for warning in &plan.warnings {
        reporter.warn(warning);
    }
    for line in &plan.mirrors {
        reporter.note(line);
    }
    if plan.images.is_empty() {
        return Err(PullError::Empty {
            source_root: options.source_name(),
            detail: describe_selection(options),
        });
    }
    Ok(plan)
}

/// What the pull takes: the platform layout's plan (with `--source`), then every image set and
/// the image list, merged.
pub async fn resolve(options: &PullOptions, reporter: &dyn Reporter) -> Result<Plan, PullError> {
    let mut plan = match &options.source {
        Some(source) => {
            let (read, via) = read_root(options.access.mirrors(), source)?;
            let client = options.access.client(&read.registry, &read.path)?;
            let mut plan = resolve_layout(
                &client,
                &read,
                &options.description,
                &options.request,
                options.concurrency,
                reporter,
            )
            .await?;
            if let Some(via) = via {
                plan.name_as_asked(&read.registry, &read.path, &source.to_string());
                plan.mirrors
                    .insert(format!("{source}: read through the {via}"));
            }
            plan
        }
        None => Plan::default(),
    };
    if !options.image_sets.is_empty() || !options.image_list.is_empty() {
        let sets = crate::imageset::resolve(
            &options.image_sets,
            &options.image_list,
            &options.access,
            &options.charts,
            &options.request.take,
            options.concurrency,
            reporter,
        )
        .await?;
        plan.merge(sets)
            .map_err(|e| PullError::Source(SourceError::Usage(e)))?;
    }
    if let Some(policy) = &options.signature_policy {
        super::signatures::hold_to_policy(options, policy, &mut plan, reporter).await?;
    }
    if let Some(base) = &options.since_bundle {
        plan.leave_out(&base.held);
    }
    let problems = unreadable(&plan);
    if !problems.is_empty() {
        return Err(PullError::Unreadable { problems });
    }
    // Manifests are held in memory from the plan to the seal (and written to the state file):
    // a source of thousands of 4 MiB manifests must not take the host's memory with it.
    let manifest_bytes: u64 = plan.manifests.values().map(|m| m.bytes.len() as u64).sum();
    if manifest_bytes > MANIFEST_BYTES_LIMIT {
        return Err(PullError::TooManyManifestBytes {
            bytes: manifest_bytes,
            count: plan.manifests.len(),
            limit: MANIFEST_BYTES_LIMIT,
        });
    }
    if options.strict && !plan.unselected.is_empty() {
        return Err(PullError::Unselected {
            selectors: plan.unselected,
        });
    }
    Ok(plan)
}

/// Where the platform layout under `root` is read: the first source its mirror rule gives,
/// with what stands in for it. The whole layout comes from there, without falling back to
/// another source image by image: channels, versions and digest lists must come from one
/// registry to fit together.
fn read_root(
    mirrors: &Mirrors,
    root: &SourceRoot,
) -> Result<(SourceRoot, Option<String>), PullError> {
    let first = mirrors
        .sources(&root.to_string())
        .map_err(SourceError::from)?
        .into_iter()
        .next()
        .expect("a rule gives at least one source");
    Ok((
        SourceRoot {
            registry: first.registry,
            path: first.repository,
        },
        first.via,
    ))
}

fn describe_selection(options: &PullOptions) -> String {
    let request = &options.request;
    let mut parts = Vec::new();
    if request.platform {
        parts.push("the platform".to_string());
    }
    if request.modules {
        let filters: Vec<String> = request.include.iter().map(|f| f.to_string()).collect();
        parts.push(if filters.is_empty() {
            "modules".into()
        } else {
            format!("modules {}", filters.join(", "))
        });
    }
    if request.security {
        parts.push("the security databases".into());
    }
    if !options.image_sets.is_empty() || !options.image_list.is_empty() {
        parts.push("the image sets and lists".into());
    }
    if parts.is_empty() {
        "--no-platform, --no-modules and --no-security-db leave nothing to take".into()
    } else {
        format!(
            "{} matched no image (the warnings above say what is missing)",
            parts.join(", ")
        )
    }
}
