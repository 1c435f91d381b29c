//! flare-deploy target `docker`: the parent runs in a container started by
//! `startup/start_docker.sh` and launches each job in its own container through the
//! Docker socket (NVFlare's Docker job launcher).

mod config;
mod script;

use std::path::Path;

use flare_deploy_core::naming::docker_container_name;
use flare_deploy_core::patch::scripts::ALWAYS_REPLACED;
use flare_deploy_core::prepare::display_path;
use flare_deploy_core::target::RuntimeName;
use flare_deploy_core::{shell, LauncherClass, Outcome, Result, Role, RuntimeConfig, RuntimeTarget, StagedKit};
use flare_deploy_core::{KitInfo, WORKSPACE_MOUNT_PATH};
use serde_json::{Map, Value};

pub use config::{DockerConfig, DockerJobLauncher, DockerParent};

/// The start script this target writes into `startup/`.
pub const START_SCRIPT: &str = "start_docker.sh";

pub use flare_deploy_core::patch::resources::DOCKER_LAUNCHER;

/// The `runtime: docker` target.
pub struct DockerTarget;

flare_deploy_core::register_target!(DockerTarget);

impl RuntimeTarget for DockerTarget {
    type Config = DockerConfig;

    fn name(&self) -> &'static str {
        "docker"
    }

    fn summary(&self) -> &'static str {
        "Docker: startup/start_docker.sh runs the parent container; jobs run as sibling containers"
    }

    fn launcher(&self) -> LauncherClass {
        DOCKER_LAUNCHER
    }

    fn copy_skips(&self) -> Vec<&'static str> {
        // Regenerated or removed in every prepare; copying them would be wasted I/O.
        ALWAYS_REPLACED.to_vec()
    }

    fn validate_config(&self, config: &RuntimeConfig) -> Result<DockerConfig> {
        config::validate(config)
    }

    fn patch_resources(&self, kit: &mut StagedKit<'_>, config: &DockerConfig) -> Result<()> {
        let mut args = Map::new();
        args.insert("network".into(), config.parent.network.clone().into());
        args.insert(
            "default_python_path".into(),
            config.job_launcher.default_python_path.clone().into(),
        );
        args.insert(
            "default_job_container_kwargs".into(),
            Value::Object(config.job_launcher.default_job_container_kwargs.clone()),
        );
        args.insert(
            "default_job_env".into(),
            Value::Object(config.job_launcher.default_job_env.clone()),
        );
        kit.install_launcher(DOCKER_LAUNCHER, args)?;
        if kit.info.role == Role::Server {
            kit.relocate_server_storage(WORKSPACE_MOUNT_PATH)?;
        }
        Ok(())
    }

    fn patch_comm_config(&self, kit: &mut StagedKit<'_>, config: &DockerConfig) -> Result<()> {
        match config.parent.internal_connection_security {
            // NVFlare 2.9: no shared files across containers; the configured security.
            Some(security) => kit.edit_comm_config(|comm| {
                comm.refuse_shared_file("Docker")?;
                comm.listen_in_container_secured(security)
            }),
            None => kit.edit_comm_config(|comm| comm.listen_in_container()),
        }
    }

    fn emit_artifacts(&self, kit: &mut StagedKit<'_>, config: &DockerConfig) -> Result<()> {
        kit.ensure_study_template()?;
        kit.remove_start_scripts(&[START_SCRIPT])?;
        let text = script::render(&kit.info, config, kit.release)?;
        kit.write_file(&format!("startup/{START_SCRIPT}"), &text, true)?;
        Ok(())
    }

    /// The parent container's name: two sites with one name cannot run on one host.
    fn runtime_names(&self, kit: &KitInfo, _config: &DockerConfig) -> Vec<RuntimeName> {
        vec![RuntimeName::new(
            "Docker container name",
            docker_container_name(&kit.name),
        )]
    }

    fn describe(&self, kit: &KitInfo, _config: &DockerConfig, output: &Path) -> Outcome {
        let out = display_path(output);
        Outcome::new()
            .field("runtime", "docker")
            .field("role", kit.role.as_str())
            .field("name", kit.name.as_str())
            .field("output", out.as_str())
            .field(
                "start_command",
                format!("cd {} && ./startup/{START_SCRIPT}", shell::quote(&out)),
            )
            .field("start_script", display_path(&output.join("startup").join(START_SCRIPT)))
            .field(
                "resources",
                display_path(&output.join("local").join("resources.json.default")),
            )
    }
}
