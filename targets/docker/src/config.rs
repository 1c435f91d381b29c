//! `runtime: docker` config: keys, defaults and validation in the reference's order
//! (reference spec section 2.2).

use flare_deploy_core::config::{
    allowed_keys, optional_mapping, optional_section, optional_str, required_section, required_str,
    yaml_to_json,
};
use flare_deploy_core::{pyrepr, Error, Result, RuntimeConfig};
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

/// A validated `runtime: docker` config.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerConfig {
    /// `parent.docker_image`: image of the parent container (required).
    pub docker_image: String,
    /// `parent.network`: Docker network of parent and jobs (default `nvflare-network`).
    pub network: String,
    /// `job_launcher.default_python_path`: python inside job containers.
    pub default_python_path: String,
    /// `job_launcher.default_job_env`: environment for job containers.
    pub default_job_env: Map<String, Value>,
    /// `job_launcher.default_job_container_kwargs`: extra `docker run` options for jobs.
    pub default_job_container_kwargs: Map<String, Value>,
}

fn json_object(value: Option<serde_yaml::Mapping>, where_: &str) -> Result<Map<String, Value>> {
    match value {
        None => Ok(Map::new()),
        Some(map) => match yaml_to_json(&serde_yaml::Value::Mapping(map), where_)? {
            Value::Object(object) => Ok(object),
            _ => Ok(Map::new()),
        },
    }
}

pub fn validate(config: &RuntimeConfig) -> Result<DockerConfig> {
    let root = &config.root;
    allowed_keys(
        root,
        &["runtime", "parent", "job_launcher"],
        "docker config",
    )?;
    let parent = required_section(root, "parent")?;
    let job_launcher = optional_section(root, "job_launcher")?;
    allowed_keys(&parent, &["docker_image", "network"], "parent")?;
    allowed_keys(
        &job_launcher,
        &[
            "default_python_path",
            "default_job_env",
            "default_job_container_kwargs",
        ],
        "job_launcher",
    )?;
    let docker_image = required_str(&parent, "docker_image", "parent")?;
    let network =
        optional_str(&parent, "network", "parent")?.unwrap_or_else(|| DEFAULT_NETWORK.into());
    let default_python_path = optional_str(&job_launcher, "default_python_path", "job_launcher")?
        .unwrap_or_else(|| DEFAULT_JOB_PYTHON_PATH.into());
    let env = optional_mapping(&job_launcher, "default_job_env", "job_launcher")?;
    let kwargs = optional_mapping(
        &job_launcher,
        "default_job_container_kwargs",
        "job_launcher",
    )?;
    if let Some(kwargs) = &kwargs {
        let reserved: Vec<&serde_yaml::Value> = kwargs
            .keys()
            .filter(|k| {
                k.as_str()
                    .is_some_and(|k| RESERVED_CONTAINER_KWARGS.contains(&k))
            })
            .collect();
        if !reserved.is_empty() {
            return Err(Error::invalid_config(
                format!(
                    "default_job_container_kwargs contains reserved keys: {}",
                    pyrepr::sorted_list(&reserved)
                ),
                "Remove keys controlled by DockerJobLauncher.",
            ));
        }
    }
    Ok(DockerConfig {
        docker_image,
        network,
        default_python_path,
        default_job_env: json_object(env, "job_launcher.default_job_env")?,
        default_job_container_kwargs: json_object(
            kwargs,
            "job_launcher.default_job_container_kwargs",
        )?,
    })
}
