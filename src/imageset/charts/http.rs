//! A Helm repository over HTTP(S): its `index.yaml` read whole (it is parsed, so it is
//! bounded); a chart streamed once when the pull is planned, through [`read_chart`], for its
//! digest, size and `Chart.yaml`; and streamed again when the bundle is filled, straight into
//! its place, continued with `Range` after a cut and checked there against what the plan
//! found. A login goes only to the repository's own origin.

use std::io;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{StatusCode, Url};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::{
    ArchiveError, ChartError, ChartFile, ChartOptions, RepoIndex, RepoLogin, parse_index,
    read_chart, repo_login,
};
use crate::report::ProgressFn;
use crate::source::WebBlob;
use crate::store::BlobSink;

/// The largest `index.yaml` read (it is held while parsed; big public repositories' indexes
/// are tens of megabytes).
const INDEX_LIMIT: u64 = 64 << 20;

/// Attempts at a chart body that keeps ending early without getting further.
const ATTEMPTS: u32 = 3;

/// Downloads from Helm repositories.
pub struct ChartClient {
    http: reqwest::Client,
    size_limit: u64,
}

impl ChartClient {
    /// A client with the pull's transport settings and chart size limit.
    pub fn new(options: &ChartOptions) -> Result<Self, ChartError> {
        Ok(ChartClient {
            http: crate::registry::http_client(&options.transport)?,
            size_limit: options.size_limit,
        })
    }

    /// GETs `url` from byte `from`, with the login when `url` is on the repository's origin.
    async fn get(
        &self,
        url: &Url,
        repo: &Url,
        login: &RepoLogin,
        from: u64,
    ) -> Result<reqwest::Response, ChartError> {
        let mut request = self.http.get(url.clone());
        if url.origin() == repo.origin()
            && let Some(user) = &login.username
        {
            request = request.basic_auth(user, login.password.as_deref());
        }
        if from > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let response = request.send().await.map_err(|e| fetch_error(url, &e))?;
        if !response.status().is_success() {
            return Err(ChartError::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        Ok(response)
    }

    /// The repository's `index.yaml`.
    pub async fn index(&self, repo: &Url, login: &RepoLogin) -> Result<RepoIndex, ChartError> {
        let url = repo.join("index.yaml").expect("a relative URL joins");
        let mut response = self.get(&url, repo, login, 0).await?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fetch_error(&url, &e))? {
            if (body.len() + chunk.len()) as u64 > INDEX_LIMIT {
                return Err(ChartError::IndexTooLarge {
                    url: url.to_string(),
                    limit: INDEX_LIMIT,
                });
            }
            body.extend_from_slice(&chunk);
        }
        parse_index(&body).map_err(|reason| ChartError::BadIndex {
            url: url.to_string(),
            reason,
        })
    }

    /// Streams version `version` of chart `chart` from `url` once, keeping nothing of it but
    /// its digest, size and `Chart.yaml`.
    pub async fn inspect(
        &self,
        chart: &str,
        version: &str,
        url: &Url,
        repo: &Url,
        login: &RepoLogin,
    ) -> Result<ChartFile, ChartError> {
        let response = self.get(url, repo, login, 0).await?;
        let too_large = || ChartError::TooLarge {
            url: url.to_string(),
            limit: self.size_limit,
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.size_limit)
        {
            return Err(too_large());
        }
        let stream = response
            .bytes_stream()
            .map(|r| r.map_err(|e| io::Error::other(error_chain(&e))));
        let reader = StreamReader::new(stream);
        let limit = self.size_limit;
        let read =
            tokio::task::spawn_blocking(move || read_chart(SyncIoBridge::new(reader), limit))
                .await
                .expect("reading a chart does not panic");
        read.map_err(|problem| match problem {
            ArchiveError::TooLarge { .. } => too_large(),
            ArchiveError::Download(reason) => ChartError::Fetch {
                url: url.to_string(),
                reason,
            },
            problem => ChartError::BadArchive {
                chart: chart.to_string(),
                version: version.to_string(),
                url: url.to_string(),
                problem,
            },
        })
    }

    /// Streams the chart `blob` (`size` bytes, as planned) into `sink`, from the bytes the sink
    /// already holds. A body cut short is continued with `Range`; a server that ignores the
    /// `Range` sends it all again. The caller checks the digest.
    pub async fn download(
        &self,
        blob: &WebBlob,
        size: u64,
        sink: &mut impl BlobSink,
        progress: &ProgressFn,
    ) -> Result<(), ChartError> {
        let parse = |url: &str| {
            Url::parse(url).map_err(|e| ChartError::Fetch {
                url: url.to_string(),
                reason: e.to_string(),
            })
        };
        let (url, repo) = (parse(&blob.url)?, parse(&blob.repository)?);
        let login = repo_login(&blob.repository)?;
        let store = |e| ChartError::from_store(&blob.url, e);
        progress(sink.offset());
        let (mut furthest, mut failures) = (sink.offset(), 0u32);
        while sink.offset() < size {
            let from = sink.offset();
            let broken = match self.get(&url, &repo, &login, from).await {
                Err(e @ ChartError::Fetch { .. }) => Some(e),
                Err(e) => return Err(e),
                Ok(response) => {
                    if response.status() == StatusCode::PARTIAL_CONTENT {
                        let range = response
                            .headers()
                            .get(reqwest::header::CONTENT_RANGE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        if range_start(&range) != Some(from) {
                            return Err(ChartError::Fetch {
                                url: url.to_string(),
                                reason: format!(
                                    "asked for it from byte {from}, got Content-Range '{range}'"
                                ),
                            });
                        }
                    } else if from > 0 {
                        sink.restart().await.map_err(store)?;
                    }
                    let mut body = response.bytes_stream();
                    let mut broken = None;
                    while let Some(chunk) = body.next().await {
                        match chunk {
                            Ok(bytes) => {
                                sink.write(&bytes).await.map_err(store)?;
                                progress(bytes.len() as u64);
                            }
                            Err(e) => {
                                broken = Some(fetch_error(&url, &e));
                                break;
                            }
                        }
                    }
                    broken
                }
            };
            if sink.offset() < size {
                if sink.offset() > furthest {
                    furthest = sink.offset();
                    failures = 0;
                }
                failures += 1;
                if failures >= ATTEMPTS {
                    return Err(broken.unwrap_or_else(|| ChartError::Changed {
                        url: url.to_string(),
                        detail: format!("it ends at byte {}, not at {size}", sink.offset()),
                    }));
                }
                tracing::warn!(
                    "{url} was cut at byte {} of {size}; continuing",
                    sink.offset()
                );
                tokio::time::sleep(Duration::from_secs(failures.into())).await;
            }
        }
        Ok(())
    }
}

fn fetch_error(url: &Url, error: &reqwest::Error) -> ChartError {
    ChartError::Fetch {
        url: url.to_string(),
        reason: error_chain(error),
    }
}

/// An error with its causes, which reqwest keeps apart (the cause is what says why).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
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
