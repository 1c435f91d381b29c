//! `local/study_data.yaml`: the template operators fill with per-study data mounts.

use std::path::Path;

use crate::error::io_error;
use crate::error::Result;

pub const STUDY_DATA_YAML: &str = "study_data.yaml";

pub const STUDY_DATA_TEMPLATE: &str = "# Study data mapping used by Docker and Kubernetes job launchers.
# Example:
# default:
#   training:
#     source: /data/training    # Docker: host path; K8s: PVC claim name
#     mode: ro                  # ro or rw
{}
";

/// Writes the template unless the kit already has something of that name.
pub fn ensure_template(local: &Path) -> Result<()> {
    let path = local.join(STUDY_DATA_YAML);
    if path.symlink_metadata().is_ok() {
        return Ok(());
    }
    std::fs::write(&path, STUDY_DATA_TEMPLATE).map_err(|e| io_error(&path, e))
}
