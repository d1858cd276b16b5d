//! Downloads into a [`BlobSink`]: streamed, continued with `Range` after a dropped connection
//! or a short body, and given up when tries stop getting further. A body that stops, or
//! trickles, for a stall timeout counts as cut. Registry blobs and the files of web
//! repositories (Helm charts) both come this way.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::{Method, StatusCode, Url};

use super::auth::Scope;
use super::client::{RegistryClient, header};
use super::error::{RegistryError, Target, classify_transport};
use super::transport::MIN_BYTES_PER_STALL;
use crate::report::ProgressFn;
use crate::store::BlobSink;

impl RegistryClient {
    /// Downloads the `size` bytes at `url` (`what`, for messages) into `sink`, which may
    /// already hold a prefix from an earlier attempt. A connection that drops mid-body is
    /// resumed from the last byte written; a server that ignores the `Range` sends everything
    /// again. What the sink refuses comes back as [`RegistryError::Store`]; the caller checks
    /// the digest once this returns.
    pub(crate) async fn download(
        &self,
        scope: &Scope,
        url: &Url,
        what: &str,
        size: u64,
        sink: &mut impl BlobSink,
        progress: &ProgressFn,
    ) -> Result<(), RegistryError> {
        let target = self.target(scope.repository());
        let mut failures = 0u32;
        // Progress is measured against the furthest byte ever reached: a server that ignores
        // Range and cuts the body at the same place every time makes none, and is given up on.
        let mut furthest = sink.offset();
        progress(sink.offset());
        while sink.offset() < size {
            let offset = sink.offset();
            let response = self
                .send(scope, true, || {
                    let request = self.http().request(Method::GET, url.clone());
                    if offset > 0 {
                        request.header(reqwest::header::RANGE, format!("bytes={offset}-"))
                    } else {
                        request
                    }
                })
                .await?;
            match response.status() {
                StatusCode::OK if offset > 0 => {
                    // The server ignored the Range and sends everything again.
                    sink.restart().await?;
                }
                StatusCode::OK => {}
                StatusCode::PARTIAL_CONTENT => {
                    let start = header(&response, "content-range").and_then(|r| range_start(&r));
                    if start != Some(offset) {
                        return Err(RegistryError::Protocol {
                            target,
                            detail: format!(
                                "asked for {what} from byte {offset}, got Content-Range {:?}",
                                header(&response, "content-range")
                            ),
                        });
                    }
                }
                _ => return Err(self.status_error(response, scope, what).await),
            }
            let mut stream = response.bytes_stream();
            let mut broken = None;
            let mut watch = StallWatch::new(self.stall_timeout());
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        sink.write(&bytes).await?;
                        progress(bytes.len() as u64);
                        if !watch.moved(bytes.len() as u64) {
                            broken = Some(watch.stalled(&target, what));
                            break;
                        }
                    }
                    Err(e) => {
                        broken = Some(watch.cut(&target, what, &e));
                        break;
                    }
                }
            }
            if sink.offset() < size {
                if sink.offset() > furthest {
                    furthest = sink.offset();
                    failures = 0;
                }
                failures += 1;
                let policy = self.retry_policy();
                if failures >= policy.attempts {
                    if let Some(stalled @ RegistryError::Stalled { .. }) = broken {
                        return Err(stalled);
                    }
                    let last = broken.map(|e| format!(" (last: {e})")).unwrap_or_default();
                    return Err(RegistryError::Protocol {
                        target,
                        detail: format!(
                            "{what}: the body keeps ending at byte {} of {size}, {} tries \
                             without getting further{last}",
                            sink.offset(),
                            policy.attempts
                        ),
                    });
                }
                tracing::warn!(
                    "{target}: {what} interrupted at byte {} of {size}; resuming",
                    sink.offset()
                );
                if failures > 1 {
                    tokio::time::sleep(policy.delay(failures - 1)).await;
                }
            }
        }
        Ok(())
    }
}

/// Watches a body for stalls: a body that trickles is as stuck as one that stops, so it must
/// move at least [`MIN_BYTES_PER_STALL`] per stall timeout.
pub(crate) struct StallWatch {
    timeout: Duration,
    since: Instant,
    moved: u64,
}

impl StallWatch {
    /// A watch that starts now.
    pub(crate) fn new(timeout: Duration) -> Self {
        StallWatch {
            timeout,
            since: Instant::now(),
            moved: 0,
        }
    }

    /// Counts `bytes` that arrived; false when a stall timeout has passed with too few.
    pub(crate) fn moved(&mut self, bytes: u64) -> bool {
        self.moved += bytes;
        if self.since.elapsed() >= self.timeout {
            if self.moved < MIN_BYTES_PER_STALL {
                return false;
            }
            self.since = Instant::now();
            self.moved = 0;
        }
        true
    }

    /// The error for a transfer of `what` that stalled.
    pub(crate) fn stalled(&self, target: &Target, what: &str) -> RegistryError {
        RegistryError::Stalled {
            target: target.clone(),
            what: what.to_string(),
            seconds: self.timeout.as_secs(),
        }
    }

    /// The error for a body that broke off: a stall when no byte came for the timeout, else
    /// the transport's.
    pub(crate) fn cut(&self, target: &Target, what: &str, error: &reqwest::Error) -> RegistryError {
        if error.is_timeout() {
            self.stalled(target, what)
        } else {
            classify_transport(target.clone(), error)
        }
    }
}

/// The first byte of `Content-Range: bytes START-END/TOTAL`.
fn range_start(value: &str) -> Option<u64> {
    value
        .trim()
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .parse()
        .ok()
}
