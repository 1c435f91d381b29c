//! The YAML runtime config: loading, the `runtime:` key, and small typed helpers that
//! validate raw values in the reference's order with the reference's messages.
//!
//! YAML is read as YAML 1.2 (`yes` is a string, `0o17` an integer), unlike the
//! reference's PyYAML (YAML 1.1).

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::error::{Error, Result, FIX_CONFIG_HINT};
use crate::patch::comm::InternalSecurity;
use crate::pyrepr;
use crate::release::{NvflareRelease, RELEASE_KEY};

/// Largest config file accepted (1 MiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Deepest `[ ]` / `{ }` nesting accepted. The YAML parser takes quadratic time on
/// absurd nesting, so it is refused before parsing.
pub const MAX_FLOW_NESTING: usize = 64;

/// Whether flow collections nest deeper than `limit` outside quoted scalars and comments
/// (a conservative scan; real configs nest two or three levels).
fn flow_nesting_exceeds(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut previous = '\n';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some('\'') if c == '\'' => {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                } else {
                    quote = None;
                }
            }
            Some('"') if c == '\\' => {
                chars.next();
            }
            Some('"') if c == '"' => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' if !previous.is_alphanumeric() => quote = Some(c),
                '#' if previous.is_whitespace() => {
                    for skipped in chars.by_ref() {
                        if skipped == '\n' {
                            break;
                        }
                    }
                    previous = '\n';
                    continue;
                }
                '[' | '{' => {
                    depth += 1;
                    if depth > limit {
                        return true;
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        previous = c;
    }
    false
}

fn parse_error(detail: &dyn std::fmt::Display) -> Error {
    Error::invalid_config(
        format!("Failed to parse config file: {detail}"),
        "Ensure the file is valid YAML.",
    )
}

/// A loaded config file: a YAML mapping with a string `runtime:` key.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub path: PathBuf,
    pub root: Mapping,
    /// sha256 of the config text, for the output's receipt.
    pub sha256: String,
    /// The NVFlare release: `nvflare_version` (taken out of `root`, which holds the
    /// target's keys only), or the default; `prepare --nvflare-version` overrides it.
    pub release: NvflareRelease,
}

impl RuntimeConfig {
    /// Reads and parses the file. `is_known` says whether a runtime exists (it is
    /// called once, with the config's `runtime:`);
    /// `runtime_names` lists them for the messages (only called on error).
    pub fn load(
        path: &Path,
        is_known: impl FnMut(&str) -> bool,
        runtime_names: impl Fn() -> Vec<String>,
    ) -> Result<RuntimeConfig> {
        if !path.is_file() {
            return Err(Error::new(
                crate::ErrorCode::ConfigNotFound,
                format!("Config file not found: {}", path.display()),
                "Provide a YAML runtime config file.",
            ));
        }
        // A runtime config is a few hundred bytes; refuse anything huge before reading it.
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size > MAX_CONFIG_BYTES {
            return Err(Error::invalid_config(
                format!(
                    "Config file is too large: {} ({size} bytes; the limit is {MAX_CONFIG_BYTES}).",
                    path.display()
                ),
                "A runtime config is a small YAML file; check that --config names the right file.",
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| parse_error(&e))?;
        Self::parse(&text, path, is_known, runtime_names)
    }

    /// Parses config text (`path` is only used in messages and kept in the result).
    pub fn parse(
        text: &str,
        path: &Path,
        mut is_known: impl FnMut(&str) -> bool,
        runtime_names: impl Fn() -> Vec<String>,
    ) -> Result<RuntimeConfig> {
        if flow_nesting_exceeds(text, MAX_FLOW_NESTING) {
            return Err(Error::invalid_config(
                format!(
                    "Config nests [ ] or {{ }} more than {MAX_FLOW_NESTING} levels deep: {}",
                    path.display()
                ),
                "A runtime config is a small YAML file; check that --config names the right file.",
            ));
        }
        let value: Value = serde_yaml::from_str(text).map_err(|e| parse_error(&e))?;
        let choices = || {
            let names = runtime_names();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            runtime_choices(&names)
        };
        let Value::Mapping(root) = value else {
            return Err(Error::invalid_config(
                "Runtime config must be a YAML mapping.",
                format!("Add {}.", choices()),
            ));
        };
        let known = root.get("runtime").and_then(Value::as_str).is_some_and(&mut is_known);
        if !known {
            // The reference's message (scripts match it); the hint says what was given.
            return Err(Error::invalid_config(
                format!("Config must contain {}.", choices()),
                unknown_runtime_hint(root.get("runtime"), &runtime_names()),
            ));
        }
        let mut root = root;
        let release = take_release(&mut root)?;
        Ok(RuntimeConfig {
            path: path.to_path_buf(),
            root,
            sha256: crate::receipt::sha256_hex(text.as_bytes()),
            release,
        })
    }

    /// The value of `runtime:` (checked by `load`).
    pub fn runtime(&self) -> &str {
        self.root.get("runtime").and_then(Value::as_str).unwrap_or_default()
    }
}

/// Removes `nvflare_version` from the config and reads it: a string (`"2.9"`,
/// `"2.9.0"`) or a number (`2.9` unquoted); `null` or absent means the default.
fn take_release(root: &mut Mapping) -> Result<NvflareRelease> {
    let value = root.remove(RELEASE_KEY);
    let text = match &value {
        None | Some(Value::Null) => return Ok(NvflareRelease::DEFAULT),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => pyrepr::repr(other),
    };
    NvflareRelease::parse(&text).ok_or_else(|| {
        Error::invalid_config(
            format!(
                "{RELEASE_KEY} must be a supported NVFlare release ({}, or a full version such as 2.9.0), got {}.",
                NvflareRelease::choices(),
                value.as_ref().map_or_else(String::new, pyrepr::repr)
            ),
            format!(
                "Set {RELEASE_KEY} to the release the site runs (supported: {}).",
                NvflareRelease::supported_list()
            ),
        )
    })
}

/// The hint for a missing or unknown `runtime:`: the value given, a close known name,
/// and where plugin runtimes are found.
fn unknown_runtime_hint(given: Option<&Value>, names: &[String]) -> String {
    let known: Vec<&str> = names.iter().map(String::as_str).collect();
    let listed = known.join(", ");
    let plugin = format!(
        "A plugin runtime <name> is the executable flare-deploy-target-<name> in {} or on PATH.",
        crate::plugin::PLUGIN_PATH_ENV
    );
    match given {
        None | Some(Value::Null) => format!("Set a supported runtime ({listed}) with a runtime: key. {plugin}"),
        Some(Value::String(value)) => {
            let guess = did_you_mean(value, &known)
                .map(|g| format!(" Did you mean '{g}'?"))
                .unwrap_or_default();
            format!(
                "Set a supported runtime: {} is not one of {listed}.{guess} {plugin}",
                pyrepr::repr(&Value::String(value.clone()))
            )
        }
        Some(other) => format!(
            "Set a supported runtime: runtime must be a name ({listed}), got {}. {plugin}",
            pyrepr::repr(other)
        ),
    }
}

/// The candidate closest to `given` when it is close enough to be a likely typo: one
/// edit away (`k9s`, `docker `), the same name in another case, or a normalised
/// Damerau-Levenshtein similarity of at least 0.7 (`docker_imag`).
pub fn did_you_mean<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let given = given.to_lowercase();
    candidates
        .iter()
        .filter_map(|c| {
            let candidate = c.to_lowercase();
            let edits = strsim::damerau_levenshtein(&given, &candidate);
            let similarity = strsim::normalized_damerau_levenshtein(&given, &candidate);
            (edits <= 1 || similarity >= 0.7).then_some((*c, edits))
        })
        .min_by_key(|(_, edits)| *edits)
        .map(|(c, _)| c)
}

/// "runtime: docker or runtime: k8s" for the registered names, like the reference's text.
pub fn runtime_choices(names: &[&str]) -> String {
    let items: Vec<String> = names.iter().map(|n| format!("runtime: {n}")).collect();
    match items.len() {
        0 => "a runtime: key".to_string(),
        1 => items[0].clone(),
        2 => format!("{} or {}", items[0], items[1]),
        n => format!("{}, or {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// NVFlare 2.9's `parent.internal_connection_security`: `mtls` (the default; `null`
/// too, as for every key with a default) or `clear`.
pub fn internal_connection_security(parent: &Mapping) -> Result<InternalSecurity> {
    match parent.get("internal_connection_security") {
        None | Some(Value::Null) => Ok(InternalSecurity::Mtls),
        Some(Value::String(s)) if s == "mtls" => Ok(InternalSecurity::Mtls),
        Some(Value::String(s)) if s == "clear" => Ok(InternalSecurity::Clear),
        Some(_) => Err(Error::invalid_config(
            "parent.internal_connection_security must be 'clear' or 'mtls'.",
            "Set parent.internal_connection_security to 'clear' or 'mtls'.",
        )),
    }
}

/// Fails with the reference's message when `map` has keys outside `allowed`.
pub fn allowed_keys(map: &Mapping, allowed: &[&str], where_: &str) -> Result<()> {
    let unknown: Vec<&Value> = map
        .keys()
        .filter(|k| !k.as_str().is_some_and(|s| allowed.contains(&s)))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    // The reference's hint, then a suggestion for each key that looks like a typo.
    let suggestions: Vec<String> = unknown
        .iter()
        .filter_map(|k| {
            let key = k.as_str()?;
            did_you_mean(key, allowed).map(|g| format!("'{key}': did you mean '{g}'?"))
        })
        .collect();
    let mut hint = "Remove or rename unsupported keys.".to_string();
    if !suggestions.is_empty() {
        hint.push(' ');
        hint.push_str(&suggestions.join(" "));
    }
    Err(Error::invalid_config(
        format!("Unknown keys in {where_}: {}", pyrepr::sorted_list(&unknown)),
        hint,
    ))
}

/// A required section (`parent:`): it must be a mapping. `needs` names its required
/// keys for the hint (e.g. `parent.docker_image`).
pub fn required_section(map: &Mapping, key: &str, needs: &str) -> Result<Mapping> {
    match map.get(key) {
        Some(Value::Mapping(m)) => Ok(m.clone()),
        None | Some(Value::Null) => Err(Error::invalid_config(
            format!("{key} must be a YAML mapping."),
            format!("Add a {key}: section to the runtime config; {needs} is required."),
        )),
        _ => Err(Error::invalid_config(
            format!("{key} must be a YAML mapping."),
            format!("{FIX_CONFIG_HINT} {key} must hold keys ({needs} is required), not a single value."),
        )),
    }
}

/// An optional section (`job_launcher:`): absent or empty (`job_launcher:` with no
/// value) means an empty mapping.
pub fn optional_section(map: &Mapping, key: &str) -> Result<Mapping> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Mapping::new()),
        Some(Value::Mapping(m)) => Ok(m.clone()),
        Some(_) => Err(Error::invalid_config(
            format!("{key} must be a YAML mapping."),
            FIX_CONFIG_HINT,
        )),
    }
}

/// A required non-empty string.
pub fn required_str(map: &Mapping, key: &str, where_: &str) -> Result<String> {
    match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(non_empty_string_error(where_, key)),
    }
}

/// An optional non-empty string; absent or null is `None`.
pub fn optional_str(map: &Mapping, key: &str, where_: &str) -> Result<Option<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(non_empty_string_error(where_, key)),
    }
}

fn non_empty_string_error(where_: &str, key: &str) -> Error {
    Error::invalid_config(format!("{where_}.{key} must be a non-empty string."), FIX_CONFIG_HINT)
}

/// An optional mapping; absent or null is `None`.
pub fn optional_mapping(map: &Mapping, key: &str, where_: &str) -> Result<Option<Mapping>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Mapping(m)) => Ok(Some(m.clone())),
        Some(_) => Err(Error::invalid_config(
            format!("{where_}.{key} must be a mapping."),
            FIX_CONFIG_HINT,
        )),
    }
}

/// An optional mapping converted to JSON for writing into kit files; absent or null is
/// `None`.
pub fn optional_json_object(
    map: &Mapping,
    key: &str,
    where_: &str,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    let Some(mapping) = optional_mapping(map, key, where_)? else {
        return Ok(None);
    };
    match yaml_to_json(&Value::Mapping(mapping), &format!("{where_}.{key}"))? {
        serde_json::Value::Object(object) => Ok(Some(object)),
        _ => Ok(None),
    }
}

/// An optional integer; absent or null is `None`. Booleans are not integers.
pub fn optional_int(map: &Mapping, key: &str, where_: &str) -> Result<Option<i64>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(_) => Err(Error::invalid_config(
            format!("{where_}.{key} must be an integer."),
            FIX_CONFIG_HINT,
        )),
    }
}

/// Converts a YAML value to JSON for writing into kit files. Mapping keys become strings
/// the way Python's `json.dumps` converts them; values JSON cannot hold are refused.
pub fn yaml_to_json(value: &Value, where_: &str) -> Result<serde_json::Value> {
    Ok(match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| {
                        Error::invalid_config(
                            format!(
                                "{where_} contains a number JSON cannot represent: {}",
                                pyrepr::repr(value)
                            ),
                            FIX_CONFIG_HINT,
                        )
                    })?
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Sequence(items) => {
            serde_json::Value::Array(items.iter().map(|v| yaml_to_json(v, where_)).collect::<Result<_>>()?)
        }
        Value::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Value::String(s) => s.clone(),
                    Value::Null => "null".into(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(_) => match yaml_to_json(k, where_)? {
                        serde_json::Value::Number(n) => n.to_string(),
                        other => other.to_string(),
                    },
                    _ => {
                        return Err(Error::invalid_config(
                            format!("{where_} has a key that is not a string: {}", pyrepr::repr(k)),
                            FIX_CONFIG_HINT,
                        ))
                    }
                };
                out.insert(key, yaml_to_json(v, where_)?);
            }
            serde_json::Value::Object(out)
        }
        Value::Tagged(tagged) => yaml_to_json(&tagged.value, where_)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_choices_reads_like_the_reference() {
        assert_eq!(runtime_choices(&["docker", "k8s"]), "runtime: docker or runtime: k8s");
        assert_eq!(runtime_choices(&["docker"]), "runtime: docker");
        assert_eq!(
            runtime_choices(&["docker", "k8s", "slurm"]),
            "runtime: docker, runtime: k8s, or runtime: slurm"
        );
    }

    #[test]
    fn unknown_keys_are_sorted_python_reprs() {
        let map: Mapping = serde_yaml::from_str("runtime: docker\nzzz: 1\nbogus: 2\n1: x\n").expect("yaml");
        let err = allowed_keys(&map, &["runtime"], "docker config").expect_err("unknown keys");
        assert_eq!(err.message, "Unknown keys in docker config: [1, 'bogus', 'zzz']");
        assert_eq!(err.hint, "Remove or rename unsupported keys.");
    }

    #[test]
    fn close_unknown_keys_get_a_suggestion() {
        let map: Mapping = serde_yaml::from_str(
            "docker_imag: x
netwerk: y
zzz: 1
",
        )
        .expect("yaml");
        let err = allowed_keys(&map, &["docker_image", "network"], "parent").expect_err("unknown keys");
        assert_eq!(
            err.hint,
            "Remove or rename unsupported keys. 'docker_imag': did you mean 'docker_image'? \
             'netwerk': did you mean 'network'?"
        );
        assert_eq!(did_you_mean("Docker", &["docker", "k8s"]), Some("docker"));
        assert_eq!(did_you_mean("kubernetes", &["docker", "k8s"]), None);
        assert_eq!(did_you_mean("k9s", &["docker", "k8s"]), Some("k8s"));
        assert_eq!(did_you_mean("docker ", &["docker", "k8s"]), Some("docker"));
        assert_eq!(did_you_mean("zzz", &["docker_image", "network"]), None);
    }

    #[test]
    fn deep_flow_nesting_is_detected() {
        assert!(!flow_nesting_exceeds("a: [[1], {b: [2]}]\nc: '[[[['\n# [[[[[\n", 2 + 1));
        assert!(flow_nesting_exceeds(&format!("a: {}", "[".repeat(65)), 64));
        assert!(!flow_nesting_exceeds(&format!("a: \"{}\"", "[".repeat(65)), 64));
    }

    #[test]
    fn yaml_1_2_typing() {
        let map: Mapping = serde_yaml::from_str("a: yes\nb: 0o17\nc: true\nd: ~\n").expect("yaml");
        assert_eq!(map.get("a"), Some(&Value::String("yes".into())));
        assert_eq!(optional_int(&map, "b", "x").expect("int"), Some(15));
        assert!(optional_int(&map, "c", "x").is_err(), "booleans are not integers");
        assert_eq!(optional_str(&map, "d", "x").expect("null"), None);
    }
}
