//! Proof that a plugin wrote only into its staging directory: the input kit, the
//! output's parent directory and a previous output look the same before and after.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::output::PREPARED_DIR;

type Picture = BTreeMap<PathBuf, (u64, i64, i64, u32)>;

pub struct Watch {
    places: Vec<(PathBuf, Picture)>,
}

/// Size, mtime and mode of everything below `root` (recursively when `deep`), except
/// paths in `skip`.
fn picture(root: &Path, deep: bool, skip: &[PathBuf]) -> Picture {
    let mut map = Picture::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if skip.contains(&path) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            map.insert(path.clone(), (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.mode()));
            if deep && meta.is_dir() {
                stack.push(path);
            }
        }
    }
    map
}

impl Watch {
    pub fn take(input_kit: &Path, output: &Path, staging: &Path) -> Watch {
        let parent = output.parent().unwrap_or(Path::new("/")).to_path_buf();
        let skip = vec![
            input_kit.join(PREPARED_DIR),
            staging.to_path_buf(),
            output.to_path_buf(),
        ];
        let mut places = vec![
            (input_kit.to_path_buf(), picture(input_kit, true, &skip)),
            (parent.clone(), picture(&parent, false, &skip)),
        ];
        if output.is_dir() {
            places.push((output.to_path_buf(), picture(output, true, &[])));
        }
        Watch { places }
    }

    /// The first path that changed, if any.
    pub fn changed(&self, input_kit: &Path, output: &Path, staging: &Path) -> Option<PathBuf> {
        let after = Watch::take(input_kit, output, staging);
        for ((root, before), (_, now)) in self.places.iter().zip(after.places.iter()) {
            if before != now {
                let differs = before
                    .iter()
                    .find(|(p, v)| now.get(*p) != Some(v))
                    .map(|(p, _)| p.clone())
                    .or_else(|| now.keys().find(|p| !before.contains_key(*p)).cloned());
                return Some(differs.unwrap_or_else(|| root.clone()));
            }
        }
        if self.places.len() != after.places.len() {
            return Some(output.to_path_buf());
        }
        None
    }
}
