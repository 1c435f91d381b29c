//! Replacing one file in a single step, so that a reader (or a crash) sees the old
//! contents or the new, never a mix.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `contents` to a temporary file beside `path` with permission bits `mode`
/// (whatever the umask), then renames it over `path`. On failure `path` is unchanged and
/// the temporary file is removed. A symlink at `path` is replaced, never written through.
pub fn replace_file(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    temp.write_all(contents)?;
    temp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn replaces_contents_and_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("values.yaml");
        std::fs::write(&path, "old").expect("write");
        replace_file(&path, b"new", 0o600).expect("replace");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        assert_eq!(std::fs::metadata(&path).expect("stat").mode() & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().expect("tmp");
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("link");
        replace_file(&link, b"new", 0o644).expect("replace");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
        assert!(!std::fs::symlink_metadata(&link).expect("stat").file_type().is_symlink());
    }
}
