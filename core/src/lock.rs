//! One writer per output: a lock file beside the output, held while a prepare stages
//! and swaps. A second run for the same output waits for the first.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorCode, Result};

/// How long a run waits for another run on the same output (seconds); default 120.
pub const LOCK_TIMEOUT_ENV: &str = "FLARE_DEPLOY_LOCK_TIMEOUT";

fn wait_limit() -> Duration {
    std::env::var(LOCK_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::from_secs(120), Duration::from_secs_f64)
}
const POLL: Duration = Duration::from_millis(25);

/// The held lock. Dropping it removes the lock file and releases the lock.
pub struct OutputLock {
    path: PathBuf,
    file: Option<File>,
}

/// `<parent>/.<output name>.lock`.
pub fn lock_path(output: &Path) -> PathBuf {
    crate::paths::hidden_sibling(output, "lock")
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl OutputLock {
    /// Waits for the lock of `output` (whose parent directory exists).
    pub fn acquire(output: &Path) -> Result<OutputLock> {
        let path = lock_path(output);
        let start = Instant::now();
        let limit = wait_limit();
        let mut announced = false;
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| {
                    Error::invalid_args(
                        format!("Cannot create the lock file {}", path.display()),
                        format!("Check the output's parent directory: {e}"),
                    )
                })?;
            match file.try_lock() {
                // A previous holder may have removed the file after we opened it: only
                // the file still at the path counts.
                Ok(()) if same_file(&file, &path) => return Ok(OutputLock { path, file: Some(file) }),
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    if !announced {
                        tracing::info!(lock = %path.display(), "another prepare is writing this output; waiting");
                        announced = true;
                    }
                    if start.elapsed() > limit {
                        return Err(Error::new(
                            ErrorCode::OutputLocked,
                            format!("Another flare-deploy run is preparing {}", output.display()),
                            format!(
                                "Wait for it to finish (or set {LOCK_TIMEOUT_ENV} to wait longer); the lock is {}.",
                                path.display()
                            ),
                        ));
                    }
                    std::thread::sleep(POLL);
                }
                Err(TryLockError::Error(e)) => {
                    return Err(Error::invalid_args(
                        format!("Cannot lock {}", path.display()),
                        format!("Check the output's parent directory: {e}"),
                    ))
                }
            }
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Remove while still holding it, so a waiter re-checks the path and retries.
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}
