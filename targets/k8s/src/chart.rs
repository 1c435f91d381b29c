//! `helm_chart/`: Chart.yaml, values.yaml and the templates (reference spec 4.9).

use flare_deploy_core::kit::Uid;
use flare_deploy_core::naming::stable_k8s_name;
use flare_deploy_core::{yaml_write, KitInfo, NvflareRelease, Result, Role, StagedKit};
use serde_json::{json, Map, Value};

use crate::config::K8sConfig;
use crate::image::split_image;

pub const CHART_DIR: &str = "helm_chart";
pub const NAME_MAX: usize = 63;
const DEFAULT_FED_LEARN_PORT: u16 = 8002;

macro_rules! template {
    ($dir:literal, $file:literal) => {
        (
            $file,
            include_str!(concat!("../../../templates/helm/", $dir, "/", $file)),
        )
    };
}

const SERVER_TEMPLATES_2_8: [(&str, &str); 6] = [
    template!("server", "_helpers.tpl"),
    template!("server", "server-deployment.yaml"),
    template!("server", "server-service.yaml"),
    template!("server", "server-tcp-services.yaml"),
    template!("common", "serviceaccount.yaml"),
    template!("common", "role.yaml"),
];

const CLIENT_TEMPLATES_2_8: [(&str, &str); 5] = [
    template!("client", "_helpers.tpl"),
    template!("client", "client-deployment.yaml"),
    template!("client", "service.yaml"),
    template!("common", "serviceaccount.yaml"),
    template!("common", "role.yaml"),
];

// 2.9 changed the Deployments (staged workspace volumes; the server's nodeSelector) and
// the Role (events, more Secret verbs); the other files are the 2.8 ones.
const SERVER_TEMPLATES_2_9: [(&str, &str); 6] = [
    template!("server", "_helpers.tpl"),
    template!("2.9/server", "server-deployment.yaml"),
    template!("server", "server-service.yaml"),
    template!("server", "server-tcp-services.yaml"),
    template!("common", "serviceaccount.yaml"),
    template!("2.9/common", "role.yaml"),
];

const CLIENT_TEMPLATES_2_9: [(&str, &str); 5] = [
    template!("client", "_helpers.tpl"),
    template!("2.9/client", "client-deployment.yaml"),
    template!("client", "service.yaml"),
    template!("common", "serviceaccount.yaml"),
    template!("2.9/common", "role.yaml"),
];

/// The chart's template files (name, text) for a role and release.
fn templates(role: Role, release: NvflareRelease) -> &'static [(&'static str, &'static str)] {
    match (role, release) {
        (Role::Server, NvflareRelease::V2_8) => &SERVER_TEMPLATES_2_8,
        (Role::Server, NvflareRelease::V2_9) => &SERVER_TEMPLATES_2_9,
        (_, NvflareRelease::V2_8) => &CLIENT_TEMPLATES_2_8,
        (_, NvflareRelease::V2_9) => &CLIENT_TEMPLATES_2_9,
    }
}

/// The Service that job pods use to reach their parent: the configured server Service,
/// or a Kubernetes-safe form of the client's name.
pub fn parent_service_name(kit: &KitInfo, config: &K8sConfig) -> String {
    match kit.role {
        Role::Server => config.server_service_name.clone(),
        _ => stable_k8s_name(&kit.name, NAME_MAX),
    }
}

fn chart_yaml(kit: &KitInfo, config: &K8sConfig) -> Value {
    let image = split_image(&config.parent.docker_image);
    let app_version = [image.tag.as_str(), image.digest.as_str()]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or("latest")
        .to_string();
    let (name, description) = match kit.role {
        Role::Server => (
            "nvflare-server",
            format!("NVFlare federated learning server for {}", kit.name),
        ),
        _ => (
            "nvflare-client",
            format!(
                "NVFlare federated learning client deployment and service for {}",
                kit.name
            ),
        ),
    };
    json!({
        "apiVersion": "v2",
        "name": name,
        "description": description,
        "type": "application",
        "version": "0.1.0",
        "appVersion": app_version,
        "keywords": ["nvflare", "federated-learning"],
        "maintainers": [],
    })
}

fn image_values(config: &K8sConfig, pull_policy: &str) -> Value {
    let image = split_image(&config.parent.docker_image);
    let mut values = Map::new();
    values.insert("repository".into(), image.repository.into());
    values.insert("tag".into(), image.tag.into());
    values.insert("pullPolicy".into(), pull_policy.into());
    if !image.digest.is_empty() {
        values.insert("digest".into(), image.digest.into());
    }
    Value::Object(values)
}

fn common_head(config: &K8sConfig) -> [(&'static str, Value); 5] {
    let pull_secrets: Vec<Value> = config
        .parent
        .image_pull_secrets
        .iter()
        .map(|s| json!({"name": s}))
        .collect();
    [
        ("imagePullSecrets", Value::Array(pull_secrets)),
        (
            "serviceAccount",
            json!({"create": true, "annotations": {}, "automountServiceAccountToken": true}),
        ),
        ("podAnnotations", json!({})),
        ("rbac", json!({"create": true})),
        (
            "persistence",
            json!({"workspace": {"claimName": config.parent.workspace_pvc, "volumeName": "workspace",
                                  "mountPath": config.parent.workspace_mount_path}}),
        ),
    ]
}

/// 2.9's `workspaceConfig`: where `nvflare deploy k8s stage` records the ConfigMap
/// (`local/`) and Secret (`startup/`) it created; all unset until a kit is staged.
fn workspace_config() -> Value {
    json!({
        "namespace": null,
        "local": {"configMapName": null, "items": []},
        "startup": {"secretName": null, "items": []},
    })
}

fn values_yaml(kit: &KitInfo, config: &K8sConfig, release: NvflareRelease) -> Value {
    let since_2_9 = release >= NvflareRelease::V2_9;
    let mut v = Map::new();
    v.insert("name".into(), kit.name.clone().into());
    match kit.role {
        Role::Server => {
            v.insert("appName".into(), stable_k8s_name(&kit.name, NAME_MAX).into());
            v.insert("serviceName".into(), config.server_service_name.clone().into());
            v.insert("image".into(), image_values(config, "IfNotPresent"));
            v.extend(common_head(config).map(|(k, val)| (k.to_string(), val)));
            if since_2_9 {
                v.insert("workspaceConfig".into(), workspace_config());
            }
            let fed = kit.fed_learn_port.unwrap_or(DEFAULT_FED_LEARN_PORT);
            let admin = kit.admin_port.filter(|a| *a != fed);
            v.insert("fedLearnPort".into(), fed.into());
            v.insert("adminPort".into(), admin.map_or(Value::Null, Value::from));
            v.insert("parentPort".into(), config.parent.parent_port.into());
            v.insert("resources".into(), config.parent.resources.clone());
            v.insert("securityContext".into(), config.parent.pod_security_context.clone());
            if since_2_9 {
                v.insert("nodeSelector".into(), json!({}));
            }
            v.insert("hostPortEnabled".into(), false.into());
            v.insert("tcpConfigMapEnabled".into(), false.into());
            v.insert(
                "service".into(),
                json!({"type": "ClusterIP", "loadBalancerIP": null, "annotations": {}}),
            );
        }
        _ => {
            v.insert("siteName".into(), kit.name.clone().into());
            v.insert("serviceName".into(), stable_k8s_name(&kit.name, NAME_MAX).into());
            v.insert("image".into(), image_values(config, "Always"));
            v.extend(common_head(config).map(|(k, val)| (k.to_string(), val)));
            if since_2_9 {
                v.insert("workspaceConfig".into(), workspace_config());
            }
            v.insert("port".into(), config.parent.parent_port.into());
            v.insert("service".into(), json!({"annotations": {}}));
            v.insert("securityContext".into(), config.parent.pod_security_context.clone());
            v.insert("resources".into(), config.parent.resources.clone());
        }
    }
    v.insert("command".into(), json!([config.parent.python_path]));
    v.insert(
        "args".into(),
        json!(kit.parent_args(&config.parent.workspace_mount_path, Uid::Omitted)),
    );
    Value::Object(v)
}

/// Writes `helm_chart/` for the kit's release into the staged kit, replacing any chart
/// the kit carried.
pub fn write_chart(kit: &StagedKit<'_>, config: &K8sConfig) -> Result<()> {
    let chart_dir = kit.root().join(CHART_DIR);
    if chart_dir.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(&chart_dir).map_err(flare_deploy_core::Error::prepare_failed)?;
    }
    kit.write_file(
        &format!("{CHART_DIR}/Chart.yaml"),
        &yaml_write::to_string(&chart_yaml(&kit.info, config)),
        false,
    )?;
    kit.write_file(
        &format!("{CHART_DIR}/values.yaml"),
        &yaml_write::to_string(&values_yaml(&kit.info, config, kit.release)),
        false,
    )?;
    for (name, text) in templates(kit.info.role, kit.release) {
        kit.write_file(&format!("{CHART_DIR}/templates/{name}"), text, false)?;
    }
    Ok(())
}
