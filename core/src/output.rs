//! The prepared output: where it may go, the staging copy beside it, and the atomic
//! swap that replaces a previous output without ever leaving the path missing.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{io_error, Error, Result};
use crate::kit::{Role, RESOURCES_JSON_DEFAULT};
use crate::lock::OutputLock;
use crate::paths::hidden_sibling;
use crate::receipt::{Receipt, RECEIPT_FILE};

/// The folder under the kit where default outputs live; it is never copied into an output.
pub const PREPARED_DIR: &str = "prepared";

const OUTPUT_HINT: &str =
    "Choose a prepared-kit directory outside the kit, or use the default <kit>/prepared/<runtime>.";
const NOT_OURS_HINT: &str = "Choose a new or empty directory, or the output of an earlier flare-deploy prepare (it holds .flare-deploy.json); flare-deploy replaces nothing else.";

/// Refuses output locations that would destroy the kit or data flare-deploy did not
/// write. What may be replaced: nothing at all, an empty directory, a directory holding
/// a receipt, or anything under `<kit>/prepared/` (flare-deploy's own area of the kit).
pub fn check_output(kit: &Path, output: &Path) -> Result<()> {
    if output == kit || kit.starts_with(output) {
        return Err(Error::invalid_args(
            "--output must not be the same as --kit or contain it.",
            OUTPUT_HINT,
        ));
    }
    let prepared = kit.join(PREPARED_DIR);
    if output.starts_with(kit) && !(output.starts_with(&prepared) && output != prepared) {
        return Err(Error::invalid_args(
            format!(
                "--output must not be inside the input kit, except under {}: {}",
                prepared.display(),
                output.display()
            ),
            OUTPUT_HINT,
        ));
    }
    match fs::metadata(output) {
        Err(_) => Ok(()),
        Ok(meta) if !meta.is_dir() => Err(Error::invalid_args(
            format!("Output path exists and is not a directory: {}", output.display()),
            "Choose a directory path.",
        )),
        Ok(_) if output.starts_with(&prepared) || is_empty_dir(output) || Receipt::is_in(output) => Ok(()),
        Ok(_) => Err(not_ours(output)),
    }
}

fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).map(|mut d| d.next().is_none()).unwrap_or(false)
}

/// Why an existing directory is not replaced, naming what it holds.
fn not_ours(output: &Path) -> Error {
    let shown = output.display();
    let role_file = [Role::Server, Role::Client, Role::Admin]
        .into_iter()
        .map(|r| format!("startup/{}", r.role_file()))
        .find(|f| output.join(f).is_file());
    match role_file {
        Some(_) if looks_prepared(output) => Error::invalid_args(
            format!(
                "Output directory is a prepared kit without a flare-deploy receipt ({RECEIPT_FILE}), written by nvflare deploy prepare or an older flare-deploy: {shown}"
            ),
            format!(
                "flare-deploy replaces only outputs that carry its receipt. If nothing in it is needed, remove it (rm -rf {}) and run again; or choose another --output.",
                crate::shell::quote(&output.to_string_lossy())
            ),
        ),
        Some(file) => Error::invalid_args(
            format!("Output directory is a provisioned startup kit ({file}), not an output of flare-deploy: {shown}"),
            NOT_OURS_HINT,
        ),
        None => Error::invalid_args(
            format!(
                "Output directory is not empty and holds no flare-deploy receipt (found {}): {shown}",
                listing(output)
            ),
            NOT_OURS_HINT,
        ),
    }
}

/// A kit some deploy tool already prepared: a runtime's start files, or the passthrough
/// resource manager every runtime installs.
fn looks_prepared(dir: &Path) -> bool {
    [
        "startup/start_docker.sh",
        "startup/start_slurm.sh",
        "helm_chart",
        "compose.yaml",
    ]
    .iter()
    .any(|p| dir.join(p).symlink_metadata().is_ok())
        || fs::read_to_string(dir.join("local").join(RESOURCES_JSON_DEFAULT))
            .is_ok_and(|text| text.contains("PassthroughResourceManager"))
}

/// The first few names in `dir` (directories with a trailing `/`), sorted.
fn listing(dir: &Path) -> String {
    const SHOWN: usize = 5;
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        format!("{name}/")
                    } else {
                        name
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let rest = names.len().saturating_sub(SHOWN);
    names.truncate(SHOWN);
    let mut text = names.join(", ");
    if rest > 0 {
        text.push_str(&format!(" and {rest} more"));
    }
    text
}

/// A staging directory beside the output (same filesystem, so the swap is a rename).
/// Dropping it without [`commit`](Staging::commit) removes the staging copy and any
/// parent directories it created.
pub struct Staging {
    /// `<parent>/.<output name>.prepare-staging`; one per output, guarded by the lock.
    dir: Option<PathBuf>,
    lock: Option<OutputLock>,
    created_parents: Vec<PathBuf>,
    /// The directory the first created parent went into, with its times before, so a
    /// failed run leaves it exactly as it was (it may be the input kit's root).
    touched_ancestor: Option<(PathBuf, fs::Metadata)>,
    committed: bool,
}

/// The staging directory of `output`. Its name is fixed: only the lock holder uses it,
/// so whatever is found there was left by an interrupted run.
pub fn staging_path(output: &Path) -> PathBuf {
    hidden_sibling(output, "prepare-staging")
}

impl Staging {
    pub fn create(output: &Path) -> Result<Staging> {
        let parent = output.parent().unwrap_or(Path::new("/"));
        let touched_ancestor = first_existing_ancestor(parent).and_then(|a| fs::metadata(&a).ok().map(|m| (a, m)));
        let created_parents = create_dirs_recording(parent).map_err(|e| {
            Error::invalid_args(
                format!("Cannot create output parent directory: {}", parent.display()),
                format!("Check the path: {e}"),
            )
        })?;
        let mut staging = Staging {
            dir: None,
            lock: None,
            created_parents,
            touched_ancestor,
            committed: false,
        };
        staging.lock = Some(OutputLock::acquire(output)?);
        let path = staging_path(output);
        if path.symlink_metadata().is_ok() {
            tracing::info!(path = %path.display(), "removing a staging directory left by an interrupted run");
            fs::remove_dir_all(&path).map_err(|e| io_error(&path, e))?;
        }
        fs::DirBuilder::new().mode(0o700).create(&path).map_err(|e| {
            Error::invalid_args(
                format!("Cannot create a staging directory in {}", parent.display()),
                format!("Check the path: {e}"),
            )
        })?;
        tracing::debug!(staging = %path.display(), "created staging directory");
        staging.dir = Some(path);
        Ok(staging)
    }

    pub fn path(&self) -> &Path {
        self.dir.as_deref().unwrap_or(Path::new(""))
    }

    /// Moves the staged kit to `output`. An existing output is exchanged with the staged
    /// copy in one step; the previous output, now at the staging path, is removed on drop.
    pub fn commit(mut self, output: &Path) -> Result<()> {
        let staged = self.path().to_path_buf();
        match output.symlink_metadata() {
            Err(_) => fs::rename(&staged, output).map_err(|e| io_error(output, e))?,
            Ok(_) => exchange(&staged, output).map_err(|e| io_error(output, e))?,
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if dir.symlink_metadata().is_ok() {
                if let Err(e) = fs::remove_dir_all(&dir) {
                    tracing::debug!(path = %dir.display(), error = %e, "could not remove staging directory");
                }
            }
        }
        drop(self.lock.take());
        if !self.committed {
            for dir in self.created_parents.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
            if let (false, Some((dir, meta))) = (self.created_parents.is_empty(), &self.touched_ancestor) {
                let _ = copy_times(meta, dir);
            }
        }
    }
}

fn first_existing_ancestor(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.symlink_metadata().is_ok())
        .map(Path::to_path_buf)
}

/// `mkdir -p`, returning the directories it created (outermost first).
fn create_dirs_recording(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(d) = cursor {
        if d.symlink_metadata().is_ok() {
            break;
        }
        missing.push(d.to_path_buf());
        cursor = d.parent();
    }
    missing.reverse();
    let mut created = Vec::with_capacity(missing.len());
    for d in missing {
        // Never world-writable, whatever the umask. Another process (or a batch worker)
        // may create it first: then it is not ours to remove.
        match fs::DirBuilder::new().mode(0o755).create(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    Ok(created)
}

/// Atomically exchanges two paths (Linux `renameat2(RENAME_EXCHANGE)`); elsewhere, or
/// where the kernel or filesystem does not support the exchange, falls back to two
/// renames (docs/deviations.md O3).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    exchange_with(a, b, rename_exchange)
}

/// [`exchange`] with the atomic attempt passed in, so that the fallback can be tested on
/// a kernel that does support the exchange.
fn exchange_with(a: &Path, b: &Path, attempt: impl FnOnce(&Path, &Path) -> std::io::Result<()>) -> std::io::Result<()> {
    match attempt(a, b) {
        Ok(()) => return Ok(()),
        Err(e) if exchange_unsupported(&e) => {
            tracing::debug!(error = %e, "RENAME_EXCHANGE unsupported; falling back to two renames");
        }
        Err(e) => return Err(e),
    }
    let parked = hidden_sibling(b, &format!("previous-{}", std::process::id()));
    fs::rename(b, &parked)?;
    if let Err(e) = fs::rename(a, b) {
        let _ = fs::rename(&parked, b);
        return Err(e);
    }
    fs::rename(&parked, a)
}

/// The errors with which a kernel or filesystem says it has no `RENAME_EXCHANGE`.
fn exchange_unsupported(err: &std::io::Error) -> bool {
    let unsupported = [
        rustix::io::Errno::INVAL,
        rustix::io::Errno::NOSYS,
        rustix::io::Errno::NOTSUP,
    ];
    err.raw_os_error()
        .is_some_and(|code| unsupported.contains(&rustix::io::Errno::from_raw_os_error(code)))
}

#[cfg(target_os = "linux")]
fn rename_exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn rename_exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(
        rustix::io::Errno::NOSYS.raw_os_error(),
    ))
}

/// Copies the kit into `dest` (which exists), preserving modes and timestamps.
/// Symlinks that stay inside the kit are copied as (relative) links; links that leave
/// the kit, or dangle, are refused. `<kit>/prepared` and a receipt are skipped.
pub fn copy_kit(kit: &Path, dest: &Path, skips: &[String]) -> Result<()> {
    let mut skip: Vec<PathBuf> = skips.iter().map(|s| kit.join(s)).collect();
    skip.push(kit.join(PREPARED_DIR));
    // A kit made from an earlier output carries that output's receipt: never ours to copy.
    skip.push(kit.join(RECEIPT_FILE));
    copy_dir(kit, kit, dest, &skip)?;
    set_dir_metadata(kit, dest)
}

fn link_error(what: &str, from: &Path, target: &Path) -> Error {
    Error::invalid_kit(
        format!("{what}: {} -> {}", from.display(), target.display()),
        "Replace the link with the file it points to, or point it inside the kit.",
    )
}

/// `to` relative to the directory `from_dir` (both absolute, normalised).
fn relative_to(from_dir: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from_dir.components().collect();
    let target: Vec<_> = to.components().collect();
    let common = from.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for part in &target[common..] {
        rel.push(part.as_os_str());
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel
}

fn copy_dir(kit: &Path, src: &Path, dst: &Path, skip: &[PathBuf]) -> Result<()> {
    let entries = fs::read_dir(src).map_err(|e| io_error(src, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(src, e))?;
        let from = entry.path();
        if skip.contains(&from) {
            continue;
        }
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).map_err(|e| io_error(&from, e))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&from).map_err(|e| io_error(&from, e))?;
            let resolved = from
                .canonicalize()
                .map_err(|_| link_error("Broken symlink in the startup kit", &from, &target))?;
            if !resolved.starts_with(kit) || resolved.starts_with(kit.join(PREPARED_DIR)) {
                return Err(link_error("Symlink points outside the startup kit", &from, &target));
            }
            // Relative, so that the copy points into the copy and never back at the input.
            let resolved_dir = from
                .parent()
                .and_then(|p| p.canonicalize().ok())
                .unwrap_or_else(|| kit.to_path_buf());
            let relative = relative_to(&resolved_dir, &resolved);
            std::os::unix::fs::symlink(&relative, &to).map_err(|e| io_error(&to, e))?;
        } else if meta.is_dir() {
            fs::create_dir(&to).map_err(|e| io_error(&to, e))?;
            copy_dir(kit, &from, &to, skip)?;
            set_dir_metadata(&from, &to)?;
        } else if meta.is_file() {
            copy_file(&from, &to, &meta)?;
        } else {
            return Err(Error::invalid_kit(
                format!("Unsupported file type in the startup kit: {}", from.display()),
                "A kit holds only regular files, directories and links inside the kit.",
            ));
        }
    }
    Ok(())
}

/// The source directory's mode (never world-writable) and timestamps.
fn set_dir_metadata(src: &Path, dst: &Path) -> Result<()> {
    let meta = fs::metadata(src).map_err(|e| io_error(src, e))?;
    let mode = meta.permissions().mode() & 0o7775;
    fs::set_permissions(dst, fs::Permissions::from_mode(mode)).map_err(|e| io_error(dst, e))?;
    copy_times(&meta, dst)
}

/// Copies one file with the kernel's copy (no buffering in this process) and sets
/// mode and timestamps through the open handle: two opens per file in all.
fn copy_file(from: &Path, to: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut source = fs::File::open(from).map_err(|e| io_error(from, e))?;
    let mut target = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| io_error(to, e))?;
    std::io::copy(&mut source, &mut target).map_err(|e| io_error(from, e))?;
    target
        .set_permissions(meta.permissions())
        .map_err(|e| io_error(to, e))?;
    target.set_times(file_times(meta)).map_err(|e| io_error(to, e))
}

fn file_times(meta: &fs::Metadata) -> fs::FileTimes {
    let mut times = fs::FileTimes::new();
    if let Ok(t) = meta.accessed() {
        times = times.set_accessed(t);
    }
    if let Ok(t) = meta.modified() {
        times = times.set_modified(t);
    }
    times
}

fn copy_times(meta: &fs::Metadata, to: &Path) -> Result<()> {
    let times = file_times(meta);
    let file = match fs::File::open(to) {
        Ok(file) => file,
        // A file its owner cannot read keeps the copy time; its content and mode are exact.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(()),
        Err(e) => return Err(io_error(to, e)),
    };
    file.set_times(times).map_err(|e| io_error(to, e))
}

/// The swap's fallback (docs/deviations.md O3). The kernels and filesystems here support
/// `RENAME_EXCHANGE`, so "unsupported" is simulated by passing an attempt that fails
/// with the kernel's answer; the renames that follow are the real ones.
#[cfg(test)]
mod exchange_tests {
    use super::*;

    /// Two directories, `new` (one file `new`) and `old` (one file `old`), in `root`.
    fn two_dirs(root: &Path) -> (PathBuf, PathBuf) {
        let (new, old) = (root.join("new"), root.join("old"));
        for (dir, file) in [(&new, "new"), (&old, "old")] {
            fs::create_dir(dir).expect("mkdir");
            fs::write(dir.join(file), file).expect("write");
        }
        (new, old)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn os_error(errno: rustix::io::Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(errno.raw_os_error())
    }

    #[test]
    fn unsupported_exchange_falls_back_to_two_renames() {
        for errno in [
            rustix::io::Errno::INVAL,
            rustix::io::Errno::NOSYS,
            rustix::io::Errno::NOTSUP,
        ] {
            let root = tempfile::tempdir().expect("tmp");
            let (new, old) = two_dirs(root.path());
            exchange_with(&new, &old, |_, _| Err(os_error(errno))).expect("fallback");
            assert_eq!(names(&old), ["new"], "{errno:?}: the new tree is in place");
            assert_eq!(
                names(&new),
                ["old"],
                "{errno:?}: the previous tree is where the new one was"
            );
            assert_eq!(names(root.path()), ["new", "old"], "{errno:?}: no parked copy left");
        }
    }

    #[test]
    fn any_other_exchange_error_is_reported_and_changes_nothing() {
        let root = tempfile::tempdir().expect("tmp");
        let (new, old) = two_dirs(root.path());
        let err = exchange_with(&new, &old, |_, _| Err(os_error(rustix::io::Errno::ACCESS))).expect_err("refused");
        assert_eq!(err.raw_os_error(), Some(rustix::io::Errno::ACCESS.raw_os_error()));
        assert_eq!(names(&old), ["old"]);
        assert_eq!(names(&new), ["new"]);
    }

    #[test]
    fn only_the_kernels_unsupported_answers_count_as_unsupported() {
        assert!(exchange_unsupported(&os_error(rustix::io::Errno::NOSYS)));
        assert!(!exchange_unsupported(&os_error(rustix::io::Errno::PERM)));
        assert!(!exchange_unsupported(&os_error(rustix::io::Errno::NOENT)));
        assert!(!exchange_unsupported(&std::io::Error::other("not an OS error")));
    }

    #[test]
    fn the_real_exchange_swaps_both_trees() {
        let root = tempfile::tempdir().expect("tmp");
        let (new, old) = two_dirs(root.path());
        exchange(&new, &old).expect("exchange");
        assert_eq!(names(&old), ["new"]);
        assert_eq!(names(&new), ["old"]);
    }
}
