//! One line per request: the common log format web servers write, or a JSON object. The server
//! hands the lines to a [`LogSink`]; the binary decides where they go.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::options::LogFormat;
use crate::report::printable;

/// Where the server's lines go: the readiness line first, then one per request.
pub trait LogSink: Send + Sync {
    /// Writes one line.
    fn line(&self, text: &str);
}

/// What is logged of one request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// The client.
    pub remote: SocketAddr,
    /// The user who logged in, if any.
    pub user: Option<String>,
    /// When the request came in.
    pub time: SystemTime,
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The path and query as sent.
    pub target: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: String,
    /// The status sent.
    pub status: u16,
    /// Bytes of the body sent (its `Content-Length`).
    pub bytes: u64,
    /// How long the answer took to start.
    pub duration: Duration,
}

impl RequestRecord {
    /// The record as one line of `format`. Whatever the client sent is made printable, so a
    /// crafted path cannot forge log lines or reach a terminal raw.
    pub fn line(&self, format: LogFormat) -> String {
        match format {
            LogFormat::Common => format!(
                "{} - {} [{}] \"{} {} {}\" {} {}",
                self.remote.ip(),
                self.user.as_deref().map_or("-".into(), printable_field),
                common_time(self.time),
                printable_field(&self.method),
                printable_field(&self.target),
                self.protocol,
                self.status,
                self.bytes
            ),
            LogFormat::Json => serde_json::json!({
                "time": rfc3339(self.time),
                "remote": self.remote.ip().to_string(),
                "user": self.user,
                "method": self.method,
                "target": self.target,
                "protocol": self.protocol,
                "status": self.status,
                "bytes": self.bytes,
                "duration_ms": self.duration.as_secs_f64() * 1000.0,
            })
            .to_string(),
        }
    }
}

/// A field of a common-log line: printable, with no space or quote to break the line's shape.
fn printable_field(text: &str) -> String {
    printable(text).replace(' ', "%20").replace('"', "%22")
}

/// Year, month, day, hour, minute, second of a time, in UTC.
fn civil(time: SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Howard Hinnant's days-to-civil: exact for every date after 1970.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rest / 3600, rest / 60 % 60, rest % 60)
}

/// `06/Dec/2026:23:50:00 +0000`.
fn common_time(time: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s) = civil(time);
    format!(
        "{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000",
        MONTHS[(mo - 1) as usize]
    )
}

/// `2026-12-06T23:50:00Z`.
fn rfc3339(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(time);
    format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RequestRecord {
        RequestRecord {
            remote: "127.0.0.1:40000".parse().unwrap(),
            user: Some("alice".into()),
            // 2026-12-06T23:50:07Z
            time: UNIX_EPOCH + Duration::from_secs(1_796_601_007),
            method: "GET".into(),
            target: "/v2/a b/\"x\"\u{1b}[2J".into(),
            protocol: "HTTP/1.1".into(),
            status: 404,
            bytes: 123,
            duration: Duration::from_millis(5),
        }
    }

    #[test]
    fn lines_keep_their_shape_whatever_the_client_sent() {
        let line = record().line(LogFormat::Common);
        assert!(
            line.starts_with(
                "127.0.0.1 - alice [06/Dec/2026:23:50:07 +0000] \"GET /v2/a%20b/%22x%22"
            ),
            "{line}"
        );
        assert!(line.ends_with("HTTP/1.1\" 404 123"), "{line}");
        assert!(!line.contains('\u{1b}'), "{line}");
        let json: serde_json::Value =
            serde_json::from_str(&record().line(LogFormat::Json)).unwrap();
        assert_eq!(json["time"], "2026-12-06T23:50:07Z");
        assert_eq!(json["status"], 404);
        assert_eq!(json["user"], "alice");
    }

    #[test]
    fn dates_are_the_calendars() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // A leap day.
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            common_time(UNIX_EPOCH + Duration::from_secs(1_704_067_199)),
            "31/Dec/2023:23:59:59 +0000"
        );
    }
}
