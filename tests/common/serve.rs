//! `ferry serve` run as a user runs it, and a raw HTTP/1.1 client that sends exactly the bytes a
//! test writes (crafted paths stay as they are, nothing is normalised on the way).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{ferry, ferry_under};

/// A running `ferry serve`, killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The readiness line.
    pub ready: String,
    lines: Arc<Mutex<Vec<String>>>,
    errors: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `ferry serve --listen 127.0.0.1:0 ARGS` and waits for its readiness line.
    pub fn start(home: &Path, args: &[&str]) -> Server {
        match Self::try_start(home, args) {
            Ok(server) => server,
            Err(stderr) => panic!("ferry serve did not start:\n{stderr}"),
        }
    }

    /// Like [`Server::start`], but a server that exits before it is ready gives its stderr.
    pub fn try_start(home: &Path, args: &[&str]) -> Result<Server, String> {
        Self::spawn(ferry(home), args)
    }

    /// Starts the server under strace, which writes every file it opens to `trace`.
    pub fn traced(home: &Path, trace: &Path, args: &[&str]) -> Server {
        let trace = trace.to_str().unwrap();
        let cmd = ferry_under(
            home,
            &[
                "strace",
                "-f",
                "-qq",
                "-e",
                "trace=open,openat,openat2",
                "-o",
                trace,
            ],
        );
        Self::spawn(cmd, args)
            .unwrap_or_else(|stderr| panic!("ferry serve did not start:\n{stderr}"))
    }

    fn spawn(mut cmd: std::process::Command, args: &[&str]) -> Result<Server, String> {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let errors = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = errors.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            sink.lock().unwrap().push_str(&text);
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        if stdout.read_line(&mut ready).unwrap_or(0) == 0 {
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            return Err(errors.lock().unwrap().clone());
        }
        let host = ready
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split([' ', '"']).next())
            .unwrap_or_else(|| panic!("no address in the readiness line: {ready}"))
            .to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Ok(Server {
            child: Some(child),
            host,
            ready: ready.trim().to_string(),
            lines,
            errors,
        })
    }

    /// `host:port/<path>`.
    pub fn at(&self, path: &str) -> String {
        format!("{}/{path}", self.host)
    }

    /// The access log so far (one line per request answered).
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Whether a line of the access log matches, waiting up to ten seconds for it: the line is
    /// written as the answer goes out, and read from the pipe by another thread.
    pub fn logged(&self, matches: impl Fn(&str) -> bool) -> bool {
        super::wait_until(10, || self.log().iter().any(|l| matches(l)))
    }

    /// The process id (of strace, for a traced server).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Its resident memory now, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Sends SIGTERM and returns the exit code and stderr once the server has stopped.
    pub fn stop(&mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().expect("running");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100));
        (
            status.and_then(|s| s.code()),
            self.errors.lock().unwrap().clone(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Under strace the server is strace's child: strace killed alone lets it go on,
            // detached, listening after the test has ended.
            for pid in children_of(child.id()) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The processes `pid` started that still run (none when the kernel does not say).
fn children_of(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Header names lowercased, with their values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `GET target` (or another method) with extra header lines, `Connection: close`, and
/// reads the whole answer.
pub fn raw_request(host: &str, method: &str, target: &str, headers: &[&str]) -> RawResponse {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    raw_exchange(host, request.as_bytes())
}

/// Writes `bytes` on a new connection and reads the response until the server closes it.
pub fn raw_exchange(host: &str, bytes: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..line_end])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The SHA-256 of bytes, as `sha256:<hex>`, computed by `sha256sum`.
pub fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", super::sha256_hex(bytes))
}
