//! The blobs to fetch, one job per digest with every place it goes, and the order they are
//! fetched in: each file's blobs in offset order, and as many files at once as there are
//! sealers, taken in the order the sealers take them. Every sealer then has a blob landing in
//! its own file to follow; two blobs landing side by side in one file would leave its sealer
//! with the second to hash after the download ends.

use std::collections::{BTreeMap, VecDeque};

use super::plan::{ArchivePlan, EntryContent};
use super::sealer::sealer_count;
use crate::digest::Digest;

/// One blob to bring in, with every place the bundle holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobJob {
    /// The blob.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// (archive, entry) of every place it goes; the first is written, the others copied.
    pub placements: Vec<(usize, usize)>,
    /// Bytes already at the first place from an interrupted run.
    pub resume_at: u64,
}

/// Every blob entry of `plans`, grouped by digest, in the order the sealers can follow: see
/// [`interleave`].
pub fn blob_jobs(plans: &[ArchivePlan]) -> Vec<BlobJob> {
    interleave(plans, by_offset(plans), sealer_count())
}

/// Every blob entry of `plans`, grouped by digest, ordered by the offset of its first place.
fn by_offset(plans: &[ArchivePlan]) -> Vec<BlobJob> {
    let mut by_digest: BTreeMap<&Digest, (u64, BlobJob)> = BTreeMap::new();
    for (a, plan) in plans.iter().enumerate() {
        for (e, entry) in plan.entries.iter().enumerate() {
            let EntryContent::Blob { digest, size } = &entry.content else {
                continue;
            };
            let job = by_digest.entry(digest).or_insert_with(|| {
                (
                    entry.data_offset,
                    BlobJob {
                        digest: digest.clone(),
                        size: *size,
                        placements: Vec::new(),
                        resume_at: 0,
                    },
                )
            });
            job.1.placements.push((a, e));
        }
    }
    let mut jobs: Vec<(u64, BlobJob)> = by_digest.into_values().collect();
    jobs.sort_by(|a, b| (a.0, &a.1.digest).cmp(&(b.0, &b.1.digest)));
    jobs.into_iter().map(|(_, job)| job).collect()
}

/// Orders `jobs` (fetched about [`super::fill`]'s in-flight budget at a time) for `sealers`
/// sealers. A job belongs to the file where the data of its first place starts. Files are
/// taken in the sealers' order (offset in the archive, then archive); of the `sealers` files
/// being filled, the next job is the one of the file with the fewest bytes handed out so far,
/// and a file that joins when another runs out starts level with the others.
fn interleave(plans: &[ArchivePlan], jobs: Vec<BlobJob>, sealers: usize) -> Vec<BlobJob> {
    let mut by_file: BTreeMap<(u64, usize, usize), Vec<(u64, BlobJob)>> = BTreeMap::new();
    for job in jobs {
        let (a, e) = job.placements[0];
        let offset = plans[a].entries[e].data_offset;
        let f = plans[a].file_at(offset);
        by_file
            .entry((plans[a].files[f].start, a, f))
            .or_default()
            .push((offset, job));
    }
    let mut waiting: VecDeque<VecDeque<BlobJob>> = by_file
        .into_values()
        .map(|mut file| {
            file.sort_by_key(|(offset, _)| *offset);
            file.into_iter().map(|(_, job)| job).collect()
        })
        .collect();
    let mut ordered = Vec::with_capacity(waiting.iter().map(VecDeque::len).sum());
    // (bytes handed out, the file's jobs still waiting), in the sealers' order.
    let mut filling: Vec<(u64, VecDeque<BlobJob>)> = Vec::new();
    let mut level = 0;
    loop {
        while filling.len() < sealers.max(1) {
            let Some(file) = waiting.pop_front() else {
                break;
            };
            filling.push((level, file));
        }
        let Some(next) = (0..filling.len()).min_by_key(|&i| filling[i].0) else {
            break;
        };
        let (handed, file) = &mut filling[next];
        let job = file.pop_front().expect("a file being filled has jobs");
        *handed += job.size;
        ordered.push(job);
        if file.is_empty() {
            let (handed, _) = filling.remove(next);
            level = filling.iter().map(|(h, _)| *h).min().unwrap_or(handed);
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::entry_path::EntryPath;

    fn blob(n: u8, size: u64) -> (EntryPath, EntryContent) {
        let digest = Digest::of(&[n]);
        (
            format!("blobs/sha256/{}", digest.hex()).into(),
            EntryContent::Blob { digest, size },
        )
    }

    /// The files (of archive 0) the ordered jobs start in.
    fn files(plans: &[ArchivePlan], jobs: &[BlobJob]) -> Vec<usize> {
        jobs.iter()
            .map(|j| {
                let (a, e) = j.placements[0];
                plans[a].file_at(plans[a].entries[e].data_offset)
            })
            .collect()
    }

    #[test]
    fn files_fill_side_by_side_each_in_offset_order() {
        // Eight blobs of 1000 bytes in chunks of 2048: about two blobs a chunk.
        let plan = ArchivePlan::new("t.tar", (0..8).map(|n| blob(n, 1000)).collect(), 2048);
        let plans = vec![plan.unwrap()];
        let ordered = interleave(&plans, by_offset(&plans), 2);
        let starts = files(&plans, &ordered);
        assert_eq!(ordered.len(), 8);
        // Two files at a time, alternating, each file's blobs by offset.
        assert_ne!(starts[0], starts[1]);
        for file in 0..plans[0].files.len() {
            let offsets: Vec<u64> = ordered
                .iter()
                .zip(&starts)
                .filter(|(_, f)| **f == file)
                .map(|(j, _)| plans[0].entries[j.placements[0].1].data_offset)
                .collect();
            assert!(offsets.is_sorted(), "file {file}: {offsets:?}");
        }
        // Files join in order: no blob of a file starts before one of a file two places back
        // has had its turn.
        let first_of = |f: usize| starts.iter().position(|s| *s == f);
        let joined: Vec<usize> = (0..plans[0].files.len()).filter_map(first_of).collect();
        assert!(joined.is_sorted(), "{starts:?}");
    }

    #[test]
    fn one_file_keeps_offset_order() {
        let plan = ArchivePlan::new("t.tar", (0..5).map(|n| blob(n, 700)).collect(), 0);
        let plans = vec![plan.unwrap()];
        let jobs = by_offset(&plans);
        assert_eq!(interleave(&plans, jobs.clone(), 4), jobs);
    }

    #[test]
    fn a_file_that_joins_starts_level_with_the_others() {
        // Three one-tar archives of 4, 1 and 2 blobs of equal size, two sealers: c.tar joins
        // when b.tar runs out and takes turns with a.tar, not all its blobs at once.
        let tar = |name: &str, blobs: std::ops::Range<u8>| {
            ArchivePlan::new(name, blobs.map(|n| blob(n, 100)).collect(), 0).unwrap()
        };
        let plans = vec![tar("a.tar", 0..4), tar("b.tar", 4..5), tar("c.tar", 5..7)];
        let archives = |sealers| -> Vec<usize> {
            interleave(&plans, by_offset(&plans), sealers)
                .iter()
                .map(|j| j.placements[0].0)
                .collect()
        };
        assert_eq!(archives(2), [0, 1, 0, 2, 0, 2, 0]);
        assert_eq!(archives(1), [0, 0, 0, 0, 1, 2, 2]);
    }
}
