//! `runtime: k8s` config: keys, defaults and validation in the reference's order
//! (reference spec section 2.3).

use flare_deploy_core::config::{
    allowed_keys, internal_connection_security, optional_int, optional_json_object, optional_section, optional_str,
    required_section, required_str,
};
use flare_deploy_core::naming::{is_dns1035_label, is_dns1123_label, is_dns1123_subdomain};
use flare_deploy_core::patch::comm::InternalSecurity;
use flare_deploy_core::{pyrepr, Error, NvflareRelease, Result, RuntimeConfig, WORKSPACE_MOUNT_PATH};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Map, Value};
use serde_yaml::Mapping;

pub const DEFAULT_NAMESPACE: &str = "default";
pub const DEFAULT_SERVER_SERVICE_NAME: &str = "nvflare-server";
pub const DEFAULT_PARENT_PORT: u16 = 8102;
pub const DEFAULT_WORKSPACE_PVC: &str = "nvflws";
/// Python inside the parent image and, by default, inside job pods.
pub const DEFAULT_PYTHON_PATH: &str = "/usr/local/bin/python3";

const FIX_HINT: &str = "Fix the runtime config.";
/// How a namespace is spelled (the reference's hint).
pub(crate) const NAMESPACE_RULE: &str = "Use lower case alphanumeric characters or '-', start and end with an \
                                         alphanumeric character, and keep length <= 63.";
/// How a Secret, ConfigMap or other object name is spelled (the reference's hint).
pub(crate) const OBJECT_NAME_RULE: &str = "Use lower case alphanumeric characters, '-', or '.', start and end with \
                                           an alphanumeric character, and keep length <= 253.";
pub(crate) const NAME_MAX: usize = 63;
pub(crate) const OBJECT_NAME_MAX: usize = 253;

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.into()
}
fn default_server_service_name() -> String {
    DEFAULT_SERVER_SERVICE_NAME.into()
}
fn default_parent_port() -> u16 {
    DEFAULT_PARENT_PORT
}
fn default_workspace_pvc() -> String {
    DEFAULT_WORKSPACE_PVC.into()
}
fn default_workspace_mount_path() -> String {
    WORKSPACE_MOUNT_PATH.into()
}
fn default_python() -> String {
    DEFAULT_PYTHON_PATH.into()
}
fn empty_object() -> Value {
    json!({})
}
fn default_resources() -> Value {
    json!({"requests": {"cpu": "2", "memory": "8Gi"}})
}

/// Runtime config for Kubernetes: the parent runs as a Deployment installed from the
/// generated Helm chart, with the prepared kit on a PersistentVolumeClaim, and each job
/// runs as a pod. An explicit `null` for an optional `parent`/`job_launcher` key means
/// its default.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "flare-deploy runtime config: k8s")]
pub struct K8sConfig {
    /// Selects this target.
    #[schemars(extend("const" = "k8s"))]
    pub runtime: String,
    /// Namespace of the parent and its job pods (a DNS-1123 label).
    #[serde(default = "default_namespace")]
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: String,
    /// Name of the server's Service (a DNS-1035 label); used by server kits only.
    #[serde(default = "default_server_service_name")]
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    pub server_service_name: String,
    /// The parent (server or client) pod.
    pub parent: K8sParent,
    /// The Kubernetes job launcher that starts job pods.
    #[serde(default)]
    #[schemars(with = "Option<K8sJobLauncher>")]
    pub job_launcher: K8sJobLauncher,
}

/// `parent:` keys.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct K8sParent {
    /// Image of the parent pod, `repository[:tag][@digest]`.
    #[schemars(length(min = 1))]
    pub docker_image: String,
    /// Port of the parent's internal listener that job pods connect to.
    #[serde(default = "default_parent_port")]
    #[schemars(with = "Option<u16>", range(min = 1, max = 65535))]
    pub parent_port: u16,
    /// PersistentVolumeClaim that holds the prepared kit (the workspace).
    #[serde(default = "default_workspace_pvc")]
    #[schemars(with = "Option<String>", length(min = 1))]
    pub workspace_pvc: String,
    /// Where the workspace is mounted in the parent and job pods.
    #[serde(default = "default_workspace_mount_path")]
    #[schemars(with = "Option<String>", length(min = 1))]
    pub workspace_mount_path: String,
    /// Python executable of the parent process.
    #[serde(default = "default_python")]
    #[schemars(with = "Option<String>", length(min = 1))]
    pub python_path: String,
    /// Resource requests and limits of the parent container (empty: the default).
    #[serde(default = "default_resources")]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub resources: Value,
    /// Security context of the parent pod.
    #[serde(default = "empty_object")]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub pod_security_context: Value,
    /// Secrets for pulling the parent image (DNS-1123 subdomains, at most 253 characters).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub image_pull_secrets: Vec<String>,
    /// NVFlare 2.9 only: how the parent and its job pods secure their internal link,
    /// `mtls` (default) or `clear`; written to `local/comm_config.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_connection_security: Option<InternalSecurity>,
}

/// `job_launcher:` keys.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct K8sJobLauncher {
    /// kubeconfig file of the launcher; null uses the in-cluster service account.
    #[schemars(length(min = 1))]
    pub config_file_path: Option<String>,
    /// Seconds a job pod may stay Pending. Written to the launcher whenever the key is
    /// present (also null and 0); omitted otherwise.
    #[schemars(with = "Option<u64>")]
    pub pending_timeout: Option<Option<i64>>,
    /// Python executable inside job pods.
    #[serde(default = "default_python")]
    #[schemars(with = "Option<String>", length(min = 1))]
    pub default_python_path: String,
    /// Security context of job pods (written when not empty).
    #[schemars(with = "Option<Map<String, Value>>")]
    pub job_pod_security_context: Option<Map<String, Value>>,
    /// Secrets for pulling job images (written when set, also an empty list).
    pub image_pull_secrets: Option<Vec<String>>,
}

fn check_name(root: &Mapping, key: &str, valid: fn(&str) -> bool, kind: &str, hint: &str) -> Result<Option<String>> {
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

fn secret_names(map: &Mapping, key: &str, label: &str, release: NvflareRelease) -> Result<Option<Vec<String>>> {
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
                let hint = match release {
                    NvflareRelease::V2_8 => OBJECT_NAME_RULE.to_string(),
                    NvflareRelease::V2_9 => format!("{OBJECT_NAME_RULE} {FIX_HINT}"),
                };
                return Err(Error::invalid_config(
                    format!("{label} must contain valid Kubernetes object names."),
                    hint,
                ));
            }
        }
    }
    Ok(Some(names))
}

pub fn validate(config: &RuntimeConfig) -> Result<K8sConfig> {
    let release = config.release;
    let v2_9 = release >= NvflareRelease::V2_9;
    let root = &config.root;
    allowed_keys(
        root,
        &["runtime", "namespace", "server_service_name", "parent", "job_launcher"],
        "k8s config",
    )?;
    let parent = required_section(root, "parent", "parent.docker_image")?;
    let job = optional_section(root, "job_launcher")?;
    let security_key: &[&str] = if v2_9 { &["internal_connection_security"] } else { &[] };
    allowed_keys(
        &parent,
        &[
            &[
                "docker_image",
                "parent_port",
                "workspace_pvc",
                "workspace_mount_path",
                "python_path",
                "resources",
                "pod_security_context",
                "image_pull_secrets",
            ][..],
            security_key,
        ]
        .concat(),
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
    let internal_connection_security = if v2_9 {
        Some(internal_connection_security(&parent)?)
    } else {
        None
    };
    let namespace = check_name(
        root,
        "namespace",
        is_dns1123_label,
        "namespace (DNS-1123 label)",
        NAMESPACE_RULE,
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
        Some(port) => u16::try_from(port).ok().filter(|p| *p != 0).ok_or_else(|| {
            Error::invalid_config(
                format!("parent.parent_port must be a port number between 1 and 65535, got {port}."),
                FIX_HINT,
            )
        })?,
    };
    let workspace_pvc = optional_str(&parent, "workspace_pvc", "parent")?;
    let workspace_mount_path = optional_str(&parent, "workspace_mount_path", "parent")?;
    let python_path = optional_str(&parent, "python_path", "parent")?;
    let resources = optional_json_object(&parent, "resources", "parent")?;
    let pod_security_context = optional_json_object(&parent, "pod_security_context", "parent")?;
    let image_pull_secrets = secret_names(&parent, "image_pull_secrets", "parent image pull references", release)?;
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
    let job_pod_security_context = optional_json_object(&job, "job_pod_security_context", "job_launcher")?;
    let job_image_pull_secrets = secret_names(
        &job,
        "image_pull_secrets",
        "job launcher image pull references",
        release,
    )?;

    Ok(K8sConfig {
        runtime: config.runtime().to_string(),
        namespace: namespace.unwrap_or_else(default_namespace),
        server_service_name: server_service_name.unwrap_or_else(default_server_service_name),
        parent: K8sParent {
            docker_image,
            parent_port,
            workspace_pvc: workspace_pvc.unwrap_or_else(default_workspace_pvc),
            workspace_mount_path: workspace_mount_path.unwrap_or_else(default_workspace_mount_path),
            python_path: python_path.unwrap_or_else(default_python),
            resources: match resources {
                Some(r) if !r.is_empty() => Value::Object(r),
                _ => default_resources(),
            },
            pod_security_context: Value::Object(pod_security_context.unwrap_or_default()),
            image_pull_secrets: image_pull_secrets.unwrap_or_default(),
            internal_connection_security,
        },
        job_launcher: K8sJobLauncher {
            config_file_path,
            pending_timeout,
            default_python_path: default_python_path.unwrap_or_else(default_python),
            job_pod_security_context: job_pod_security_context.filter(|m| !m.is_empty()),
            image_pull_secrets: job_image_pull_secrets,
        },
    })
}
