//! Seeded mutations for the robustness tests: a small random generator, odd values, JSON and
//! byte mutations, bounded runs of the binary, the checks every case passes, and a sandbox
//! whose files outside the bundle must not change.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// SplitMix64: small, seeded, the same sequence on every machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

pub fn cases(default: usize) -> usize {
    std::env::var("FERRY_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seed every reader's sequence starts from (`FERRY_FUZZ_SEED` replays a failure).
pub fn seed() -> u64 {
    std::env::var("FERRY_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_f00d)
}

/// Odd values a field may be given.
pub fn odd_strings() -> Vec<String> {
    vec![
        String::new(),
        "../../../etc/passwd".into(),
        "/dev/zero".into(),
        "platform.tar".into(),
        "a/../../b".into(),
        "x".repeat(70_000),
        "a\u{1b}[31mred\u{1b}[0m\nforged".into(),
        "sha256:zz".into(),
        format!("sha256:{}", "0".repeat(64)),
        "UPPER/Case".into(),
        "\u{202e}reversed".into(),
    ]
}

pub fn odd_numbers() -> Vec<Value> {
    vec![
        Value::from(0),
        Value::from(1),
        Value::from(-1),
        Value::from(u64::MAX),
        Value::from(1u64 << 40),
        Value::from(i64::MIN),
        serde_json::json!(1e300),
        serde_json::json!(0.5),
    ]
}

/// Changes one value somewhere in a JSON document: a number or string replaced by an odd one,
/// a key removed, an array emptied or an element doubled, a value's type changed.
pub fn mutate_json(value: &mut Value, rng: &mut Rng) {
    let mut paths = Vec::new();
    fn collect(v: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let mut p = path.clone();
                    p.push(k.clone());
                    collect(child, p, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let mut p = path.clone();
                    p.push(i.to_string());
                    collect(child, p, out);
                }
            }
            _ => {}
        }
    }
    collect(value, Vec::new(), &mut paths);
    let path = rng.pick(&paths).clone();
    let mut target = &mut *value;
    for part in &path {
        target = match target {
            Value::Object(map) => map.get_mut(part).unwrap(),
            Value::Array(items) => &mut items[part.parse::<usize>().unwrap()],
            _ => unreachable!(),
        };
    }
    match (rng.below(6), &mut *target) {
        (0, Value::Object(map)) if !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).unwrap().clone();
            map.remove(&key);
        }
        (1, Value::Array(items)) if !items.is_empty() => {
            let i = rng.below(items.len());
            let copy = items[i].clone();
            items.push(copy);
        }
        (2, Value::Array(items)) => items.clear(),
        (_, Value::Number(_)) => *target = rng.pick(&odd_numbers()).clone(),
        (_, Value::String(_)) => *target = Value::from(rng.pick(&odd_strings()).clone()),
        (3, _) => *target = Value::Null,
        (4, _) => *target = Value::from(rng.pick(&odd_strings()).clone()),
        _ => *target = rng.pick(&odd_numbers()).clone(),
    }
}

/// Flips, truncates or pads raw bytes.
pub fn mutate_bytes(bytes: &mut Vec<u8>, rng: &mut Rng) {
    match rng.below(4) {
        0 | 1 => {
            for _ in 0..=rng.below(4) {
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            let keep = rng.below(bytes.len() + 1);
            bytes.truncate(keep);
        }
        _ => {
            let at = rng.below(bytes.len() + 1);
            let junk: Vec<u8> = (0..=rng.below(600)).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, junk);
        }
    }
}

/// Every file under `dir` with its size and content digest, to tell what changed.
pub fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(listing) = std::fs::read_dir(dir) else {
            return;
        };
        for item in listing.flatten() {
            let path = item.path();
            if path.starts_with(skip) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(path.clone(), "dir".into());
                walk(&path, skip, out);
            } else {
                let content = std::fs::read(&path).unwrap_or_default();
                out.insert(
                    path,
                    format!("{} {}", meta.len(), ferry::digest::Digest::of(&content)),
                );
            }
        }
    }
    walk(dir, skip, &mut out);
    out
}

/// Runs a command for at most `limit`; `None` when it had to be killed.
pub fn bounded(cmd: &mut Command, limit: Duration) -> (Option<i32>, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let lossy = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (
        code.or(if started.elapsed() > limit {
            None
        } else {
            Some(-1)
        }),
        lossy(out.join().unwrap()),
        lossy(err.join().unwrap()),
    )
}

/// The checks every case must pass.
pub fn judge(label: &str, result: (Option<i32>, String, String), allowed: &[i32]) {
    let (code, stdout, stderr) = result;
    let Some(code) = code else {
        panic!("{label}: did not end in time\n{stderr}");
    };
    assert!(
        !stderr.contains("panicked") && !stdout.contains("panicked"),
        "{label}: panicked\n{stderr}"
    );
    assert!(
        allowed.contains(&code),
        "{label}: exit {code}\n{stdout}\n{stderr}"
    );
    if code != 0 {
        assert!(
            stderr.contains("error:") || stderr.contains("problem:"),
            "{label}: exit {code} without a message\n{stderr}"
        );
    }
    assert!(
        !stderr.contains('\u{1b}') && !stdout.contains('\u{1b}'),
        "{label}: an escape sequence reached the terminal"
    );
}

pub const LIMIT: Duration = Duration::from_secs(60);

/// A place for one case: the bundle, a home, and files outside that must not change.
pub struct Sandbox {
    /// The sandbox's root: `bundle/`, `home/`, `outside/`.
    pub root: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        let outside = root.path().join("outside");
        std::fs::create_dir_all(outside.join("d")).unwrap();
        for name in [
            "notes.txt",
            "platform.tar",
            "state.json",
            "journal",
            "d/x.tar",
        ] {
            std::fs::write(outside.join(name), format!("keep {name}")).unwrap();
        }
        std::fs::create_dir(root.path().join("home")).unwrap();
        Sandbox { root }
    }

    pub fn bundle(&self) -> PathBuf {
        self.root.path().join("bundle")
    }

    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    pub fn outside(&self) -> BTreeMap<PathBuf, String> {
        snapshot(self.root.path(), &self.bundle())
    }
}
