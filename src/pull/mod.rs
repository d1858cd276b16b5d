//! `ferry pull`: resolve what to take, lay the archives out exactly, check the disks, fetch
//! every blob straight into its place, seal each file as soon as it is complete, then write the
//! sums and `bundle.json`. An interrupted pull leaves a work directory from which a rerun of the
//! same command continues.

mod access;
mod bundle_dir;
mod dry_run;
mod error;
mod fetch;
mod index_json;
mod layout;
mod options;
mod plan;
mod readable;
mod resume;
mod seal;
mod signatures;
mod space;
mod summary;
mod work;
mod write;

use std::sync::Arc;
use std::time::Instant;

pub use access::RegistryAccess;
pub use dry_run::{ArchiveEstimate, DryRun, DryRunJson, dry_run};
pub use error::PullError;
pub use layout::archive_plans;
pub use options::PullOptions;
pub use space::SpaceCheck;
pub use summary::PullSummary;
pub use work::WorkError;

use crate::bundle::replace::remove_sums;
use crate::report::Reporter;

/// Runs a pull as `options` say. A run that fails before anything worth resuming was written
/// leaves no directories behind.
pub async fn pull(
    options: &PullOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<PullSummary, PullError> {
    let existed = options.dir.exists();
    bundle_dir::check(options)?;
    let result = run(options, reporter).await;
    if result.is_err() {
        bundle_dir::tidy_after_failure(options, existed);
    }
    result
}

/// The pull, phase by phase.
async fn run(options: &PullOptions, reporter: Arc<dyn Reporter>) -> Result<PullSummary, PullError> {
    let started = Instant::now();
    let work = bundle_dir::lock_work_dir(options)?;
    let mut start = resume::earlier_run(options, &work, reporter.as_ref()).await?;
    let resumed = start.resumed_plan(&work, reporter.as_ref())?;
    let mut plan = plan::plan(options, resumed, reporter.as_ref()).await?;
    let full_bytes = seal::full_size(options, &plan)?;
    let archives = archive_plans(&plan, options.chunk_size)?;
    if options.force {
        bundle_dir::refuse_foreign_archives(options, &archives)?;
        // Old sums must never describe new files: they go before the first new file appears.
        remove_sums(&options.dir)?;
    }
    let state = start.new_state(options, &work, &plan)?;
    space::preflight(
        &options.dir,
        work.path(),
        &archives,
        start.kept(),
        state.as_ref(),
    )
    .map_err(PullError::NoSpace)?;
    let begun = start.begin(options, &work, state.as_ref())?;
    // Written out: what it holds of an earlier run's plan is not needed past here.
    drop(state);
    let written = write::write(options, &work, &mut plan, archives, begun, &reporter).await?;
    seal::seal(options, &plan, written, work, started, full_bytes)
}
