//! The NVFlare release a deployment runs. Kits do not record it, and each release's
//! `deploy prepare` writes different kits, so the operator names it: `nvflare_version`
//! in the config or `--nvflare-version` (the option wins); default the current release.

use std::fmt;

/// A supported NVFlare minor release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NvflareRelease {
    /// 2.8.x: the kits flare-deploy wrote first.
    V2_8,
    /// 2.9.x: mTLS parent-job links, study_runtime.yaml v2, staged k8s workspaces, Slurm.
    V2_9,
}

/// The config key that names the release.
pub const RELEASE_KEY: &str = "nvflare_version";

impl NvflareRelease {
    pub const ALL: [NvflareRelease; 2] = [NvflareRelease::V2_8, NvflareRelease::V2_9];
    /// The current release.
    pub const DEFAULT: NvflareRelease = NvflareRelease::V2_9;

    pub fn as_str(self) -> &'static str {
        match self {
            NvflareRelease::V2_8 => "2.8",
            NvflareRelease::V2_9 => "2.9",
        }
    }

    /// `2.8` or `2.9`, or a full version of one (`2.9.0`, `2.8.1`) which selects its
    /// minor release.
    pub fn parse(text: &str) -> Option<NvflareRelease> {
        let mut parts = text.trim().splitn(3, '.');
        let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next());
        let patch_ok = patch.is_none_or(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit()));
        if major != "2" || !patch_ok {
            return None;
        }
        NvflareRelease::ALL.into_iter().find(|r| r.as_str()[2..] == *minor)
    }

    /// `2.8, 2.9`, for messages.
    pub fn supported_list() -> String {
        NvflareRelease::ALL.map(NvflareRelease::as_str).join(", ")
    }

    /// `2.8 or 2.9`, for messages.
    pub fn choices() -> String {
        let names = NvflareRelease::ALL.map(NvflareRelease::as_str);
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        }
    }
}

impl fmt::Display for NvflareRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `schema` with the engine's `nvflare_version` key among its top-level properties:
/// every target's config may carry it.
pub fn with_release_key(mut schema: serde_json::Value) -> serde_json::Value {
    let doc = serde_json::json!({
        "description": format!(
            "The NVFlare release the site runs ({}, or a full version such as 2.9.0); `prepare --nvflare-version` overrides it. Kits do not record their release.",
            NvflareRelease::choices()
        ),
        "type": ["string", "number", "null"],
        "pattern": format!(
            "^2\\.({})(\\.[0-9].*)?$",
            NvflareRelease::ALL.map(|r| &r.as_str()[2..]).join("|")
        ),
        "default": NvflareRelease::DEFAULT.as_str(),
    });
    if let Some(properties) = schema.get_mut("properties").and_then(serde_json::Value::as_object_mut) {
        properties.insert(RELEASE_KEY.to_string(), doc);
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::NvflareRelease::{self, V2_8, V2_9};

    #[test]
    fn minor_and_full_versions() {
        for (text, expected) in [
            ("2.8", Some(V2_8)),
            ("2.9", Some(V2_9)),
            ("2.9.0", Some(V2_9)),
            ("2.8.1", Some(V2_8)),
            (" 2.9 ", Some(V2_9)),
            ("2.9.0rc1", Some(V2_9)),
            ("2.10", None),
            ("2.9x", None),
            ("3.0", None),
            ("2", None),
            ("2.9.x", None),
            ("", None),
        ] {
            assert_eq!(NvflareRelease::parse(text), expected, "{text:?}");
        }
        assert_eq!(NvflareRelease::choices(), "2.8 or 2.9");
    }
}
