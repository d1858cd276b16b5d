//! A Helm repository over HTTP(S), read through the registry layer's web client
//! ([`crate::registry::WebClient`]: retries, the stall timeout, CA, proxies, typed errors, the
//! login to the repository's own origin only). Its `index.yaml` is read whole (it is parsed,
//! so it is bounded); a chart is streamed once when the pull is planned, through
//! [`read_chart`], for its digest, size and `Chart.yaml`; and streamed again when the bundle is
//! filled, straight into its place, continued with `Range` after a cut and checked there
//! against what the plan found.

use std::io;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use reqwest::Url;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::login::repo_login;
use super::{
    ArchiveError, ChartError, ChartFile, ChartOptions, RepoIndex, parse_index, read_chart,
};
use crate::registry::{RegistryError, RetryPolicy, WebClient, WebRepository};
use crate::report::ProgressFn;
use crate::source::WebBlob;
use crate::store::BlobSink;

/// The largest `index.yaml` read (it is held while parsed; big public repositories' indexes
/// are tens of megabytes).
const INDEX_LIMIT: usize = 64 << 20;

/// Downloads from Helm repositories.
pub struct ChartClient {
    web: WebClient,
    size_limit: u64,
}

impl ChartClient {
    /// A client with the pull's transport settings and chart size limit.
    pub fn new(options: &ChartOptions) -> Result<Self, ChartError> {
        Ok(ChartClient {
            // The policy registry clients retry with: nothing on the command line changes it.
            web: WebClient::new(&options.transport, RetryPolicy::default())?,
            size_limit: options.size_limit,
        })
    }

    /// The Helm repository at `root`, with the login Helm's `repositories.yaml` has for it.
    pub fn repository(&self, root: &Url) -> Result<ChartRepository, ChartError> {
        Ok(ChartRepository {
            web: self.web.repository(root, repo_login(root.as_str())?),
            root: root.clone(),
            size_limit: self.size_limit,
        })
    }

    /// Streams the chart `blob` (`size` bytes, as planned) into `sink`, from the bytes the sink
    /// already holds. The caller checks the digest.
    pub async fn download(
        &self,
        blob: &WebBlob,
        size: u64,
        sink: &mut impl BlobSink,
        progress: &ProgressFn,
    ) -> Result<(), ChartError> {
        let parse = |url: &str| {
            Url::parse(url).map_err(|e| ChartError::BadUrl {
                url: url.to_string(),
                reason: e.to_string(),
            })
        };
        let (url, root) = (parse(&blob.url)?, parse(&blob.repository)?);
        self.repository(&root)?
            .web
            .download(&url, size, sink, progress)
            .await
            .map_err(|e| match e {
                RegistryError::Store(e) => ChartError::from_store(&blob.url, e),
                other => ChartError::Fetch(other),
            })
    }
}

/// One Helm repository, read with its login.
pub struct ChartRepository {
    web: WebRepository,
    root: Url,
    size_limit: u64,
}

impl ChartRepository {
    /// The URL of its `index.yaml`.
    pub fn index_url(&self) -> Url {
        self.root.join("index.yaml").expect("a relative URL joins")
    }

    /// Its `index.yaml`.
    pub async fn index(&self) -> Result<RepoIndex, ChartError> {
        let url = self.index_url();
        let body = self.web.read(&url, INDEX_LIMIT).await?;
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
    ) -> Result<ChartFile, ChartError> {
        let file = self.web.open(url).await?;
        let too_large = || ChartError::TooLarge {
            url: url.to_string(),
            limit: self.size_limit,
        };
        if file.length.is_some_and(|n| n > self.size_limit) {
            return Err(too_large());
        }
        // A download that breaks off is kept here, to be reported as itself rather than as
        // whatever the gzip or tar reader makes of the missing bytes.
        let cut: Arc<Mutex<Option<RegistryError>>> = Arc::default();
        let kept = cut.clone();
        let stream = file.body.map(move |chunk| {
            chunk.map_err(|e| {
                let text = e.to_string();
                *kept.lock().expect("cut lock") = Some(e);
                io::Error::other(text)
            })
        });
        let reader = StreamReader::new(stream);
        let limit = self.size_limit;
        let read =
            tokio::task::spawn_blocking(move || read_chart(SyncIoBridge::new(reader), limit))
                .await
                .expect("reading a chart does not panic");
        if let Some(e) = cut.lock().expect("cut lock").take() {
            return Err(ChartError::Fetch(e));
        }
        read.map_err(|problem| match problem {
            ArchiveError::TooLarge { .. } => too_large(),
            problem => ChartError::BadArchive {
                chart: chart.to_string(),
                version: version.to_string(),
                url: url.to_string(),
                problem,
            },
        })
    }
}
