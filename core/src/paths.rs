//! Path resolution like the reference's `Path(p).expanduser().resolve()`: `~` expanded,
//! made absolute, symlinks resolved where the path exists, the rest kept as written.

use std::path::{Component, Path, PathBuf};

/// Expands a leading `~` or `~/` to `$HOME`.
pub fn expand_tilde(raw: &str) -> PathBuf {
    let home = || std::env::var_os("HOME").map(PathBuf::from);
    if raw == "~" {
        if let Some(h) = home() {
            return h;
        }
    } else if let Some(rest) = raw.strip_prefix("~/") {
        if let Some(h) = home() {
            return h.join(rest);
        }
    }
    PathBuf::from(raw)
}

/// `expanduser().resolve(strict=False)`.
pub fn resolve_user_path(raw: &str) -> std::io::Result<PathBuf> {
    let expanded = expand_tilde(raw);
    let absolute = if expanded.is_absolute() {
        expanded
    } else {
        std::env::current_dir()?.join(expanded)
    };
    Ok(resolve_lenient(&absolute))
}

/// Canonicalises the longest existing prefix of an absolute path and appends the rest,
/// folding `.` and `..` in the part that does not exist.
pub fn resolve_lenient(path: &Path) -> PathBuf {
    let components: Vec<Component<'_>> = path.components().collect();
    for split in (1..=components.len()).rev() {
        let head: PathBuf = components[..split].iter().collect();
        if let Ok(mut resolved) = head.canonicalize() {
            for component in &components[split..] {
                match component {
                    Component::CurDir => {}
                    Component::ParentDir => {
                        resolved.pop();
                    }
                    other => resolved.push(other.as_os_str()),
                }
            }
            return resolved;
        }
    }
    path.to_path_buf()
}

/// True when `path` is `base` or below it (both resolved).
pub fn is_within(path: &Path, base: &Path) -> bool {
    path.starts_with(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonexistent_tail_is_kept_and_folded() {
        let tmp = std::env::temp_dir().canonicalize().expect("tmp");
        let p = tmp.join("does-not-exist-flare").join("a").join("..").join("b");
        assert_eq!(resolve_lenient(&p), tmp.join("does-not-exist-flare").join("b"));
    }
}
