//! What a pull did, for the summary the binary prints.

use crate::bundle::BaseRecord;

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullSummary {
    /// Tags in the bundle.
    pub tags: usize,
    /// Distinct blobs (manifests excluded).
    pub blobs: usize,
    /// Bytes fetched from the source in this run.
    pub downloaded: u64,
    /// Bytes kept from an interrupted run (re-checked, not fetched again).
    pub reused: u64,
    /// Blobs copied locally from an earlier layout (a changed chunk size).
    pub relaid: usize,
    /// Archive files written.
    pub files: usize,
    /// Bytes of the bundle.
    pub bundle_bytes: u64,
    /// Seconds the pull took.
    pub seconds: f64,
    /// Whether an interrupted pull was continued.
    pub resumed: bool,
    /// For a differential bundle: the base, with the blobs left out.
    pub base: Option<BaseRecord>,
    /// For a differential bundle: the bytes a full bundle of the same tags would have.
    pub full_bytes: u64,
}
