//! `runtime: k8s` config: keys, defaults and validation in the reference's order
//! (reference spec section 2.3).

use flare_deploy_core::config::{
    allowed_keys, optional_int, optional_mapping, optional_section, optional_str, required_section,
    required_str, yaml_to_json,
};
use flare_deploy_core::naming::{is_dns1035_label, is_dns1123_label, is_dns1123_subdomain};
use flare_deploy_core::{pyrepr, Error, Result, RuntimeConfig, WORKSPACE_MOUNT_PATH};
use serde_json::{json, Map, Value};
use serde_yaml::Mapping;

pub const DEFAULT_NAMESPACE: &str = "default";
pub const DEFAULT_SERVER_SERVICE_NAME: &str = "nvflare-server";
pub const DEFAULT_PARENT_PORT: u16 = 8102;
pub const DEFAULT_WORKSPACE_PVC: &str = "nvflws";
/// Python inside the parent image and, by default, inside job pods.
pub const DEFAULT_PYTHON_PATH: &str = "/usr/local/bin/python3";

const FIX_HINT: &str = "Fix the runtime config.";
const NAME_MAX: usize = 63;
const OBJECT_NAME_MAX: usize = 253;

/// A validated `runtime: k8s` config.
#[derive(Debug, Clone, PartialEq)]
pub struct K8sConfig {
    /// `namespace`: where the parent and its job pods run.
    pub namespace: String,
    /// `server_service_name`: the server's Service (server kits only).
    pub server_service_name: String,
    /// `parent.docker_image`: image of the parent pod.
    pub docker_image: String,
    /// `parent.parent_port`: port of the parent's internal listener.
    pub parent_port: u16,
    /// `parent.workspace_pvc`: PersistentVolumeClaim holding the prepared kit.
    pub workspace_pvc: String,
    /// `parent.workspace_mount_path`: where the workspace is mounted.
    pub workspace_mount_path: String,
    /// `parent.python_path`: python of the parent process.
    pub python_path: String,
    /// `parent.resources`: resource requests/limits of the parent pod.
    pub resources: Value,
    /// `parent.pod_security_context`: security context of the parent pod.
    pub pod_security_context: Value,
    /// `parent.image_pull_secrets`: Secrets for pulling the parent image.
    pub image_pull_secrets: Vec<String>,
    /// `job_launcher.config_file_path`: kubeconfig of the launcher (null: in-cluster).
    pub config_file_path: Option<String>,
    /// `job_launcher.pending_timeout`: written only when the key is present (null kept).
    pub pending_timeout: Option<Option<i64>>,
    /// `job_launcher.default_python_path`: python inside job pods.
    pub default_python_path: String,
    /// `job_launcher.job_pod_security_context`: written when not empty.
    pub job_pod_security_context: Option<Map<String, Value>>,
    /// `job_launcher.image_pull_secrets`: written when set (an empty list too).
    pub job_image_pull_secrets: Option<Vec<String>>,
}

fn check_name(
    root: &Mapping,
    key: &str,
    valid: fn(&str) -> bool,
    kind: &str,
    hint: &str,
) -> Result<Option<String>> {
    let Some(value) = root.get(key) else {
        return Ok(None);
    };
    let text = match value {
        serde_yaml::Value::String(s) if !s.is_empty() => s,
        _ => {
            return Err(Error::invalid_config(
                format!("k8s config.{key} must be a non-empty string."),
                FIX_HINT,
            ))
        }
    };
    if text.chars().count() > NAME_MAX || !valid(text) {
        return Err(Error::invalid_config(
            format!(
                "k8s config.{key} must be a valid Kubernetes {kind}: {}.",
                pyrepr::str_repr(text)
            ),
            hint,
        ));
    }
    Ok(Some(text.clone()))
}

fn secret_names(map: &Mapping, key: &str, label: &str) -> Result<Option<Vec<String>>> {
    let items = match map.get(key) {
        None | Some(serde_yaml::Value::Null) => return Ok(None),
        Some(serde_yaml::Value::Sequence(items)) => items,
        Some(_) => {
            return Err(Error::invalid_config(
                format!("{label} must be a list of Kubernetes object names."),
                FIX_HINT,
            ))
        }
    };
    let mut names = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str() {
            Some(name) if name.len() <= OBJECT_NAME_MAX && is_dns1123_subdomain(name) => names.push(name.to_string()),
            // The value is not echoed: a mistyped secret name may be a secret itself.
            _ => {
                return Err(Error::invalid_config(
                    format!("{label} must contain valid Kubernetes object names."),
                    "Use lower case alphanumeric characters, '-', or '.', start and end with an alphanumeric \
                     character, and keep length <= 253.",
                ))
            }
        }
    }
    Ok(Some(names))
}

fn mapping_json(map: Option<Mapping>, where_: &str) -> Result<Option<Map<String, Value>>> {
    match map {
        None => Ok(None),
        Some(m) => match yaml_to_json(&serde_yaml::Value::Mapping(m), where_)? {
            Value::Object(o) => Ok(Some(o)),
            _ => Ok(None),
        },
    }
}

pub fn validate(config: &RuntimeConfig) -> Result<K8sConfig> {
    let root = &config.root;
    allowed_keys(
        root,
        &[
            "runtime",
            "namespace",
            "server_service_name",
            "parent",
            "job_launcher",
        ],
        "k8s config",
    )?;
    let parent = required_section(root, "parent")?;
    let job = optional_section(root, "job_launcher")?;
    allowed_keys(
        &parent,
        &[
            "docker_image",
            "parent_port",
            "workspace_pvc",
            "workspace_mount_path",
            "python_path",
            "resources",
            "pod_security_context",
            "image_pull_secrets",
        ],
        "parent",
    )?;
    allowed_keys(
        &job,
        &[
            "config_file_path",
            "pending_timeout",
            "default_python_path",
            "job_pod_security_context",
            "image_pull_secrets",
        ],
        "job_launcher",
    )?;
    let docker_image = required_str(&parent, "docker_image", "parent")?;
    let namespace = check_name(
        root,
        "namespace",
        is_dns1123_label,
        "namespace (DNS-1123 label)",
        "Use lower case alphanumeric characters or '-', start and end with an alphanumeric character, and keep \
         length <= 63.",
    )?;
    let server_service_name = check_name(
        root,
        "server_service_name",
        is_dns1035_label,
        "Service name (DNS-1035 label)",
        "Use lower case alphanumeric characters or '-', start with a letter, end with an alphanumeric character, \
         and keep length <= 63.",
    )?;
    let parent_port = match optional_int(&parent, "parent_port", "parent")? {
        None => DEFAULT_PARENT_PORT,
        Some(port) => u16::try_from(port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                Error::invalid_config(
                    format!(
                        "parent.parent_port must be a port number between 1 and 65535, got {port}."
                    ),
                    FIX_HINT,
                )
            })?,
    };
    let workspace_pvc = optional_str(&parent, "workspace_pvc", "parent")?;
    let workspace_mount_path = optional_str(&parent, "workspace_mount_path", "parent")?;
    let python_path = optional_str(&parent, "python_path", "parent")?;
    let resources = mapping_json(
        optional_mapping(&parent, "resources", "parent")?,
        "parent.resources",
    )?;
    let pod_security_context = mapping_json(
        optional_mapping(&parent, "pod_security_context", "parent")?,
        "parent.pod_security_context",
    )?;
    let image_pull_secrets = secret_names(
        &parent,
        "image_pull_secrets",
        "parent image pull references",
    )?;
    let config_file_path = optional_str(&job, "config_file_path", "job_launcher")?;
    let default_python_path = optional_str(&job, "default_python_path", "job_launcher")?;
    let pending_timeout = if job.contains_key("pending_timeout") {
        let value = optional_int(&job, "pending_timeout", "job_launcher")?;
        if value.is_some_and(|v| v < 0) {
            return Err(Error::invalid_config(
                "job_launcher.pending_timeout must be a non-negative integer.",
                FIX_HINT,
            ));
        }
        Some(value)
    } else {
        None
    };
    let job_pod_security_context = mapping_json(
        optional_mapping(&job, "job_pod_security_context", "job_launcher")?,
        "job_launcher.job_pod_security_context",
    )?;
    let job_image_pull_secrets = secret_names(
        &job,
        "image_pull_secrets",
        "job launcher image pull references",
    )?;

    Ok(K8sConfig {
        namespace: namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
        server_service_name: server_service_name
            .unwrap_or_else(|| DEFAULT_SERVER_SERVICE_NAME.into()),
        docker_image,
        parent_port,
        workspace_pvc: workspace_pvc.unwrap_or_else(|| DEFAULT_WORKSPACE_PVC.into()),
        workspace_mount_path: workspace_mount_path.unwrap_or_else(|| WORKSPACE_MOUNT_PATH.into()),
        python_path: python_path.unwrap_or_else(|| DEFAULT_PYTHON_PATH.into()),
        resources: match resources {
            Some(r) if !r.is_empty() => Value::Object(r),
            _ => json!({"requests": {"cpu": "2", "memory": "8Gi"}}),
        },
        pod_security_context: Value::Object(pod_security_context.unwrap_or_default()),
        image_pull_secrets: image_pull_secrets.unwrap_or_default(),
        config_file_path,
        pending_timeout,
        default_python_path: default_python_path.unwrap_or_else(|| DEFAULT_PYTHON_PATH.into()),
        job_pod_security_context: job_pod_security_context.filter(|m| !m.is_empty()),
        job_image_pull_secrets,
    })
}
