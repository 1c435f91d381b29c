//! The guard that keeps a prepare from replacing a Kubernetes output whose `local/` and
//! `startup/` are still staged in the cluster (NVFlare 2.9's `OUTPUT_STAGED`): the
//! ConfigMap and Secret recorded in `helm_chart/values.yaml` would be orphaned, and a
//! running release would keep mounting the old files.

use std::path::Path;

use flare_deploy_core::{shell, Error, ErrorCode, Result};

use crate::values::{self, Record};

/// `Ok` unless `<output>/helm_chart/values.yaml` records a staged ConfigMap or Secret.
pub fn check(output: &Path) -> Result<()> {
    let values = values::load(output)?;
    if Record::of(values.as_ref())?.is_staged() {
        return Err(Error::new(
            ErrorCode::OutputStaged,
            format!(
                "Prepared Kubernetes output still has staged resources: {}",
                output.display()
            ),
            format!(
                "After Helm uninstall, run flare-deploy k8s unstage {} before replacing this output.",
                shell::quote(&output.to_string_lossy())
            ),
        ));
    }
    Ok(())
}
