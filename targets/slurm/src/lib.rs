//! flare-deploy target `slurm` (NVFlare 2.9): the parent runs on a login node
//! (`startup/start_slurm.sh`) or, for a client, as a Slurm batch job
//! (`startup/parent.slurm`), and NVFlare's Slurm job launcher submits every FL job as
//! its own Slurm job. The prepared output is the live workspace on the shared
//! filesystem: its path is written into the kit, so it must not move afterwards.

mod config;
mod script;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use flare_deploy_core::patch::scripts::ALWAYS_REPLACED;
use flare_deploy_core::prepare::display_path;
use flare_deploy_core::{shell, Error, LauncherClass, NvflareRelease, Outcome, Result, Role};
use flare_deploy_core::{KitInfo, RuntimeConfig, RuntimeTarget, StagedKit};
use serde_json::{json, Map, Value};

pub use config::{Executables, Sandbox, SlurmConfig, SlurmJobLauncher, SlurmParent};
use flare_deploy_core::patch::comm::InternalSecurity;

/// The start script this target writes into `startup/`.
pub const START_SCRIPT: &str = "start_slurm.sh";
/// The parent batch script of a client with `parent:`.
pub const PARENT_SCRIPT: &str = "parent.slurm";
/// The kit's own start script, which `start_slurm.sh` runs.
pub const SUB_START: &str = "sub_start.sh";

/// NVFlare's Slurm job launcher.
pub const SLURM_LAUNCHER: LauncherClass = LauncherClass {
    id: "slurm_launcher",
    server_path: "nvflare.app_opt.job_launcher.slurm.ServerSlurmJobLauncher",
    client_path: "nvflare.app_opt.job_launcher.slurm.ClientSlurmJobLauncher",
};

const SHARED_FILE: &str = "shared-file";
const COMM_HINT: &str = "Fix the startup kit comm config.";

/// The `runtime: slurm` target.
pub struct SlurmTarget;

flare_deploy_core::register_target!(SlurmTarget);

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::prepare_failed(format_args!("{}: {e}", path.display())))
}

/// The output as the workspace path Slurm and the launcher take (C.7): absolute, UTF-8,
/// without `:` or `,` (nvflare 2.9.0) nor `%` (a filename pattern to `sbatch --output`).
fn workspace_path(output: &Path) -> Result<String> {
    let refuse = |why: &str| {
        Error::invalid_args(
            format!("Invalid Slurm output workspace: workspace_path {why}"),
            "Choose a different --output path.",
        )
    };
    let Some(text) = output.to_str() else {
        return Err(refuse("must be valid UTF-8"));
    };
    if !output.is_absolute() {
        return Err(refuse("must be absolute"));
    }
    if text.contains(':') {
        return Err(refuse("must not contain the path-list separator ':'"));
    }
    if text.contains(',') {
        return Err(refuse("must not contain ','"));
    }
    if text.contains('%') {
        return Err(refuse("must not contain '%' (sbatch reads it as a filename pattern)"));
    }
    Ok(text.to_string())
}

fn launcher_args(launcher: &SlurmJobLauncher, workspace: &str) -> Map<String, Value> {
    let e = &launcher.executables;
    let mut args = Map::new();
    args.insert("sandbox".into(), launcher.sandbox.as_str().into());
    args.insert("python_path".into(), launcher.python_path.clone().into());
    args.insert(
        "executables".into(),
        json!({
            "sbatch": e.sbatch, "squeue": e.squeue, "sacct": e.sacct,
            "scancel": e.scancel, "apptainer": e.apptainer, "srun": e.srun,
        }),
    );
    args.insert("image".into(), launcher.image.clone().into());
    args.insert("internal_port".into(), launcher.internal_port.into());
    args.insert(
        "sbatch_directives".into(),
        Value::Object(launcher.sbatch_directives.clone()),
    );
    args.insert("setup".into(), launcher.setup.clone().into());
    args.insert("forward_env".into(), launcher.forward_env.clone().into());
    args.insert("parent_host".into(), launcher.parent_host.clone().into());
    for (key, value) in [
        ("submit_timeout", launcher.submit_timeout),
        ("query_timeout", launcher.query_timeout),
        ("cancel_timeout", launcher.cancel_timeout),
        ("poll_interval", launcher.poll_interval),
        ("pending_timeout", launcher.pending_timeout),
    ] {
        args.insert(key.into(), value.into());
    }
    if let Some([start, end]) = launcher.multi_node_port_range {
        args.insert("multi_node_port_range".into(), json!([start, end]));
    }
    args.insert("workspace_path".into(), workspace.into());
    args
}

impl RuntimeTarget for SlurmTarget {
    type Config = SlurmConfig;

    fn name(&self) -> &'static str {
        "slurm"
    }

    fn summary(&self) -> &'static str {
        "Slurm (NVFlare 2.9 or later): startup/start_slurm.sh or an sbatch of startup/parent.slurm runs the parent; jobs run as Slurm jobs"
    }

    fn launcher(&self) -> LauncherClass {
        SLURM_LAUNCHER
    }

    fn releases(&self) -> &'static [NvflareRelease] {
        &[NvflareRelease::V2_9]
    }

    fn copy_skips(&self) -> Vec<&'static str> {
        // The kit's sub_start.sh is what start_slurm.sh runs: it is kept.
        ALWAYS_REPLACED
            .iter()
            .copied()
            .filter(|p| *p != "startup/sub_start.sh")
            .chain(["startup/start_slurm.sh", "startup/parent.slurm"])
            .collect()
    }

    fn validate_config(&self, config: &RuntimeConfig) -> Result<SlurmConfig> {
        config::validate(config)
    }

    fn patch_resources(&self, kit: &mut StagedKit<'_>, config: &SlurmConfig) -> Result<()> {
        let server = kit.info.role == Role::Server;
        if server && config.parent.is_some() {
            return Err(Error::invalid_config(
                "Slurm server kits do not support parent configuration.",
                "Run the server parent on a stable login/service host and remove parent from slurm.yaml.",
            ));
        }
        let workspace = workspace_path(&kit.final_output)?;
        // nvflare 2.9.0 prepares both; start_slurm.sh then execs a missing file, or the
        // launcher refuses the first job (deviations SL1, SL2).
        if !kit.startup_dir().join(SUB_START).is_file() {
            return Err(Error::invalid_kit(
                "The kit has no startup/sub_start.sh, which startup/start_slurm.sh runs.",
                "Prepare a kit provisioned by NVFlare 2.9 (not an output already prepared for another runtime).",
            ));
        }
        if kit.has_legacy_study_data() {
            return Err(Error::invalid_kit(
                "The kit has a legacy local/study_data.yaml, which NVFlare 2.9's Slurm job launcher refuses.",
                "Move its settings into local/study_runtime.yaml (format_version 2) and remove local/study_data.yaml.",
            ));
        }
        kit.install_launcher_path(
            SLURM_LAUNCHER.id,
            SLURM_LAUNCHER.path_for(kit.info.role),
            launcher_args(&config.job_launcher, &workspace),
        )?;
        if server {
            kit.relocate_server_storage(&workspace)?;
            if config.job_launcher.parent_host.is_none() {
                // Deviation SL6.
                kit.warn(
                    "Slurm server kit without job_launcher.parent_host: its jobs cannot reach the server parent \
                     unless the parent runs inside a Slurm allocation. Set job_launcher.parent_host to the \
                     host the server parent runs on.",
                );
            }
        }
        Ok(())
    }

    fn patch_comm_config(&self, kit: &mut StagedKit<'_>, config: &SlurmConfig) -> Result<()> {
        let launcher = &config.job_launcher;
        let mut port_unused = false;
        kit.edit_comm_config(|comm| {
            let shared_file = comm.internal()?.get("scheme").and_then(Value::as_str) == Some(SHARED_FILE);
            if !shared_file {
                comm.set_scheme("tcp")?;
                let resources = comm.internal_resources()?;
                resources.insert("host".into(), "0.0.0.0".into());
                resources.insert("port".into(), launcher.internal_port.into());
                resources.insert(
                    "connection_security".into(),
                    launcher.internal_connection_security.as_str().into(),
                );
                return Ok(());
            }
            let resources = comm.internal_resources()?;
            let absolute = resources
                .get("root_dir")
                .and_then(Value::as_str)
                .is_some_and(|d| d.starts_with('/'));
            if !absolute {
                return Err(Error::invalid_kit(
                    "file transport requires an absolute internal.resources.root_dir.",
                    COMM_HINT,
                ));
            }
            let security = resources
                .entry("connection_security")
                .or_insert_with(|| "clear".into());
            if security.as_str() != Some("clear") {
                return Err(Error::invalid_kit(
                    "file transport supports only clear connection security.",
                    COMM_HINT,
                ));
            }
            // nvflare 2.9.0 ignores both settings silently (deviation SL3).
            if launcher.internal_connection_security_set
                && launcher.internal_connection_security == InternalSecurity::Mtls
            {
                return Err(Error::invalid_config(
                    "job_launcher.internal_connection_security is 'mtls', but the kit's internal.scheme 'shared-file' supports only clear connection security.",
                    "Remove job_launcher.internal_connection_security (or set it to 'clear'), or use a kit whose internal.scheme is 'tcp'.",
                ));
            }
            port_unused = launcher.internal_port_set;
            Ok(())
        })?;
        if port_unused {
            kit.warn(
                "job_launcher.internal_port is not used: the kit's internal.scheme is 'shared-file', \
                 whose jobs talk to the parent through files under internal.resources.root_dir.",
            );
        }
        Ok(())
    }

    fn emit_artifacts(&self, kit: &mut StagedKit<'_>, config: &SlurmConfig) -> Result<()> {
        let workspace = workspace_path(&kit.final_output)?;
        kit.ensure_study_template()?;
        kit.remove_start_scripts(&[SUB_START])?;
        let start = kit.write_file(
            &format!("startup/{START_SCRIPT}"),
            &script::start_script(&workspace),
            false,
        )?;
        set_mode(&start, 0o700)?;
        set_mode(kit.root(), 0o700)?;
        if let Some(parent) = &config.parent {
            let text = script::parent_script(&workspace, parent);
            let path = kit.write_file(&format!("startup/{PARENT_SCRIPT}"), &text, false)?;
            set_mode(&path, 0o700)?;
        }
        Ok(())
    }

    fn describe(&self, kit: &KitInfo, config: &SlurmConfig, output: &Path) -> Outcome {
        let out = display_path(output);
        let startup = output.join("startup");
        let outcome = Outcome::new()
            .field("runtime", "slurm")
            .field("role", kit.role.as_str())
            .field("name", kit.name.as_str())
            .field("output", out.as_str())
            .field(
                "start_command",
                format!("cd {} && ./startup/{START_SCRIPT}", shell::quote(&out)),
            )
            .field("start_script", display_path(&startup.join(START_SCRIPT)))
            .field(
                "resources",
                display_path(&output.join("local").join("resources.json.default")),
            );
        if config.parent.is_none() {
            return outcome;
        }
        let submit = [
            "sbatch".to_string(),
            "--parsable".to_string(),
            format!("--output={out}/parent-slurm-%j.out"),
            display_path(&startup.join(PARENT_SCRIPT)),
        ];
        let submit: Vec<String> = submit.iter().map(|a| shell::quote(a)).collect();
        outcome.field("submit_command", submit.join(" "))
    }
}
