//! Bundling a prepared kit's `local/` or `startup/` folder for a ConfigMap or Secret:
//! every regular file below it, each under a key derived from its path, base64-encoded
//! (docs/dev/nvflare-2.9-behaviour.md B.5).

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use flare_deploy_core::receipt::sha256_hex;
use flare_deploy_core::{Error, Result};
use serde_json::{json, Map, Value};

/// Longest object key (a ConfigMap/Secret key is at most 253 characters).
const KEY_MAX: usize = 253;
/// A folder whose files add up to more than this is refused before anything is read:
/// Kubernetes stores at most 1 MiB per object, so such a folder could never be staged.
pub const MAX_FOLDER_BYTES: u64 = 16 << 20;

/// The files of one folder as one object's data.
pub struct Bundle {
    /// Key to base64 text, in path order.
    pub data: Map<String, Value>,
    /// `{key, path}` for each file, in the same order (the volume's `items`).
    pub items: Vec<Value>,
    /// Total length of the base64 texts.
    pub encoded_size: usize,
}

/// `f<index>-<12 hex of sha256(path)>-<file name with unsafe characters as '_'>`.
pub fn file_key(index: usize, rel_path: &str) -> String {
    let digest = sha256_hex(rel_path.as_bytes());
    let base = rel_path.rsplit('/').next().unwrap_or_default();
    let safe: String = base
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "_.-".contains(c) {
            true => c,
            false => '_',
        })
        .collect();
    let safe = if safe.is_empty() { "file".to_string() } else { safe };
    let key = format!("f{index:04}-{}-{safe}", &digest[..12]);
    key.chars().take(KEY_MAX).collect()
}

/// Every entry below `root` that is a regular file or a symlink (symlinked directories
/// are listed, not entered), sorted component by component like Python's `Path`.
fn candidates(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| read_error(&dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| read_error(&dir, e))?.path();
            let meta = std::fs::symlink_metadata(&path).map_err(|e| read_error(&path, e))?;
            if meta.file_type().is_symlink() || meta.is_file() {
                found.push(path);
            } else if meta.is_dir() {
                stack.push(path);
            }
            // FIFOs, sockets and devices are not files a volume can carry; the
            // reference skips them too.
        }
    }
    // `Path`'s order compares components, as Python's does.
    found.sort();
    Ok(found)
}

fn read_error(path: &Path, err: std::io::Error) -> Error {
    Error::invalid_kit(
        format!("Cannot read {}: {err}", path.display()),
        "Check the prepared kit's permissions.",
    )
}

fn unsafe_path(path: &Path) -> Error {
    Error::invalid_kit(
        format!("Unsafe staged file path: {}", path.display()),
        "Use files contained under local/ or startup/.",
    )
}

/// The path of `path` below `root`, `/`-separated, when Kubernetes can project it: not
/// empty, no `..` component, not starting with `..` (kubelet keeps its own `..data`
/// links there) and UTF-8 (a volume item's path is a string).
fn item_path(root: &Path, path: &Path) -> Result<String> {
    let relative = path.strip_prefix(root).map_err(|_| unsafe_path(path))?;
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => match std::str::from_utf8(part.as_bytes()) {
                Ok(text) => parts.push(text),
                Err(_) => {
                    return Err(Error::invalid_kit(
                        format!("File name is not UTF-8: {}", path.display()),
                        "Rename the file; Kubernetes volume paths are UTF-8 text.",
                    ))
                }
            },
            _ => return Err(unsafe_path(path)),
        }
    }
    let joined = parts.join("/");
    if joined.is_empty() || joined.starts_with("..") {
        return Err(unsafe_path(path));
    }
    Ok(joined)
}

/// Bundles `root` (`<kit>/local` or `<kit>/startup`).
pub fn build(root: &Path) -> Result<Bundle> {
    let files = candidates(root)?;
    if files.is_empty() {
        return Err(Error::invalid_kit(
            format!("No files found in prepared kit folder: {}", root.display()),
            "Stage a non-empty prepared folder.",
        ));
    }
    let real_root = root.canonicalize().map_err(|e| read_error(root, e))?;
    let mut total: u64 = 0;
    for path in &files {
        total += std::fs::symlink_metadata(path).map_or(0, |m| m.len());
    }
    if total > MAX_FOLDER_BYTES {
        return Err(Error::invalid_kit(
            format!(
                "Prepared kit folder is too large to stage: {} ({total} bytes in files).",
                root.display()
            ),
            "A Kubernetes ConfigMap or Secret holds at most 1 MiB; keep large files out of local/ and startup/.",
        ));
    }
    let mut bundle = Bundle {
        data: Map::new(),
        items: Vec::new(),
        encoded_size: 0,
    };
    for (index, path) in files.iter().enumerate() {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::invalid_kit(
                format!("Symlinks cannot be staged into Kubernetes volumes: {}", path.display()),
                "Replace it with a file.",
            ));
        }
        let real = path.canonicalize().map_err(|e| read_error(path, e))?;
        if !real.starts_with(&real_root) {
            return Err(Error::invalid_kit(
                format!(
                    "Staged file resolves outside the prepared kit folder: {}",
                    path.display()
                ),
                "Use files contained under local/ or startup/.",
            ));
        }
        let rel_path = item_path(root, path)?;
        let key = file_key(index, &rel_path);
        let bytes = std::fs::read(&real).map_err(|e| read_error(path, e))?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        bundle.encoded_size += encoded.len();
        bundle.data.insert(key.clone(), encoded.into());
        bundle.items.push(json!({"key": key, "path": rel_path}));
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_reference() {
        // docs/dev/nvflare-2.9-behaviour.md B.5
        assert_eq!(
            file_key(0, "authorization.json.default"),
            "f0000-5ce461137eb0-authorization.json.default"
        );
        assert!(file_key(3, ".hidden file").ends_with("-.hidden_file"));
        assert!(file_key(12345, "a").starts_with("f12345-"));
        assert!(file_key(1, "sub/\u{e9}t\u{e9}.txt").ends_with("-_t_.txt"));
        assert_eq!(file_key(0, &"x".repeat(400)).chars().count(), 253);
    }

    #[test]
    fn paths_are_sorted_by_component() {
        let dir = tempfile::tempdir().expect("tmp");
        for rel in ["a-c/z", "a/b", "b"] {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, rel).expect("write");
        }
        std::fs::create_dir(dir.path().join("empty")).expect("mkdir");
        let bundle = build(dir.path()).expect("bundle");
        let paths: Vec<&str> = bundle.items.iter().filter_map(|i| i["path"].as_str()).collect();
        assert_eq!(paths, ["a/b", "a-c/z", "b"]);
        assert_eq!(bundle.data.len(), 3);
        assert_eq!(bundle.encoded_size, 4 + 8 + 4);
    }

    #[test]
    fn items_kubelet_cannot_project_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("..data"), "x").expect("write");
        let err = build(dir.path()).err().expect("refused");
        assert!(err.message.starts_with("Unsafe staged file path: "), "{}", err.message);
        std::fs::remove_file(dir.path().join("..data")).expect("rm");
        let err = build(dir.path()).err().expect("empty");
        assert!(err.message.starts_with("No files found in prepared kit folder: "));
    }
}
