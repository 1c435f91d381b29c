//! `runtime: compose` config.

use flare_deploy_core::config::{
    allowed_keys, optional_json_object, optional_section, optional_str, required_section, required_str,
};
use flare_deploy_core::{Result, RuntimeConfig};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

fn default_network() -> String {
    "nvflare-network".into()
}

fn default_job_python() -> String {
    "/usr/local/bin/python".into()
}

/// Runtime config for Docker Compose: `compose.yaml` in the prepared kit runs the parent
/// container (`docker compose up`); jobs run as sibling containers.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "flare-deploy runtime config: compose")]
pub struct ComposeConfig {
    /// Selects this target.
    #[schemars(extend("const" = "compose"))]
    pub runtime: String,
    /// The parent (server or client) service.
    pub parent: ComposeParent,
    /// The Docker job launcher.
    #[serde(default)]
    #[schemars(with = "Option<ComposeJobLauncher>")]
    pub job_launcher: ComposeJobLauncher,
}

/// `parent:` keys.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComposeParent {
    /// Image of the parent container.
    #[schemars(length(min = 1))]
    pub docker_image: String,
    /// Docker network of the parent and its jobs; Compose creates it when missing.
    #[serde(default = "default_network")]
    #[schemars(with = "Option<String>", length(min = 1))]
    pub network: String,
}

/// `job_launcher:` keys.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComposeJobLauncher {
    /// Python executable inside job containers.
    #[serde(default = "default_job_python")]
    #[schemars(with = "Option<String>", length(min = 1))]
    pub default_python_path: String,
    /// Environment variables of every job container.
    #[serde(default)]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub default_job_env: Map<String, Value>,
}

impl Default for ComposeJobLauncher {
    fn default() -> Self {
        ComposeJobLauncher {
            default_python_path: default_job_python(),
            default_job_env: Map::new(),
        }
    }
}

pub fn validate(config: &RuntimeConfig) -> Result<ComposeConfig> {
    let root = &config.root;
    allowed_keys(root, &["runtime", "parent", "job_launcher"], "compose config")?;
    let parent = required_section(root, "parent", "parent.docker_image")?;
    let job = optional_section(root, "job_launcher")?;
    allowed_keys(&parent, &["docker_image", "network"], "parent")?;
    allowed_keys(&job, &["default_python_path", "default_job_env"], "job_launcher")?;
    let docker_image = required_str(&parent, "docker_image", "parent")?;
    let network = optional_str(&parent, "network", "parent")?.unwrap_or_else(default_network);
    let default_python_path =
        optional_str(&job, "default_python_path", "job_launcher")?.unwrap_or_else(default_job_python);
    let env = optional_json_object(&job, "default_job_env", "job_launcher")?.unwrap_or_default();
    Ok(ComposeConfig {
        runtime: config.runtime().to_string(),
        parent: ComposeParent { docker_image, network },
        job_launcher: ComposeJobLauncher {
            default_python_path,
            default_job_env: env,
        },
    })
}
