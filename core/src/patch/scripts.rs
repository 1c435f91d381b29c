//! The provisioned start scripts, which start the parent as a local process and are
//! wrong for a container runtime.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::io_error;
use crate::error::Result;

/// Scripts a provisioned kit (or an earlier prepare) may carry in `startup/`.
pub const START_SCRIPTS: [&str; 5] = ["start.sh", "sub_start.sh", "stop_fl.sh", "docker.sh", "start_docker.sh"];

/// NVFlare 2.9 also removes the Slurm start files an earlier prepare may have written.
pub const START_SCRIPTS_2_9: [&str; 7] = [
    "start.sh",
    "sub_start.sh",
    "stop_fl.sh",
    "docker.sh",
    "start_docker.sh",
    "start_slurm.sh",
    "parent.slurm",
];

/// What every built-in target deletes or regenerates, so need not copy: the start
/// scripts and the `resources.json` override that shadows the prepared defaults.
pub const ALWAYS_REPLACED: [&str; 6] = [
    "startup/start.sh",
    "startup/sub_start.sh",
    "startup/stop_fl.sh",
    "startup/docker.sh",
    "startup/start_docker.sh",
    "local/resources.json",
];

/// Removes `scripts` from `startup/`, except `keep`.
pub fn remove_start_scripts(startup: &Path, scripts: &[&str], keep: &[&str]) -> Result<()> {
    for name in scripts.iter().filter(|n| !keep.contains(n)) {
        let path = startup.join(name);
        if path.symlink_metadata().is_ok() {
            std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
        }
    }
    Ok(())
}

/// `chmod u+x,g+x,o+x`.
pub fn add_exec_bits(path: &Path) -> Result<()> {
    let mut perms = std::fs::metadata(path).map_err(|e| io_error(path, e))?.permissions();
    perms.set_mode(perms.mode() | 0o111);
    std::fs::set_permissions(path, perms).map_err(|e| io_error(path, e))
}
