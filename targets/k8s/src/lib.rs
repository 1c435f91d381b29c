//! flare-deploy target `k8s`: the parent runs as a Deployment installed from the
//! generated Helm chart and launches each job as a pod (NVFlare's Kubernetes job
//! launcher), with the prepared kit on a PersistentVolumeClaim.

mod actions;
mod bundle;
mod chart;
mod config;
mod image;
mod kubectl;
mod manifests;
mod stage;
mod staged_guard;
mod unstage;
mod values;

use std::path::Path;

use flare_deploy_core::naming::stable_k8s_name;
use flare_deploy_core::patch::scripts::ALWAYS_REPLACED;
use flare_deploy_core::prepare::display_path;
use flare_deploy_core::target::RuntimeName;
use flare_deploy_core::{
    action, shell, ActionContext, ActionSpec, KitInfo, LauncherClass, NvflareRelease, Outcome, Result, Role,
    RuntimeConfig, RuntimeTarget, StagedKit,
};
use serde_json::{Map, Value};

pub use config::{K8sConfig, K8sJobLauncher, K8sParent};
pub use image::{split_image, ImageRef};

pub const K8S_LAUNCHER: LauncherClass = LauncherClass {
    id: "k8s_launcher",
    server_path: "nvflare.app_opt.job_launcher.k8s_launcher.ServerK8sJobLauncher",
    client_path: "nvflare.app_opt.job_launcher.k8s_launcher.ClientK8sJobLauncher",
};

/// Helm release names are at most 53 characters.
pub const RELEASE_NAME_MAX: usize = 53;

/// The `runtime: k8s` target.
pub struct K8sTarget;

flare_deploy_core::register_target!(K8sTarget);

/// The Helm release name for a site.
pub fn release_name(site: &str) -> String {
    stable_k8s_name(site, RELEASE_NAME_MAX)
}

impl RuntimeTarget for K8sTarget {
    type Config = K8sConfig;

    fn name(&self) -> &'static str {
        "k8s"
    }

    fn summary(&self) -> &'static str {
        "Kubernetes: a Helm chart runs the parent Deployment; jobs run as pods"
    }

    fn launcher(&self) -> LauncherClass {
        K8S_LAUNCHER
    }

    fn copy_skips(&self) -> Vec<&'static str> {
        // Regenerated or removed in every prepare; copying them would be wasted I/O.
        let mut skips = ALWAYS_REPLACED.to_vec();
        skips.push(chart::CHART_DIR);
        skips
    }

    fn guard_replace(&self, output: &Path) -> Result<()> {
        staged_guard::check(output)
    }

    fn validate_config(&self, config: &RuntimeConfig) -> Result<K8sConfig> {
        config::validate(config)
    }

    fn patch_resources(&self, kit: &mut StagedKit<'_>, config: &K8sConfig) -> Result<()> {
        let mount = &config.parent.workspace_mount_path;
        let job = &config.job_launcher;
        let mut args = Map::new();
        args.insert(
            "config_file_path".into(),
            job.config_file_path.clone().map_or(Value::Null, Value::from),
        );
        let study_data_path = format!("{mount}/local/study_data.yaml");
        match kit.release {
            NvflareRelease::V2_8 => {
                args.insert("study_data_pvc_file_path".into(), study_data_path.into());
                args.insert("namespace".into(), config.namespace.clone().into());
                args.insert("default_python_path".into(), job.default_python_path.clone().into());
                args.insert("workspace_mount_path".into(), mount.clone().into());
            }
            NvflareRelease::V2_9 => {
                args.insert("namespace".into(), config.namespace.clone().into());
                args.insert("default_python_path".into(), job.default_python_path.clone().into());
                args.insert("workspace_mount_path".into(), mount.clone().into());
                // 2.9 reads study settings from study_runtime.yaml; the legacy file's
                // path is passed only for kits that still carry one.
                if kit.has_legacy_study_data() {
                    args.insert("study_data_pvc_file_path".into(), study_data_path.into());
                }
            }
        }
        if let Some(timeout) = job.pending_timeout {
            args.insert("pending_timeout".into(), timeout.map_or(Value::Null, Value::from));
        }
        if let Some(context) = &job.job_pod_security_context {
            args.insert("security_context".into(), Value::Object(context.clone()));
        }
        if let Some(secrets) = &job.image_pull_secrets {
            args.insert("image_pull_secrets".into(), secrets.clone().into());
        }
        kit.install_launcher(K8S_LAUNCHER, args)?;
        if kit.info.role == Role::Server {
            kit.relocate_server_storage(mount)?;
        }
        Ok(())
    }

    fn patch_comm_config(&self, kit: &mut StagedKit<'_>, config: &K8sConfig) -> Result<()> {
        let host = chart::parent_service_name(&kit.info, config);
        // NVFlare 2.8 always used a clear link; 2.9 the configured one and no shared files.
        let security = config.parent.internal_connection_security;
        kit.edit_comm_config(|comm| {
            if security.is_some() {
                comm.refuse_shared_file("Kubernetes")?;
            }
            let resources = comm.internal_resources()?;
            resources.insert("host".into(), host.into());
            resources.insert("port".into(), config.parent.parent_port.into());
            let security = security.map_or("clear", |s| s.as_str());
            resources.insert("connection_security".into(), security.into());
            comm.set_scheme("tcp")
        })
    }

    fn emit_artifacts(&self, kit: &mut StagedKit<'_>, config: &K8sConfig) -> Result<()> {
        kit.ensure_study_template()?;
        kit.remove_start_scripts(&[])?;
        chart::write_chart(kit, config)
    }

    /// The reference's `nvflare deploy k8 ...` spelling.
    fn aliases(&self) -> &'static [&'static str] {
        &["k8"]
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![actions::stage_spec(), actions::unstage_spec()]
    }

    fn run_action(&self, context: &mut ActionContext<'_>) -> Result<Outcome> {
        match context.spec.name.as_str() {
            actions::STAGE => stage::run(context),
            actions::UNSTAGE => unstage::run(context),
            other => Err(action::undeclared("k8s", other)),
        }
    }

    /// The names the chart gives the site's objects, per namespace: the Helm release, the
    /// Deployment (and its ServiceAccount and Role) and the Service.
    fn runtime_names(&self, kit: &KitInfo, config: &K8sConfig) -> Vec<RuntimeName> {
        let namespace = format!("namespace '{}'", config.namespace);
        let object = stable_k8s_name(&kit.name, chart::NAME_MAX);
        let service = match kit.role {
            Role::Server => config.server_service_name.clone(),
            _ => object.clone(),
        };
        vec![
            RuntimeName::new("Helm release name", release_name(&kit.name)).within(&namespace),
            RuntimeName::new("Kubernetes Deployment name", object).within(&namespace),
            RuntimeName::new("Kubernetes Service name", service).within(&namespace),
        ]
    }

    fn describe(&self, kit: &KitInfo, config: &K8sConfig, output: &Path) -> Outcome {
        let chart = output.join(chart::CHART_DIR);
        let helm_command = format!(
            "helm upgrade --install {} {} --namespace {}",
            release_name(&kit.name),
            shell::quote(&display_path(&chart)),
            config.namespace
        );
        Outcome::new()
            .field("runtime", "k8s")
            .field("role", kit.role.as_str())
            .field("name", kit.name.as_str())
            .field("namespace", config.namespace.as_str())
            .field("output", display_path(output))
            .field("helm_chart", display_path(&chart))
            .field("helm_command", helm_command)
            .field(
                "resources",
                display_path(&output.join("local").join("resources.json.default")),
            )
    }
}
