//! Tag selection as flux mirror defines it: a regex prefilter (whose `extract` replacement
//! becomes the comparison key), a semver range on the key, a sort (semver, alphabetical or
//! numerical), highest first, and a limit (default 1; 0 = all). Every tag left out is kept with
//! the reason, for the dry run.

use std::cmp::Ordering;

use regex::Regex;
use semver::Version;

use super::config::Selector;
use crate::source::VersionSet;

/// What a selection kept and what it left out, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The tags taken, highest first.
    pub kept: Vec<String>,
    /// The others, each with its reason.
    pub dropped: Vec<(String, String)>,
}

/// A selector checked once.
#[derive(Debug, Clone)]
pub struct TagSelector {
    regex: Option<(Regex, Option<String>)>,
    range: Option<VersionSet>,
    sort: Sort,
    limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    Semver,
    Alphabetical,
    Numerical,
}

enum Key {
    Semver(Version),
    Text(String),
    Number(f64),
}

impl TagSelector {
    /// Checks a selector: the regex compiles, the range parses, the sort is known.
    pub fn new(selector: &Selector) -> Result<TagSelector, String> {
        let regex = match &selector.regex {
            Some(r) => Some((
                Regex::new(&r.pattern)
                    .map_err(|e| format!("selector.regex.pattern is not a regex: {e}"))?,
                r.extract.clone(),
            )),
            None => None,
        };
        let range = match &selector.semver {
            Some(text) => Some(flux_range(text)?),
            None => None,
        };
        let sort = match selector.sort_by.as_deref() {
            None | Some("semver") => Sort::Semver,
            Some("alphabetical") => Sort::Alphabetical,
            Some("numerical") => Sort::Numerical,
            Some(other) => {
                return Err(format!(
                    "selector.sortBy '{other}' is not semver, alphabetical or numerical"
                ));
            }
        };
        let limit = match selector.limit.unwrap_or(1) {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        Ok(TagSelector {
            regex,
            range,
            sort,
            limit,
        })
    }

    /// Chooses among `tags`.
    pub fn select(&self, tags: &[String]) -> Selection {
        let mut selection = Selection::default();
        let mut candidates: Vec<(String, Key)> = Vec::new();
        for tag in tags {
            let key = match &self.regex {
                None => tag.clone(),
                Some((regex, extract)) => match regex.captures(tag) {
                    None => {
                        selection
                            .dropped
                            .push((tag.clone(), "does not match the regex".into()));
                        continue;
                    }
                    Some(captures) => match extract {
                        None => tag.clone(),
                        Some(template) => {
                            let mut key = String::new();
                            captures.expand(template, &mut key);
                            key
                        }
                    },
                },
            };
            let version = parse_version(&key);
            if let Some(range) = &self.range {
                match &version {
                    None => {
                        selection
                            .dropped
                            .push((tag.clone(), format!("'{key}' is not a semantic version")));
                        continue;
                    }
                    Some(v) if !range.matches(v) => {
                        selection
                            .dropped
                            .push((tag.clone(), "outside the semver range".into()));
                        continue;
                    }
                    Some(_) => {}
                }
            }
            let key = match self.sort {
                Sort::Semver => match version {
                    Some(v) => Key::Semver(v),
                    None => {
                        selection.dropped.push((
                            tag.clone(),
                            format!("'{key}' is not a semantic version (sortBy semver)"),
                        ));
                        continue;
                    }
                },
                Sort::Alphabetical => Key::Text(key),
                Sort::Numerical => match key.parse::<f64>() {
                    Ok(n) if n.is_finite() => Key::Number(n),
                    _ => {
                        selection.dropped.push((
                            tag.clone(),
                            format!("'{key}' is not a number (sortBy numerical)"),
                        ));
                        continue;
                    }
                },
            };
            candidates.push((tag.clone(), key));
        }
        // Highest first; equal keys by tag, so the result does not depend on the registry's
        // listing order.
        candidates.sort_by(|(ta, a), (tb, b)| {
            let by_key = match (a, b) {
                (Key::Semver(a), Key::Semver(b)) => a.cmp(b),
                (Key::Text(a), Key::Text(b)) => a.cmp(b),
                (Key::Number(a), Key::Number(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
                _ => Ordering::Equal,
            };
            by_key.reverse().then_with(|| ta.cmp(tb))
        });
        for (i, (tag, _)) in candidates.into_iter().enumerate() {
            if i < self.limit {
                selection.kept.push(tag);
            } else {
                selection
                    .dropped
                    .push((tag, format!("beyond the limit of {}", self.limit)));
            }
        }
        selection
    }
}

/// A tag (or key) as a version: `1.2.3` or `v1.2.3`.
fn parse_version(text: &str) -> Option<Version> {
    Version::parse(text.strip_prefix('v').unwrap_or(text)).ok()
}

/// flux mirror's semver ranges (Masterminds syntax): a bare version means exactly it, `6.x`
/// and `*` are wildcards, `>=2.7.0 <3.0.0` is an AND, `||` an OR.
pub fn flux_range(text: &str) -> Result<VersionSet, String> {
    let exact: Vec<String> = text
        .split("||")
        .map(|alternative| {
            alternative
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .map(|token| {
                    let bare = token.trim_start_matches(['v', 'V']);
                    if bare.starts_with(|c: char| c.is_ascii_digit())
                        && !bare.contains(['x', 'X', '*'])
                    {
                        format!("={bare}")
                    } else {
                        token.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    VersionSet::parse(&exact.join(" || ")).map_err(|e| format!("selector.semver: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imageset::config::RegexSelector;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn semver_is_the_default_and_keeps_one() {
        let selector = TagSelector::new(&Selector::default()).unwrap();
        let got = selector.select(&tags(&["1.2.0", "v1.10.0", "latest", "1.9.9"]));
        assert_eq!(got.kept, ["v1.10.0"]);
        assert_eq!(got.dropped.len(), 3);
    }

    #[test]
    fn a_range_and_no_limit() {
        let selector = TagSelector::new(&Selector {
            semver: Some("6.x".into()),
            limit: Some(0),
            ..Selector::default()
        })
        .unwrap();
        let got = selector.select(&tags(&["5.9.0", "6.0.0", "6.1.2", "7.0.0", "6.0.0-rc.1"]));
        assert_eq!(got.kept, ["6.1.2", "6.0.0"]);
        assert!(
            got.dropped
                .iter()
                .any(|(t, r)| t == "7.0.0" && r.contains("range"))
        );
        let exact = TagSelector::new(&Selector {
            semver: Some("6.0.0".into()),
            limit: Some(0),
            ..Selector::default()
        })
        .unwrap();
        assert_eq!(exact.select(&tags(&["6.0.0", "6.1.2"])).kept, ["6.0.0"]);
    }

    #[test]
    fn an_extracted_timestamp_sorts_numerically() {
        let selector = TagSelector::new(&Selector {
            regex: Some(RegexSelector {
                pattern: r"^.+-[0-9a-f]+-(?P<ts>\d+)$".into(),
                extract: Some("$ts".into()),
            }),
            sort_by: Some("numerical".into()),
            limit: Some(2),
            ..Selector::default()
        })
        .unwrap();
        let got = selector.select(&tags(&[
            "main-abc123-1700000000",
            "main-def456-1700000500",
            "main-0a0a0a-999",
            "latest",
        ]));
        assert_eq!(
            got.kept,
            ["main-def456-1700000500", "main-abc123-1700000000"]
        );
        assert!(
            got.dropped
                .iter()
                .any(|(t, r)| t == "latest" && r.contains("regex"))
        );
        assert!(
            got.dropped
                .iter()
                .any(|(t, r)| t == "main-0a0a0a-999" && r.contains("limit"))
        );
    }

    #[test]
    fn alphabetical_order_suits_timestamps_in_tags() {
        let selector = TagSelector::new(&Selector {
            sort_by: Some("alphabetical".into()),
            limit: Some(2),
            ..Selector::default()
        })
        .unwrap();
        let got = selector.select(&tags(&[
            "RELEASE.2024-01-02",
            "RELEASE.2024-11-12",
            "RELEASE.2023-12-31",
        ]));
        assert_eq!(got.kept, ["RELEASE.2024-11-12", "RELEASE.2024-01-02"]);
    }

    #[test]
    fn bad_selectors_are_named() {
        let err = TagSelector::new(&Selector {
            sort_by: Some("random".into()),
            ..Selector::default()
        })
        .unwrap_err();
        assert!(err.contains("random"), "{err}");
        assert!(flux_range(">=").is_err());
    }
}
