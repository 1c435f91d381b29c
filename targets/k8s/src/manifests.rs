//! The ConfigMap (`local/`) and Secret (`startup/`) that `stage` applies, and their files
//! for `stage --manifests DIR` (GitOps: the operator's pipeline applies them).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use flare_deploy_core::{yaml_write, Error, Result};
use serde_json::{json, Map, Value};

/// `apiVersion`, `kind`, `metadata`, `binaryData` (the reference's manifest).
pub fn configmap(name: &str, namespace: &str, data: &Map<String, Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "binaryData": data,
    })
}

/// `apiVersion`, `kind`, `metadata`, `type: Opaque`, `data`.
pub fn secret(name: &str, namespace: &str, data: &Map<String, Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": data,
    })
}

/// YAML text of a manifest.
pub fn to_yaml(manifest: &Value) -> String {
    yaml_write::to_string(manifest)
}

/// The two manifest files of one stage in `dir`: `configmap-<name>.yaml` and
/// `secret-<name>.yaml` (names are DNS subdomains, so they are plain file names, and
/// sites staged into one directory do not collide).
pub fn file_names(dir: &Path, configmap: &str, secret: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("configmap-{configmap}.yaml")),
        dir.join(format!("secret-{secret}.yaml")),
    )
}

fn write_error(path: &Path, err: std::io::Error) -> Error {
    Error::invalid_args(
        format!("Cannot write the manifest {}: {err}", path.display()),
        "Check that the --manifests directory is writable.",
    )
}

/// The `--manifests` directory, resolved and checked: not inside the kit's `local/` or
/// `startup/` (a later stage would bundle the Secret into itself), a directory if it
/// exists. Nothing is created yet.
pub fn dir(kit: &Path, raw: &str) -> Result<PathBuf> {
    let dir = flare_deploy_core::paths::resolve_user_path(raw).map_err(|e| {
        Error::invalid_args(
            format!("Cannot resolve --manifests path: {raw}"),
            format!("Check the path: {e}"),
        )
    })?;
    if dir.starts_with(kit.join("local")) || dir.starts_with(kit.join("startup")) {
        return Err(Error::invalid_args(
            format!(
                "--manifests must not be inside the kit's local/ or startup/ folder: {}",
                dir.display()
            ),
            "Choose a directory outside local/ and startup/; their files are what stage bundles.",
        ));
    }
    if std::fs::metadata(&dir).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::invalid_args(
            format!("--manifests is not a directory: {}", dir.display()),
            "Pass a directory for the manifest files.",
        ));
    }
    Ok(dir)
}

/// Creates `dir` (mode 0700, parents as needed) unless it exists.
pub fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| write_error(dir, e))
}

/// Writes `manifest` to `path`, mode 0600, in one step.
pub fn write(path: &Path, manifest: &Value) -> Result<()> {
    flare_deploy_core::atomic::replace_file(path, to_yaml(manifest).as_bytes(), 0o600).map_err(|e| write_error(path, e))
}

/// Removes a manifest file `stage --manifests` wrote; one that is gone already is fine.
pub fn remove(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::invalid_args(
            format!("Cannot remove the manifest {}: {e}", path.display()),
            "Check that the --manifests directory is writable.",
        )),
    }
}
