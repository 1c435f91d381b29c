//! The fallback where the kernel cannot confine a plugin: an after-the-fact check of
//! exactly what the plugin must not touch, the input kit (minus flare-deploy's own
//! `prepared/` area) and the previous output at this output path. Nothing else is
//! watched: sibling outputs, locks and staging directories of other batch workers change
//! legitimately while the plugin runs. The input kit is copied first, so that whatever
//! the plugin changed in it is put back.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use crate::output::PREPARED_DIR;

/// Type, size, mode, mtime and link target of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    kind: FileType,
    size: u64,
    mode: u32,
    mtime: (i64, i64),
    link: Option<PathBuf>,
}

/// Every entry below a root, by path relative to it.
type Picture = BTreeMap<PathBuf, Stamp>;

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = fs::symlink_metadata(path).ok()?;
    Some(Stamp {
        kind: FileType::from_raw_mode(meta.mode()),
        size: meta.len(),
        mode: meta.mode(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        link: fs::read_link(path).ok(),
    })
}

fn picture(root: &Path, skip: &[PathBuf]) -> Picture {
    let mut map = Picture::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if skip.contains(&path) {
                continue;
            }
            let Some(stamp) = stamp(&path) else { continue };
            if stamp.kind == FileType::Directory {
                stack.push(path.clone());
            }
            map.insert(path.strip_prefix(root).unwrap_or(&path).to_path_buf(), stamp);
        }
    }
    map
}

/// Paths (relative) that differ between two pictures, sorted.
fn differences(before: &Picture, after: &Picture) -> Vec<PathBuf> {
    let mut changed: Vec<PathBuf> = before
        .iter()
        .filter(|(p, s)| after.get(*p) != Some(s))
        .map(|(p, _)| p.clone())
        .chain(after.keys().filter(|p| !before.contains_key(*p)).cloned())
        .collect();
    changed.sort();
    changed.dedup();
    changed
}

/// What the check found after the plugin ran.
#[derive(Debug)]
pub struct Findings {
    /// Paths of the input kit the plugin changed, added or removed (relative).
    pub input_kit: Vec<PathBuf>,
    /// Whether every one of them was put back as it was.
    pub restored: Result<(), String>,
    /// Paths of the previous output the plugin changed (relative).
    pub previous_output: Vec<PathBuf>,
}

impl Findings {
    pub fn is_clean(&self) -> bool {
        self.input_kit.is_empty() && self.previous_output.is_empty()
    }
}

pub struct Guard {
    input_kit: PathBuf,
    skip: Vec<PathBuf>,
    kit_picture: Picture,
    kit_root: Option<Stamp>,
    /// A copy of the input kit taken before the plugin ran.
    backup: Option<tempfile::TempDir>,
    output: PathBuf,
    output_picture: Option<Picture>,
}

impl Guard {
    pub fn take(input_kit: &Path, output: &Path) -> Guard {
        let skip = vec![input_kit.join(PREPARED_DIR), output.to_path_buf()];
        let kit_picture = picture(input_kit, &skip);
        let backup = tempfile::Builder::new()
            .prefix("flare-deploy-kit-copy-")
            .tempdir()
            .ok()
            .filter(|dir| copy_tree(input_kit, dir.path(), &kit_picture).is_ok());
        if backup.is_none() {
            tracing::warn!("could not copy the input kit; a plugin's changes to it can be reported, not undone");
        }
        Guard {
            input_kit: input_kit.to_path_buf(),
            skip,
            kit_picture,
            kit_root: stamp(input_kit),
            backup,
            output: output.to_path_buf(),
            output_picture: output.is_dir().then(|| picture(output, &[])),
        }
    }

    /// Compares with the state before the plugin ran and restores the input kit.
    pub fn check_and_restore(&self) -> Findings {
        let after = picture(&self.input_kit, &self.skip);
        let mut input_kit = differences(&self.kit_picture, &after);
        // Same stamp, other bytes: compare file contents with the copy too.
        if let Some(backup) = &self.backup {
            for (rel, stamp) in &self.kit_picture {
                if stamp.kind == FileType::RegularFile
                    && after.get(rel) == Some(stamp)
                    && fs::read(self.input_kit.join(rel)).ok() != fs::read(backup.path().join(rel)).ok()
                {
                    input_kit.push(rel.clone());
                }
            }
            input_kit.sort();
        }
        let restored = if input_kit.is_empty() {
            Ok(())
        } else {
            match (&self.backup, &self.kit_root) {
                (Some(backup), Some(root)) => restore(
                    &self.input_kit,
                    backup.path(),
                    &self.kit_picture,
                    &after,
                    &input_kit,
                    root,
                ),
                _ => Err("no copy of the input kit could be taken".to_string()),
            }
        };
        let previous_output = match &self.output_picture {
            Some(before) => differences(before, &picture(&self.output, &[])),
            None => Vec::new(),
        };
        // A directory whose only change is its time was written into: the entry written
        // is the one to report (the time is restored all the same).
        let only_time = |rel: &PathBuf| match (self.kit_picture.get(rel), after.get(rel)) {
            (Some(a), Some(b)) => a.kind == FileType::Directory && b.kind == FileType::Directory && a.mode == b.mode,
            _ => false,
        };
        let input_kit = input_kit.into_iter().filter(|p| !only_time(p)).collect();
        Findings {
            input_kit,
            restored,
            previous_output,
        }
    }
}

/// Copies the entries of `picture` from `from` to `to` (content, mode, times; links
/// as they are).
fn copy_tree(from: &Path, to: &Path, picture: &Picture) -> std::io::Result<()> {
    for (rel, stamp) in picture {
        put_back(&from.join(rel), &to.join(rel), stamp)?;
    }
    // Directory times last: writing into a directory changes its mtime.
    for (rel, stamp) in picture.iter().rev() {
        if stamp.kind == FileType::Directory {
            set_mtime(&to.join(rel), stamp)?;
        }
    }
    Ok(())
}

/// Makes `dst` the entry `src` is, per `stamp`.
fn put_back(src: &Path, dst: &Path, stamp: &Stamp) -> std::io::Result<()> {
    match stamp.kind {
        FileType::Directory => {
            if !dst.is_dir() {
                fs::create_dir_all(dst)?;
            }
        }
        FileType::Symlink => {
            if let Some(target) = &stamp.link {
                std::os::unix::fs::symlink(target, dst)?;
            }
            return Ok(());
        }
        _ => {
            fs::copy(src, dst)?;
        }
    }
    fs::set_permissions(dst, fs::Permissions::from_mode(stamp.mode & 0o7777))?;
    if stamp.kind != FileType::Directory {
        set_mtime(dst, stamp)?;
    }
    Ok(())
}

fn set_mtime(path: &Path, stamp: &Stamp) -> std::io::Result<()> {
    let (secs, nanos) = stamp.mtime;
    let when = std::time::UNIX_EPOCH
        + std::time::Duration::new(u64::try_from(secs).unwrap_or(0), u32::try_from(nanos).unwrap_or(0));
    fs::File::open(path)?.set_modified(when)
}

/// Undoes a plugin's changes to `kit`: removes what it added (deepest first), puts back
/// from `backup` what it changed or removed (outermost first), then every directory's
/// time, the kit root's included.
fn restore(
    kit: &Path,
    backup: &Path,
    before: &Picture,
    after: &Picture,
    changed: &[PathBuf],
    root_stamp: &Stamp,
) -> Result<(), String> {
    let fail = |e: std::io::Error, p: &Path| format!("{}: {e}", p.display());
    let remove = |path: &Path| match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    };
    for rel in changed
        .iter()
        .rev()
        .filter(|p| !before.contains_key(*p) && after.contains_key(*p))
    {
        let path = kit.join(rel);
        remove(&path).map_err(|e| fail(e, &path))?;
    }
    for rel in changed {
        let Some(stamp) = before.get(rel) else { continue };
        let path = kit.join(rel);
        let keep_dir = stamp.kind == FileType::Directory && path.symlink_metadata().is_ok_and(|m| m.is_dir());
        if !keep_dir {
            remove(&path).map_err(|e| fail(e, &path))?;
        }
        put_back(&backup.join(rel), &path, stamp).map_err(|e| fail(e, &path))?;
    }
    for (rel, stamp) in before.iter().rev().filter(|(_, s)| s.kind == FileType::Directory) {
        let path = kit.join(rel);
        set_mtime(&path, stamp).map_err(|e| fail(e, &path))?;
    }
    set_mtime(kit, root_stamp).map_err(|e| fail(e, kit))
}
