//! A byte-level picture of a directory tree (content, mode, mtime, symlink targets), to
//! prove that a run left the input kit untouched.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub mode: u32,
    pub mtime_ns: i128,
    pub content: Option<Vec<u8>>,
    pub link: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<PathBuf, Entry>);

impl Snapshot {
    /// Everything under `root`, except paths below any of `exclude` (relative to root).
    pub fn take(root: &Path, exclude: &[&str]) -> Snapshot {
        let mut map = BTreeMap::new();
        walk(root, root, exclude, &mut map);
        Snapshot(map)
    }

    /// Human-readable differences from `before` to `self` (added, removed, changed paths).
    pub fn diff(&self, before: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (path, old) in &before.0 {
            match self.0.get(path) {
                None => out.push(format!("removed {}", path.display())),
                Some(new) if new != old => out.push(format!(
                    "changed {}: mode {:o} -> {:o}, mtime {} -> {}, content {}, link {:?} -> {:?}",
                    path.display(),
                    old.mode,
                    new.mode,
                    old.mtime_ns,
                    new.mtime_ns,
                    if old.content == new.content { "same" } else { "differs" },
                    old.link,
                    new.link
                )),
                Some(_) => {}
            }
        }
        for path in self.0.keys() {
            if !before.0.contains_key(path) {
                out.push(format!("added {}", path.display()));
            }
        }
        out
    }

    /// Panics with the list of differences unless `self` equals `before`.
    #[track_caller]
    pub fn assert_same_as(&self, before: &Snapshot, what: &str) {
        let diff = self.diff(before);
        assert!(diff.is_empty(), "{what} changed:\n{}", diff.join("\n"));
    }
}

fn walk(root: &Path, dir: &Path, exclude: &[&str], map: &mut BTreeMap<PathBuf, Entry>) {
    let meta = std::fs::symlink_metadata(dir).expect("stat");
    let rel = dir.strip_prefix(root).expect("under root").to_path_buf();
    if exclude.iter().any(|e| rel.starts_with(e)) {
        return;
    }
    let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    if meta.file_type().is_symlink() {
        let link = std::fs::read_link(dir).ok();
        map.insert(
            rel,
            Entry {
                mode: meta.mode(),
                mtime_ns,
                content: None,
                link,
            },
        );
    } else if meta.is_dir() {
        map.insert(
            rel,
            Entry {
                mode: meta.mode(),
                mtime_ns,
                content: None,
                link: None,
            },
        );
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        names.sort();
        for path in names {
            walk(root, &path, exclude, map);
        }
    } else {
        let content = std::fs::read(dir).ok();
        map.insert(
            rel,
            Entry {
                mode: meta.mode(),
                mtime_ns,
                content,
                link: None,
            },
        );
    }
}
