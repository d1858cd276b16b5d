//! Which platform versions a pull takes: every version between the floor channel (rock-solid)
//! and the ceiling channel (alpha), the highest patch of each minor, plus every channel's
//! current version. `--since-version` can only lower the floor.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;

use super::filter::tag_version;

/// What a channel image says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelState {
    /// The version it points to.
    pub version: Version,
    /// True when the publisher stopped the channel.
    pub suspend: bool,
}

/// The version tags to take (as `vX.Y.Z`) from the release repository's `tags` and the
/// channels found. Without the floor or the ceiling channel only the channel versions count.
pub fn platform_versions(
    tags: &[String],
    channels: &BTreeMap<String, ChannelState>,
    floor: &str,
    ceiling: &str,
    since: Option<&Version>,
) -> BTreeSet<Version> {
    let mut chosen: BTreeSet<Version> = channels.values().map(|c| c.version.clone()).collect();
    let (Some(floor), Some(ceiling)) = (channels.get(floor), channels.get(ceiling)) else {
        return chosen;
    };
    let low = match since {
        Some(since) if *since < floor.version => since.clone(),
        _ => floor.version.clone(),
    };
    let mut highest_patch: BTreeMap<(u64, u64), Version> = BTreeMap::new();
    for version in tags.iter().filter_map(|t| tag_version(t)) {
        if !version.pre.is_empty() || version < low || version > ceiling.version {
            continue;
        }
        let slot = highest_patch
            .entry((version.major, version.minor))
            .or_insert_with(|| version.clone());
        if version > *slot {
            *slot = version;
        }
    }
    chosen.extend(highest_patch.into_values());
    chosen
}

/// `v1.2.3`.
pub fn version_tag(version: &Version) -> String {
    format!("v{version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        tag_version(s).unwrap()
    }

    fn tags() -> Vec<String> {
        [
            "v1.60.0",
            "v1.60.4",
            "v1.61.0",
            "v1.61.2",
            "v1.62.0",
            "v1.62.1",
            "v1.62.3",
            "v1.63.0",
            "v1.63.1",
            "v1.64.0",
            "v1.64.0-rc.1",
            "v1.65.0",
            "alpha",
            "stable",
            "latest",
        ]
        .map(String::from)
        .to_vec()
    }

    fn channels() -> BTreeMap<String, ChannelState> {
        [
            ("alpha", "v1.64.0"),
            ("beta", "v1.63.1"),
            ("early-access", "v1.63.0"),
            ("stable", "v1.62.1"),
            ("rock-solid", "v1.61.2"),
        ]
        .map(|(c, ver)| {
            (
                c.to_string(),
                ChannelState {
                    version: v(ver),
                    suspend: false,
                },
            )
        })
        .into()
    }

    fn chosen(since: Option<&str>) -> Vec<String> {
        platform_versions(
            &tags(),
            &channels(),
            "rock-solid",
            "alpha",
            since.map(v).as_ref(),
        )
        .iter()
        .map(version_tag)
        .collect()
    }

    #[test]
    fn highest_patch_per_minor_between_rock_solid_and_alpha_plus_channels() {
        // v1.62.1 is stable's version: kept although v1.62.3 is the highest 1.62 patch.
        assert_eq!(
            chosen(None),
            [
                "v1.61.2", "v1.62.1", "v1.62.3", "v1.63.0", "v1.63.1", "v1.64.0"
            ]
        );
    }

    #[test]
    fn since_below_rock_solid_lowers_the_floor() {
        assert_eq!(
            chosen(Some("1.60.2")),
            [
                "v1.60.4", "v1.61.2", "v1.62.1", "v1.62.3", "v1.63.0", "v1.63.1", "v1.64.0"
            ]
        );
        // The floor itself is only taken when it survives the highest-patch rule.
        assert!(!chosen(Some("v1.60.0")).contains(&"v1.60.0".to_string()));
    }

    #[test]
    fn since_above_rock_solid_changes_nothing() {
        assert_eq!(chosen(Some("v1.63.0")), chosen(None));
    }

    #[test]
    fn without_a_ceiling_channel_only_channel_versions_count() {
        let mut channels = channels();
        channels.remove("alpha");
        let got: Vec<String> = platform_versions(&tags(), &channels, "rock-solid", "alpha", None)
            .iter()
            .map(version_tag)
            .collect();
        assert_eq!(got, ["v1.61.2", "v1.62.1", "v1.63.0", "v1.63.1"]);
    }
}
