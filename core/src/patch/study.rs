//! The per-study template operators fill with data mounts: `local/study_data.yaml`
//! (NVFlare 2.8) or `local/study_runtime.yaml` (NVFlare 2.9).

use std::path::Path;

use crate::error::io_error;
use crate::error::{Error, Result};

pub const STUDY_DATA_YAML: &str = "study_data.yaml";

pub const STUDY_DATA_TEMPLATE: &str = "# Study data mapping used by Docker and Kubernetes job launchers.
# Example:
# default:
#   training:
#     source: /data/training    # Docker: host path; K8s: PVC claim name
#     mode: ro                  # ro or rw
{}
";

pub const STUDY_RUNTIME_YAML: &str = "study_runtime.yaml";

/// NVFlare 2.9's per-study runtime file (format_version 2), byte for byte what nvflare
/// 2.9.0 writes: job launchers read it, so its text is part of the kit's contract.
pub const STUDY_RUNTIME_TEMPLATE: &str = include_str!("../../../templates/study_runtime.yaml");

/// NVFlare 2.9: writes `local/study_runtime.yaml` unless the kit has one, or has a
/// legacy `study_data.yaml` (the two must not coexist; the legacy file is kept).
pub fn ensure_runtime_template(local: &Path) -> Result<()> {
    let path = local.join(STUDY_RUNTIME_YAML);
    let (runtime, legacy) = (
        path.symlink_metadata().is_ok(),
        local.join(STUDY_DATA_YAML).symlink_metadata().is_ok(),
    );
    if runtime && legacy {
        // nvflare 2.9.0 prepares such a kit, and its job launchers then refuse every job.
        return Err(Error::invalid_kit(
            "The kit has both local/study_runtime.yaml and local/study_data.yaml; NVFlare 2.9's job launchers refuse to run jobs with both.",
            "Keep one: move the settings of study_data.yaml into study_runtime.yaml (format_version 2) and remove study_data.yaml.",
        ));
    }
    if runtime || legacy {
        return Ok(());
    }
    std::fs::write(&path, STUDY_RUNTIME_TEMPLATE).map_err(|e| io_error(&path, e))
}

/// Writes the template unless the kit already has something of that name.
pub fn ensure_template(local: &Path) -> Result<()> {
    let path = local.join(STUDY_DATA_YAML);
    if path.symlink_metadata().is_ok() {
        return Ok(());
    }
    std::fs::write(&path, STUDY_DATA_TEMPLATE).map_err(|e| io_error(&path, e))
}
