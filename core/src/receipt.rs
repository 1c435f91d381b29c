//! The receipt `<output>/.flare-deploy.json`: written into every prepared output, it is
//! what identifies a directory as flare-deploy's (only such outputs are ever replaced)
//! and records what was written, entry by entry, for a later `verify`. NVFlare does not
//! read it.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{io_error, Result};
use crate::kit::KitInfo;

/// The receipt's file name at the output root.
pub const RECEIPT_FILE: &str = ".flare-deploy.json";
/// The value of `format`; its prefix is what marks a receipt.
pub const RECEIPT_FORMAT: &str = "flare-deploy-receipt/1";
const FORMAT_PREFIX: &str = "flare-deploy-receipt/";
/// A receipt of a 100,000-file output is ~20 MiB; anything larger is not ours.
const MAX_RECEIPT_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub format: String,
    pub flare_deploy_version: String,
    pub runtime: String,
    /// The NVFlare release profile the output was prepared for, when there is one.
    pub nvflare_release: Option<String>,
    pub kit: ReceiptKit,
    pub config: ReceiptConfig,
    /// Every entry of the output except the receipt, sorted by path.
    pub files: Vec<ReceiptEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptKit {
    pub role: String,
    pub name: String,
    pub org: String,
    /// The input kit's path.
    pub input: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptConfig {
    pub path: String,
    /// Of the config file's bytes as read.
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Link,
}

/// One entry: files carry mode, size and sha256; directories their mode; links their
/// target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What the receipt says about the run, besides the files.
pub struct ReceiptSource<'a> {
    pub runtime: &'a str,
    pub nvflare_release: Option<&'a str>,
    pub kit: &'a KitInfo,
    /// The input kit (the `KitInfo` may point at the staging copy).
    pub input_kit: &'a Path,
    pub config_path: &'a Path,
    pub config_sha256: &'a str,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Mode bits as the receipt writes them, e.g. `0644`.
pub fn mode_text(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// The entries of the tree at `root`, except the receipt itself, sorted by path.
pub fn describe_tree(root: &Path) -> Result<Vec<ReceiptEntry>> {
    walk(root, false)
}

/// Every entry of the tree at `root`, the receipt included, sorted by path.
pub fn describe_all(root: &Path) -> Result<Vec<ReceiptEntry>> {
    walk(root, true)
}

fn walk(root: &Path, with_receipt: bool) -> Result<Vec<ReceiptEntry>> {
    let mut entries = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
            let path = item.map_err(|e| io_error(&dir, e))?.path();
            let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
            if relative == RECEIPT_FILE && !with_receipt {
                continue;
            }
            let meta = fs::symlink_metadata(&path).map_err(|e| io_error(&path, e))?;
            let mut entry = ReceiptEntry {
                path: relative,
                kind: EntryKind::File,
                mode: Some(mode_text(meta.mode())),
                size: None,
                sha256: None,
                target: None,
            };
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).map_err(|e| io_error(&path, e))?;
                entry.kind = EntryKind::Link;
                entry.mode = None;
                entry.target = Some(target.to_string_lossy().into_owned());
            } else if meta.is_dir() {
                entry.kind = EntryKind::Dir;
                stack.push(path);
            } else {
                entry.size = Some(meta.len());
                entry.sha256 = Some(sha256_file(&path).map_err(|e| io_error(&path, e))?);
            }
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

impl Receipt {
    /// The receipt of the finished tree at `root`.
    pub fn of_tree(root: &Path, source: &ReceiptSource<'_>) -> Result<Receipt> {
        Ok(Receipt {
            format: RECEIPT_FORMAT.to_string(),
            flare_deploy_version: env!("CARGO_PKG_VERSION").to_string(),
            runtime: source.runtime.to_string(),
            nvflare_release: source.nvflare_release.map(str::to_string),
            kit: ReceiptKit {
                role: source.kit.role.as_str().to_string(),
                name: source.kit.name.clone(),
                org: source.kit.org.clone(),
                input: source.input_kit.to_string_lossy().into_owned(),
            },
            config: ReceiptConfig {
                path: source.config_path.to_string_lossy().into_owned(),
                sha256: source.config_sha256.to_string(),
            },
            files: describe_tree(root)?,
        })
    }

    /// Writes `<root>/.flare-deploy.json`, mode 0600 whatever the umask.
    pub fn write(&self, root: &Path) -> Result<()> {
        let path = root.join(RECEIPT_FILE);
        let text = crate::json::to_file_string(self)?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        file.write_all(text.as_bytes()).map_err(|e| io_error(&path, e))?;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error(&path, e))
    }

    /// Records in the receipt at `dir` what an action changed in the output since
    /// `before` (the tree as [`describe_tree`] saw it before the action): entries that
    /// differ are replaced, added or removed; everything else stays as prepare wrote it,
    /// so changes made by hand remain visible to a later check.
    pub fn record_changes(dir: &Path, before: &[ReceiptEntry]) -> Result<()> {
        let Some(mut receipt) = Receipt::read(dir) else {
            return Ok(());
        };
        let after = describe_tree(dir)?;
        if after == before {
            return Ok(());
        }
        let find = |list: &[ReceiptEntry], path: &str| list.iter().find(|e| e.path == path).cloned();
        let mut paths: Vec<&str> = before.iter().chain(&after).map(|e| e.path.as_str()).collect();
        paths.sort_unstable();
        paths.dedup();
        for path in paths {
            let (old, new) = (find(before, path), find(&after, path));
            if old == new {
                continue;
            }
            receipt.files.retain(|e| e.path != path);
            receipt.files.extend(new);
        }
        receipt.files.sort_by(|a, b| a.path.cmp(&b.path));
        let path = dir.join(RECEIPT_FILE);
        let text = crate::json::to_file_string(&receipt)?;
        crate::atomic::replace_file(&path, text.as_bytes(), 0o600).map_err(|e| io_error(&path, e))
    }

    /// The receipt of the output at `dir`, if it holds one: a regular file that parses
    /// as a receipt of a known format.
    pub fn read(dir: &Path) -> Option<Receipt> {
        let path = dir.join(RECEIPT_FILE);
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > MAX_RECEIPT_BYTES {
            return None;
        }
        let text = fs::read_to_string(&path).ok()?;
        let receipt: Receipt = serde_json::from_str(&text).ok()?;
        receipt.format.starts_with(FORMAT_PREFIX).then_some(receipt)
    }

    /// Whether `dir` holds a receipt of a known format: what marks a directory as
    /// flare-deploy's output. Reads only the `format` key (a receipt lists every file of
    /// its output, and deciding whether to replace it needs none of them).
    pub fn is_in(dir: &Path) -> bool {
        #[derive(Deserialize)]
        struct Head {
            format: String,
        }
        let path = dir.join(RECEIPT_FILE);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return false;
        };
        if !meta.is_file() || meta.len() > MAX_RECEIPT_BYTES {
            return false;
        }
        fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Head>(&text).ok())
            .is_some_and(|head| head.format.starts_with(FORMAT_PREFIX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_text() {
        // FIPS 180-2 test vector.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_a_receipt_of_a_known_format_counts() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(Receipt::read(dir.path()).is_none());
        assert!(!Receipt::is_in(dir.path()));
        fs::write(dir.path().join(RECEIPT_FILE), "{\"format\": \"other/1\"}").expect("write");
        assert!(Receipt::read(dir.path()).is_none());
        assert!(!Receipt::is_in(dir.path()));
        fs::write(
            dir.path().join(RECEIPT_FILE),
            "{\"format\": \"flare-deploy-receipt/1\"}",
        )
        .expect("write");
        assert!(Receipt::is_in(dir.path()));
        fs::remove_file(dir.path().join(RECEIPT_FILE)).expect("rm");
        fs::create_dir(dir.path().join(RECEIPT_FILE)).expect("mkdir");
        assert!(Receipt::read(dir.path()).is_none());
    }
}
