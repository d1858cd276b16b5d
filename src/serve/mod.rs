//! `ferry serve`: the bundle itself as a read-only OCI registry. Start-up indexes the bundles
//! (tar headers, `bundle.json`, `index.json`s and manifests, checked as push checks them);
//! blob bytes are then streamed straight out of the archive files and their chunks, nothing
//! unpacked and no temporary file written.

mod access_log;
mod body;
mod catalog;
mod error;
mod handler;
mod htpasswd;
mod idle;
mod options;
mod range;
mod route;
mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use access_log::{LogSink, RequestRecord};
pub use catalog::CatalogSize;
pub use error::ServeError;
pub use options::{Limits, LogFormat, ServeOptions, ServedBundle, TlsFiles};

use catalog::Catalog;
use handler::Shared;
use idle::IdleGuard;

/// How long in-flight requests may take to finish once a stop is asked for.
const GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves until `stop` completes, then lets the requests under way finish (up to ten seconds).
/// The first line given to `log` says where it listens; one line per request follows.
pub async fn serve(
    options: ServeOptions,
    log: Arc<dyn LogSink>,
    reporter: Arc<dyn crate::report::Reporter>,
    stop: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let started = Instant::now();
    if options.verify {
        for bundle in &options.bundles {
            check(&bundle.dir, reporter.clone()).await?;
        }
    }
    let bundles = options.bundles.clone();
    let prefix = options.prefix.clone();
    let modules_path = options.modules_path.clone();
    let handle = tokio::runtime::Handle::current();
    let catalog = tokio::task::spawn_blocking(move || {
        Catalog::build(&bundles, &prefix, modules_path.as_deref(), &handle)
    })
    .await
    .expect("indexing does not panic")?;
    // A tag a differential bundle moved is served as it says; the operator hears which.
    for line in &catalog.superseded {
        reporter.warn(line);
    }
    let htpasswd = options
        .htpasswd
        .as_deref()
        .map(htpasswd::Htpasswd::read)
        .transpose()?;
    let tls = options.tls.as_ref().map(tls::acceptor).transpose()?;
    let listener =
        TcpListener::bind(options.listen)
            .await
            .map_err(|source| ServeError::Listen {
                address: options.listen,
                source,
            })?;
    let address = listener.local_addr().map_err(|source| ServeError::Listen {
        address: options.listen,
        source,
    })?;
    let size = catalog.size();
    log.line(&ready_line(
        options.log_format,
        &format!(
            "{}://{address}",
            if tls.is_some() { "https" } else { "http" }
        ),
        size,
        started.elapsed(),
    ));
    let shared = Arc::new(Shared {
        catalog,
        htpasswd,
        budget: body::Budget::new(options.limits.budget_bytes),
    });
    let slots = Arc::new(Semaphore::new(options.limits.connections.max(1)));
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 only: every registry client speaks it, and one request at a time per
    // connection keeps what a client can make the server hold to what the connection slots
    // allow (HTTP/2 lets one connection open hundreds of streams and keep itself alive with
    // PINGs alone).
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.limits.header_timeout)
        .max_buf_size(options.limits.header_bytes.max(8192));
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            _ = &mut stop => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, remote) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: say so, wait a moment, go on.
                    reporter.warn(&format!("cannot accept a connection: {e}"));
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let stream = IdleGuard::new(stream, options.limits.idle_timeout);
        let shared = shared.clone();
        let log = log.clone();
        let format = options.log_format;
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let shared = shared.clone();
            let log = log.clone();
            async move {
                let time = SystemTime::now();
                let begun = Instant::now();
                let answer = handler::answer(
                    shared,
                    request.method(),
                    request.uri().path(),
                    request.uri().query(),
                    request.headers(),
                )
                .await;
                let record = RequestRecord {
                    remote,
                    user: answer.user.clone(),
                    time,
                    method: request.method().to_string(),
                    target: request
                        .uri()
                        .path_and_query()
                        .map_or_else(|| request.uri().path().to_string(), |p| p.to_string()),
                    protocol: format!("{:?}", request.version()),
                    status: answer.response.status().as_u16(),
                    bytes: answer.bytes,
                    duration: begun.elapsed(),
                };
                log.line(&record.line(format));
                Ok::<_, Infallible>(answer.response)
            }
        });
        match &tls {
            None => {
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(slot);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let deadline = options.limits.header_timeout;
                tokio::spawn(async move {
                    // A handshake dribbled a byte at a time would keep the idle guard happy:
                    // it gets the header deadline as a whole.
                    let handshake = tokio::time::timeout(deadline, acceptor.accept(stream)).await;
                    if let Ok(Ok(stream)) = handshake {
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(connection).await;
                    }
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(GRACE) => {}
    }
    Ok(())
}

/// `--verify`: every file's sums and every blob's digest, before the first request.
async fn check(
    dir: &std::path::Path,
    reporter: Arc<dyn crate::report::Reporter>,
) -> Result<(), ServeError> {
    use crate::verify::{VerifyError, VerifyOptions, verify};
    let report = verify(dir, VerifyOptions::default(), reporter)
        .await
        .map_err(|e| match e {
            VerifyError::Bundle(source) => ServeError::Bundle {
                dir: dir.to_path_buf(),
                source,
            },
            // Asked for no key and no policy, so not expected; named all the same.
            VerifyError::Trust(e) => ServeError::Unverified {
                dir: dir.to_path_buf(),
                problems: vec![e.to_string()],
            },
        })?;
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(ServeError::Unverified {
            dir: dir.to_path_buf(),
            problems: report.problems,
        })
    }
}

/// The line that says the server is ready: where, what it holds, how long start-up took.
fn ready_line(
    format: LogFormat,
    url: &str,
    size: CatalogSize,
    took: std::time::Duration,
) -> String {
    match format {
        LogFormat::Common => format!(
            "ferry serve: listening on {url} ({} repositories, {} tags, {} blobs; ready in {:.3} s)",
            size.repositories,
            size.tags,
            size.blobs,
            took.as_secs_f64()
        ),
        LogFormat::Json => serde_json::json!({
            "event": "ready",
            "url": url,
            "repositories": size.repositories,
            "tags": size.tags,
            "manifests": size.manifests,
            "blobs": size.blobs,
            "ready_seconds": took.as_secs_f64(),
        })
        .to_string(),
    }
}
