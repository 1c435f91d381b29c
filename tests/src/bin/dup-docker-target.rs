//! A deliberately misbuilt binary for the duplicate-registration test: it links the
//! built-in Docker target (through `flare_deploy`) and registers a second target that is
//! also named `docker`. Every command must fail with `DUPLICATE_TARGET` (exit 5).

use std::path::Path;

use flare_deploy_core::{KitInfo, LauncherClass, Outcome, Result, RuntimeConfig, RuntimeTarget, StagedKit};

/// The (empty) config of the duplicate target.
#[derive(schemars::JsonSchema)]
struct DupConfig;

struct DupDockerTarget;

flare_deploy_core::register_target!(DupDockerTarget);

impl RuntimeTarget for DupDockerTarget {
    type Config = DupConfig;

    fn name(&self) -> &'static str {
        "docker"
    }

    fn summary(&self) -> &'static str {
        "A second target named docker (test only)"
    }

    fn launcher(&self) -> LauncherClass {
        LauncherClass {
            id: "dup_launcher",
            server_path: "dup.ServerLauncher",
            client_path: "dup.ClientLauncher",
        }
    }

    fn validate_config(&self, _config: &RuntimeConfig) -> Result<DupConfig> {
        Ok(DupConfig)
    }

    fn patch_resources(&self, _kit: &mut StagedKit<'_>, _config: &DupConfig) -> Result<()> {
        Ok(())
    }

    fn patch_comm_config(&self, _kit: &mut StagedKit<'_>, _config: &DupConfig) -> Result<()> {
        Ok(())
    }

    fn emit_artifacts(&self, _kit: &mut StagedKit<'_>, _config: &DupConfig) -> Result<()> {
        Ok(())
    }

    fn describe(&self, _kit: &KitInfo, _config: &DupConfig, _output: &Path) -> Outcome {
        Outcome::new()
    }
}

fn main() {
    std::process::exit(flare_deploy::run());
}
