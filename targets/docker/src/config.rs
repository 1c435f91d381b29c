//! `runtime: docker` config: keys, defaults and validation in the reference's order
//! (reference spec section 2.2). The structs mirror the YAML; their docs and defaults
//! are the JSON Schema users read (`flare-deploy targets show docker`).

use flare_deploy_core::config::{
    allowed_keys, internal_connection_security, optional_json_object, optional_mapping, optional_section, optional_str,
    required_section, required_str,
};
use flare_deploy_core::patch::comm::InternalSecurity;
use flare_deploy_core::{pyrepr, Error, NvflareRelease, Result, RuntimeConfig};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

pub const DEFAULT_NETWORK: &str = "nvflare-network";
pub const DEFAULT_JOB_PYTHON_PATH: &str = "/usr/local/bin/python";

/// Keys of `default_job_container_kwargs` that the Docker job launcher sets itself.
const RESERVED_CONTAINER_KWARGS: [&str; 9] = [
    "volumes",
    "mounts",
    "network",
    "environment",
    "command",
    "name",
    "detach",
    "user",
    "working_dir",
];

/// NVFlare 2.9's launcher also sets these.
const RESERVED_CONTAINER_KWARGS_2_9: [&str; 2] = ["auto_remove", "image"];

fn default_network() -> String {
    DEFAULT_NETWORK.into()
}

fn default_job_python_path() -> String {
    DEFAULT_JOB_PYTHON_PATH.into()
}

/// Runtime config for Docker: the parent (server or client) runs in a container started
/// by `startup/start_docker.sh`, and each job runs in its own container started through
/// the Docker socket. An explicit `null` for an optional key means its default.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "flare-deploy runtime config: docker")]
pub struct DockerConfig {
    /// Selects this target.
    #[schemars(extend("const" = "docker"))]
    pub runtime: String,
    /// The parent (server or client) container.
    pub parent: DockerParent,
    /// The Docker job launcher that starts job containers.
    #[serde(default)]
    #[schemars(with = "Option<DockerJobLauncher>")]
    pub job_launcher: DockerJobLauncher,
}

/// `parent:` keys.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerParent {
    /// Image of the parent container (`NVFL_P_IMAGE` overrides it when the script runs).
    #[schemars(length(min = 1))]
    pub docker_image: String,
    /// Docker network shared by the parent and its job containers; the start script
    /// creates it when missing.
    #[serde(default = "default_network")]
    #[schemars(with = "Option<String>", length(min = 1))]
    pub network: String,
    /// NVFlare 2.9 only: how the parent and its job containers secure their internal
    /// link, `mtls` (default) or `clear`; written to `local/comm_config.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_connection_security: Option<InternalSecurity>,
}

/// `job_launcher:` keys.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerJobLauncher {
    /// Python executable inside job containers.
    #[serde(default = "default_job_python_path")]
    #[schemars(with = "Option<String>", length(min = 1))]
    pub default_python_path: String,
    /// Environment variables set in every job container.
    #[serde(default)]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub default_job_env: Map<String, Value>,
    /// Extra Docker SDK `containers.run` arguments for every job container (e.g.
    /// `shm_size: 8g`). The launcher's own keys (volumes, mounts, network, environment,
    /// command, name, detach, user, working_dir; with NVFlare 2.9 also auto_remove and
    /// image) are refused.
    #[serde(default)]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub default_job_container_kwargs: Map<String, Value>,
}

impl Default for DockerJobLauncher {
    fn default() -> Self {
        DockerJobLauncher {
            default_python_path: default_job_python_path(),
            default_job_env: Map::new(),
            default_job_container_kwargs: Map::new(),
        }
    }
}

pub fn validate(config: &RuntimeConfig) -> Result<DockerConfig> {
    let v2_9 = config.release >= NvflareRelease::V2_9;
    let root = &config.root;
    allowed_keys(root, &["runtime", "parent", "job_launcher"], "docker config")?;
    let parent = required_section(root, "parent", "parent.docker_image")?;
    let job_launcher = optional_section(root, "job_launcher")?;
    let parent_keys: &[&str] = if v2_9 {
        &["docker_image", "network", "internal_connection_security"]
    } else {
        &["docker_image", "network"]
    };
    allowed_keys(&parent, parent_keys, "parent")?;
    allowed_keys(
        &job_launcher,
        &["default_python_path", "default_job_env", "default_job_container_kwargs"],
        "job_launcher",
    )?;
    let docker_image = required_str(&parent, "docker_image", "parent")?;
    let internal_connection_security = if v2_9 {
        Some(internal_connection_security(&parent)?)
    } else {
        None
    };
    let network = optional_str(&parent, "network", "parent")?.unwrap_or_else(default_network);
    let default_python_path =
        optional_str(&job_launcher, "default_python_path", "job_launcher")?.unwrap_or_else(default_job_python_path);
    let env = optional_json_object(&job_launcher, "default_job_env", "job_launcher")?;
    let kwargs_key = "default_job_container_kwargs";
    if let Some(kwargs) = optional_mapping(&job_launcher, kwargs_key, "job_launcher")? {
        let reserved_2_9: &[&str] = if v2_9 { &RESERVED_CONTAINER_KWARGS_2_9 } else { &[] };
        let reserved: Vec<&serde_yaml::Value> = kwargs
            .keys()
            .filter(|k| {
                k.as_str()
                    .is_some_and(|k| RESERVED_CONTAINER_KWARGS.contains(&k) || reserved_2_9.contains(&k))
            })
            .collect();
        if !reserved.is_empty() {
            let hint = if v2_9 {
                "Remove keys controlled by DockerJobLauncher. For a site default job image, set studies.<study>.container.image in local/study_runtime.yaml."
            } else {
                "Remove keys controlled by DockerJobLauncher."
            };
            return Err(Error::invalid_config(
                format!(
                    "default_job_container_kwargs contains reserved keys: {}",
                    pyrepr::sorted_list(&reserved)
                ),
                hint,
            ));
        }
    }
    Ok(DockerConfig {
        runtime: config.runtime().to_string(),
        parent: DockerParent {
            docker_image,
            network,
            internal_connection_security,
        },
        job_launcher: DockerJobLauncher {
            default_python_path,
            default_job_env: env.unwrap_or_default(),
            default_job_container_kwargs: optional_json_object(&job_launcher, kwargs_key, "job_launcher")?
                .unwrap_or_default(),
        },
    })
}
