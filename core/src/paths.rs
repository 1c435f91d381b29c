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

/// Resolves symlinks component by component, like Python's `Path.resolve(strict=False)`:
/// links are followed even when they dangle, `..` applies to the resolved path, and the
/// part that does not exist is kept as written.
pub fn resolve_lenient(path: &Path) -> PathBuf {
    use std::collections::VecDeque;
    const MAX_LINKS: usize = 40;
    let mut pending: VecDeque<std::ffi::OsString> = VecDeque::new();
    let mut resolved = PathBuf::from("/");
    let push_components = |pending: &mut VecDeque<std::ffi::OsString>, p: &Path, front: bool| {
        let parts: Vec<std::ffi::OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        if front {
            for part in parts.into_iter().rev() {
                pending.push_front(part);
            }
        } else {
            pending.extend(parts);
        }
    };
    push_components(&mut pending, path, false);
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        match std::fs::read_link(&candidate) {
            Ok(target) if links < MAX_LINKS => {
                links += 1;
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                push_components(&mut pending, &target, true);
            }
            _ => resolved = candidate,
        }
    }
    resolved
}

/// `<parent>/.<output name>.<suffix>`: the helper files of an output sit beside it.
pub fn hidden_sibling(output: &Path, suffix: &str) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangling_links_are_followed() {
        let dir = tempfile::tempdir().expect("tmp");
        let base = dir.path().canonicalize().expect("canonical");
        std::os::unix::fs::symlink("target-missing.yaml", base.join("link.yaml")).expect("link");
        assert_eq!(
            resolve_lenient(&base.join("link.yaml")),
            base.join("target-missing.yaml")
        );
        std::os::unix::fs::symlink(&base, base.join("self")).expect("link");
        assert_eq!(resolve_lenient(&base.join("self/self/x/../y")), base.join("y"));
    }

    #[test]
    fn nonexistent_tail_is_kept_and_folded() {
        let tmp = std::env::temp_dir().canonicalize().expect("tmp");
        let p = tmp.join("does-not-exist-flare").join("a").join("..").join("b");
        assert_eq!(resolve_lenient(&p), tmp.join("does-not-exist-flare").join("b"));
    }
}
