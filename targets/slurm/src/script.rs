//! `startup/start_slurm.sh` and `startup/parent.slurm` (nvflare 2.9.0's templates,
//! docs/dev/nvflare-2.9-behaviour.md C.5, C.6). Paths enter the scripts quoted; the
//! `#SBATCH` lines are comments to bash and carry validated values without whitespace;
//! `environment_setup` is the site's own shell code and is copied as it is.

use flare_deploy_core::shell;

use crate::config::SlurmParent;

/// `startup/start_slurm.sh`: runs the kit's `sub_start.sh` once, in the foreground, with
/// the prepared output as its workspace.
pub fn start_script(workspace: &str) -> String {
    format!(
        "#!/usr/bin/env bash\nset -euo pipefail\nexport NVFL_WORKSPACE={}\nexec \"$NVFL_WORKSPACE/startup/sub_start.sh\" --once\n",
        shell::word(workspace)
    )
}

/// `startup/parent.slurm`: the client parent as a Slurm batch job.
pub fn parent_script(workspace: &str, parent: &SlurmParent) -> String {
    let mut text = String::from("#!/usr/bin/env bash\n");
    for (key, value) in &parent.sbatch_directives {
        let value = value.as_str().unwrap_or_default();
        text.push_str(&format!("#SBATCH --{key}={value}\n"));
    }
    text.push_str("set -euo pipefail\n");
    if let Some(setup) = parent.environment_setup.as_deref().filter(|s| !s.is_empty()) {
        text.push_str(setup);
        if !setup.ends_with('\n') {
            text.push('\n');
        }
    }
    text.push_str(&format!(
        "WORKSPACE_ROOT={}\nexec \"$WORKSPACE_ROOT/startup/start_slurm.sh\"\n",
        shell::word(workspace)
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    #[test]
    fn parent_script_matches_the_reference_layout() {
        let mut directives = Map::new();
        directives.insert("partition".into(), Value::String("cpu".into()));
        directives.insert("time".into(), Value::String("7-00:00:00".into()));
        let parent = SlurmParent {
            sbatch_directives: directives,
            environment_setup: Some("module load python/3.11\nsource /opt/nvflare/venv/bin/activate".into()),
        };
        assert_eq!(
            parent_script("/tmp/nvf29/out/site-1-slurm", &parent),
            "#!/usr/bin/env bash\n#SBATCH --partition=cpu\n#SBATCH --time=7-00:00:00\nset -euo pipefail\nmodule load python/3.11\nsource /opt/nvflare/venv/bin/activate\nWORKSPACE_ROOT=/tmp/nvf29/out/site-1-slurm\nexec \"$WORKSPACE_ROOT/startup/start_slurm.sh\"\n"
        );
        assert!(start_script("/tmp/with space").contains("export NVFL_WORKSPACE='/tmp/with space'\n"));
    }
}
