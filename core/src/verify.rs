//! `flare-deploy verify`: is a prepared kit still what its receipt says was written?
//! Compares the receipt's entries with the tree as it is now, and optionally the
//! config's hash with the one the output was prepared from.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, ErrorCode, Result};
use crate::receipt::{describe_tree, sha256_hex, EntryKind, Receipt, ReceiptEntry, RECEIPT_FILE};

/// How one entry differs from the receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DifferenceKind {
    /// A file's content differs.
    Modified,
    /// In the receipt, not in the tree.
    Missing,
    /// In the tree, not in the receipt.
    Added,
    /// Same content, other mode bits.
    Mode,
    /// A link points elsewhere.
    Link,
    /// A file became a directory or link, or the other way round.
    Type,
}

impl DifferenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DifferenceKind::Modified => "modified",
            DifferenceKind::Missing => "missing",
            DifferenceKind::Added => "added",
            DifferenceKind::Mode => "mode",
            DifferenceKind::Link => "link",
            DifferenceKind::Type => "type",
        }
    }
}

/// One difference; `recorded` and `found` say what changed where that is one value
/// (mode, link target, type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub path: String,
    pub kind: DifferenceKind,
    pub recorded: Option<String>,
    pub found: Option<String>,
}

/// The config given with `--config` against the one the output was prepared from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigCheck {
    pub path: PathBuf,
    pub recorded_path: String,
    pub recorded_sha256: String,
    pub sha256: String,
}

impl ConfigCheck {
    pub fn matches(&self) -> bool {
        self.recorded_sha256 == self.sha256
    }
}

/// The result of a verify.
#[derive(Debug, Clone)]
pub struct Verification {
    pub dir: PathBuf,
    pub receipt: Receipt,
    pub differences: Vec<Difference>,
    pub config: Option<ConfigCheck>,
}

impl Verification {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.config.as_ref().is_none_or(ConfigCheck::matches)
    }

    /// `modified 1, missing 2, ...` for the kinds present, in a fixed order.
    pub fn counts(&self) -> Vec<(DifferenceKind, usize)> {
        use DifferenceKind::*;
        [Modified, Missing, Added, Mode, Link, Type]
            .into_iter()
            .map(|k| (k, self.differences.iter().filter(|d| d.kind == k).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// The result fields, in order.
    pub fn to_json(&self) -> serde_json::Map<String, Value> {
        let r = &self.receipt;
        let mut data = serde_json::Map::new();
        data.insert("prepared_kit".into(), self.dir.to_string_lossy().into_owned().into());
        data.insert("runtime".into(), r.runtime.clone().into());
        data.insert("role".into(), r.kit.role.clone().into());
        data.insert("name".into(), r.kit.name.clone().into());
        data.insert(
            "prepared_by".into(),
            format!("flare-deploy {}", r.flare_deploy_version).into(),
        );
        data.insert("entries".into(), r.files.len().into());
        data.insert("matches".into(), self.is_clean().into());
        let differences: Vec<Value> = self
            .differences
            .iter()
            .map(|d| json!({"path": d.path, "change": d.kind.as_str(), "recorded": d.recorded, "found": d.found}))
            .collect();
        data.insert("differences".into(), Value::Array(differences));
        if let Some(config) = &self.config {
            data.insert(
                "config".into(),
                json!({"path": config.path.to_string_lossy(), "matches": config.matches(),
                       "recorded_path": config.recorded_path, "recorded_sha256": config.recorded_sha256,
                       "sha256": config.sha256}),
            );
        }
        data
    }

    /// The error a mismatch is reported as.
    pub fn mismatch_error(&self) -> Error {
        let label = |kind: DifferenceKind| match kind {
            DifferenceKind::Mode => "mode changed",
            DifferenceKind::Link => "link changed",
            DifferenceKind::Type => "type changed",
            other => other.as_str(),
        };
        let mut parts: Vec<String> = self
            .counts()
            .iter()
            .map(|(k, n)| format!("{n} {}", label(*k)))
            .collect();
        if self.config.as_ref().is_some_and(|c| !c.matches()) {
            parts.push("the config differs from the one used".into());
        }
        Error::new(
            ErrorCode::VerifyMismatch,
            format!(
                "Prepared kit differs from its receipt ({RECEIPT_FILE}): {}: {}",
                parts.join(", "),
                self.dir.display()
            ),
            "Someone changed the prepared kit after flare-deploy wrote it (or it was prepared with another config). Review the changes listed; run flare-deploy prepare again to regenerate it.",
        )
    }
}

/// Verifies the prepared kit at `dir` (and the config at `config`, when given).
pub fn verify(dir: &Path, config: Option<&Path>) -> Result<Verification> {
    if !dir.is_dir() {
        return Err(Error::invalid_args(
            format!("Prepared kit directory does not exist: {}", dir.display()),
            "Pass the output directory of a flare-deploy prepare.",
        ));
    }
    let receipt = Receipt::read(dir).ok_or_else(|| {
        Error::invalid_args(
            format!(
                "No flare-deploy receipt ({RECEIPT_FILE}) in {}: was it prepared by flare-deploy?",
                dir.display()
            ),
            "Pass the output directory of flare-deploy prepare (it holds .flare-deploy.json); outputs of nvflare deploy prepare or of older flare-deploy versions carry no receipt and cannot be verified.",
        )
    })?;
    let tree = describe_tree(dir)?;
    let config = config.map(|path| config_check(path, &receipt)).transpose()?;
    // Written sorted; sorted again in case someone edited it.
    let mut recorded = receipt.files.clone();
    recorded.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Verification {
        dir: dir.to_path_buf(),
        differences: compare(&recorded, &tree),
        receipt,
        config,
    })
}

fn config_check(path: &Path, receipt: &Receipt) -> Result<ConfigCheck> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorCode::ConfigNotFound,
            format!("Cannot read config file: {} ({e})", path.display()),
            "Pass the runtime config the kit was prepared with.",
        )
    })?;
    Ok(ConfigCheck {
        path: path.to_path_buf(),
        recorded_path: receipt.config.path.clone(),
        recorded_sha256: receipt.config.sha256.clone(),
        sha256: sha256_hex(&bytes),
    })
}

fn kind_str(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Link => "link",
    }
}

/// The differences between the recorded entries and the tree's (both sorted by path).
pub fn compare(recorded: &[ReceiptEntry], tree: &[ReceiptEntry]) -> Vec<Difference> {
    let mut out = Vec::new();
    let diff = |path: &str, kind, recorded: Option<String>, found: Option<String>| Difference {
        path: path.to_string(),
        kind,
        recorded,
        found,
    };
    let (mut i, mut j) = (0, 0);
    while i < recorded.len() || j < tree.len() {
        let order = match (recorded.get(i), tree.get(j)) {
            (Some(a), Some(b)) => a.path.cmp(&b.path),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                out.push(diff(&recorded[i].path, DifferenceKind::Missing, None, None));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(diff(&tree[j].path, DifferenceKind::Added, None, None));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (old, new) = (&recorded[i], &tree[j]);
                if old.kind != new.kind {
                    out.push(diff(
                        &old.path,
                        DifferenceKind::Type,
                        Some(kind_str(old.kind).into()),
                        Some(kind_str(new.kind).into()),
                    ));
                } else {
                    if old.sha256 != new.sha256 || old.size != new.size {
                        out.push(diff(&old.path, DifferenceKind::Modified, None, None));
                    }
                    if old.target != new.target {
                        out.push(diff(
                            &old.path,
                            DifferenceKind::Link,
                            old.target.clone(),
                            new.target.clone(),
                        ));
                    }
                    if old.mode != new.mode {
                        out.push(diff(
                            &old.path,
                            DifferenceKind::Mode,
                            old.mode.clone(),
                            new.mode.clone(),
                        ));
                    }
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, sha: &str, mode: &str) -> ReceiptEntry {
        ReceiptEntry {
            path: path.into(),
            kind: EntryKind::File,
            mode: Some(mode.into()),
            size: Some(1),
            sha256: Some(sha.into()),
            target: None,
        }
    }

    #[test]
    fn each_kind_of_change_is_named() {
        let link = |t: &str| ReceiptEntry {
            path: "l".into(),
            kind: EntryKind::Link,
            mode: None,
            size: None,
            sha256: None,
            target: Some(t.into()),
        };
        let recorded = vec![
            file("a", "1", "0644"),
            file("b", "2", "0644"),
            file("c", "3", "0755"),
            link("x"),
        ];
        let tree = vec![
            file("a", "9", "0644"),
            file("c", "3", "0644"),
            file("d", "4", "0644"),
            link("y"),
        ];
        let got: Vec<(String, &str)> = compare(&recorded, &tree)
            .into_iter()
            .map(|d| (d.path, d.kind.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "modified"),
                ("b", "missing"),
                ("c", "mode"),
                ("d", "added"),
                ("l", "link")
            ]
            .map(|(p, k)| (p.to_string(), k))
        );
        assert!(compare(&recorded, &recorded).is_empty());
    }
}
