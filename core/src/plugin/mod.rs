//! Executable plugins: a runtime that is not linked in is an executable
//! `flare-deploy-target-<name>` in `FLARE_DEPLOY_PLUGIN_PATH` or on `PATH`, speaking a
//! versioned JSON protocol over stdin/stdout (see `docs/plugin-protocol.md`). The engine
//! does everything else exactly as for linked targets.

mod actions;
mod confine;
mod edits;
mod schema;
mod session;
mod target;
mod watch;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, Result};

pub use confine::fully_confined;
pub use session::{Session, PROTOCOL_VERSION, PROTOCOL_VERSIONS};
pub use target::ExecutableTarget;

/// File name prefix of plugin executables.
pub const EXECUTABLE_PREFIX: &str = "flare-deploy-target-";
/// Extra directories searched before `PATH` (colon-separated).
pub const PLUGIN_PATH_ENV: &str = "FLARE_DEPLOY_PLUGIN_PATH";
/// Seconds a plugin may take to answer one request (default 60).
pub const PLUGIN_TIMEOUT_ENV: &str = "FLARE_DEPLOY_PLUGIN_TIMEOUT";

/// `FLARE_DEPLOY_PLUGIN_PATH` entries, then `PATH` entries.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for var in [PLUGIN_PATH_ENV, "PATH"] {
        if let Some(value) = std::env::var_os(var) {
            dirs.extend(std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()));
        }
    }
    dirs
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The first `flare-deploy-target-<name>` file in `dirs`.
pub fn find_executable(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    if !is_valid_name(name) {
        return None;
    }
    dirs.iter()
        .map(|d| d.join(format!("{EXECUTABLE_PREFIX}{name}")))
        .find(|p| p.is_file())
}

/// Every plugin on the search path as (name, path); the first of a name wins, like PATH.
pub fn discover(dirs: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<(String, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let file_name = e.file_name().to_string_lossy().into_owned();
                let name = file_name.strip_prefix(EXECUTABLE_PREFIX)?.to_string();
                let path = e.path();
                (is_valid_name(&name) && path.is_file()).then_some((name, path))
            })
            .collect();
        names.sort();
        for (name, path) in names {
            if !found.iter().any(|(n, _)| *n == name) {
                found.push((name, path));
            }
        }
    }
    found
}

pub(crate) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// The per-request timeout from `FLARE_DEPLOY_PLUGIN_TIMEOUT` (seconds).
pub fn request_timeout() -> std::time::Duration {
    let seconds = std::env::var(PLUGIN_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(60.0);
    std::time::Duration::from_secs_f64(seconds)
}

/// The `result` object of a `prepare` or `action` answer (absent or null: no fields).
pub(crate) fn result_fields(plugin: &Path, method: &str, answer: &Value) -> Result<Map<String, Value>> {
    match answer.get("result") {
        Some(Value::Object(map)) => Ok(map.clone()),
        None | Some(Value::Null) => Ok(Map::new()),
        Some(_) => Err(Error::new(
            ErrorCode::PluginProtocol,
            format!("Plugin {}: '{method}' result must be an object", plugin.display()),
            "See docs/plugin-protocol.md.",
        )),
    }
}
