//! `local/resources.json.default`: launcher and resource-manager replacement
//! (reference spec section 4.3).

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::io_error;
use crate::error::{Error, Result};
use crate::json;
use crate::kit::RESOURCES_JSON_DEFAULT;
use crate::launcher::LauncherClass;

pub const PASSTHROUGH_RESOURCE_MANAGER: &str =
    "nvflare.app_common.resource_managers.passthrough_resource_manager.PassthroughResourceManager";
pub const GPU_RESOURCE_MANAGER: &str = "nvflare.app_common.resource_managers.gpu_resource_manager.GPUResourceManager";
pub const GPU_RESOURCE_CONSUMER: &str =
    "nvflare.app_common.resource_consumers.gpu_resource_consumer.GPUResourceConsumer";

/// The launcher every provisioned kit starts with.
pub const PROCESS_LAUNCHER: LauncherClass = LauncherClass {
    id: "process_launcher",
    server_path: "nvflare.app_common.job_launcher.server_process_launcher.ServerProcessJobLauncher",
    client_path: "nvflare.app_common.job_launcher.client_process_launcher.ClientProcessJobLauncher",
};

/// NVFlare's Docker job launcher: every target whose jobs are sibling containers uses it.
pub const DOCKER_LAUNCHER: LauncherClass = LauncherClass {
    id: "docker_launcher",
    server_path: "nvflare.app_opt.job_launcher.docker_launcher.ServerDockerJobLauncher",
    client_path: "nvflare.app_opt.job_launcher.docker_launcher.ClientDockerJobLauncher",
};

const RESOURCE_MANAGER_ID: &str = "resource_manager";
const RESOURCE_CONSUMER_ID: &str = "resource_consumer";
const BUILTIN_RESOURCE_MANAGERS: [&str; 2] = [GPU_RESOURCE_MANAGER, PASSTHROUGH_RESOURCE_MANAGER];
const BUILTIN_RESOURCE_CONSUMERS: [&str; 1] = [GPU_RESOURCE_CONSUMER];

/// Python truthiness of a JSON value.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(true)) => true,
    }
}

fn path_in(component: &Map<String, Value>, set: &[&str]) -> bool {
    component
        .get("path")
        .and_then(Value::as_str)
        .is_some_and(|p| set.contains(&p))
}

/// Non-empty args, or a path outside the built-in classes.
fn has_custom_config(component: &Map<String, Value>, builtin: &[&str]) -> bool {
    truthy(component.get("args")) || (truthy(component.get("path")) && !path_in(component, builtin))
}

fn launcher_replacement_discards_config(
    component: &Map<String, Value>,
    launcher_id: &str,
    launcher_path: &str,
    builtin: &[&str],
) -> bool {
    if truthy(component.get("args")) {
        return true;
    }
    if !truthy(component.get("path")) {
        return false;
    }
    let id = component.get("id").and_then(Value::as_str);
    if id == Some(launcher_id) && component.get("path").and_then(Value::as_str) != Some(launcher_path) {
        return true;
    }
    !path_in(component, builtin)
}

/// Loads `resources.json.default` from `local`.
pub fn load(local: &Path) -> Result<Map<String, Value>> {
    json::load_object(&local.join(RESOURCES_JSON_DEFAULT), RESOURCES_JSON_DEFAULT)
}

/// Writes `resources.json.default` and drops the active `resources.json` override, which
/// would otherwise shadow the prepared defaults.
pub fn save(local: &Path, resources: &Map<String, Value>) -> Result<()> {
    json::write_file(&local.join(RESOURCES_JSON_DEFAULT), resources)?;
    let active = local.join("resources.json");
    if active.symlink_metadata().is_ok() {
        std::fs::remove_file(&active).map_err(|e| io_error(&active, e))?;
    }
    Ok(())
}

/// The components as JSON objects; anything else is a broken kit.
pub fn components_mut(resources: &mut Map<String, Value>) -> Result<&mut Vec<Value>> {
    let components = resources
        .entry("components")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(list) = components else {
        return Err(Error::invalid_kit(
            "resources.json.default components must be a list.",
            "Fix the startup kit resources file.",
        ));
    };
    if list.iter().any(|c| !c.is_object()) {
        return Err(Error::invalid_kit(
            "resources.json.default components must contain only JSON objects.",
            "Fix the startup kit resources file.",
        ));
    }
    Ok(list)
}

/// [`replace_launcher`] on the file in `local`: load, edit, save.
pub fn install_launcher(
    local: &Path,
    known_launchers: &[LauncherClass],
    launcher_id: &str,
    launcher_path: &str,
    args: Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mut resources = load(local)?;
    replace_launcher(
        &mut resources,
        known_launchers,
        launcher_id,
        launcher_path,
        args,
        warnings,
    )?;
    save(local, &resources)
}

/// Replaces the job launcher and resource manager in a loaded `resources.json.default`,
/// warning about configuration that will no longer be used.
pub fn replace_launcher(
    resources: &mut Map<String, Value>,
    known_launchers: &[LauncherClass],
    launcher_id: &str,
    launcher_path: &str,
    args: Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let launcher_ids: Vec<&str> = std::iter::once(PROCESS_LAUNCHER.id)
        .chain(known_launchers.iter().map(|l| l.id))
        .chain(std::iter::once(launcher_id))
        .collect();
    let builtin_launchers: Vec<&str> = [PROCESS_LAUNCHER]
        .iter()
        .chain(known_launchers)
        .flat_map(|l| [l.server_path, l.client_path])
        .collect();
    let components = components_mut(resources)?;

    for component in components.iter().filter_map(Value::as_object) {
        let id = component.get("id").and_then(Value::as_str);
        match id {
            Some(RESOURCE_CONSUMER_ID) if has_custom_config(component, &BUILTIN_RESOURCE_CONSUMERS) => {
                warnings.push(format!(
                    "deploy prepare removes component '{RESOURCE_CONSUMER_ID}' from resources.json.default; \
                     existing resource consumer configuration will not be used by the prepared runtime."
                ));
            }
            Some(RESOURCE_MANAGER_ID) if has_custom_config(component, &BUILTIN_RESOURCE_MANAGERS) => {
                warnings.push(
                    "deploy prepare replaces component 'resource_manager' with PassthroughResourceManager; \
                     existing resource manager path/args will not be used by the prepared runtime."
                        .to_string(),
                );
            }
            Some(id)
                if launcher_ids.contains(&id)
                    && launcher_replacement_discards_config(
                        component,
                        launcher_id,
                        launcher_path,
                        &builtin_launchers,
                    ) =>
            {
                warnings.push(format!(
                    "deploy prepare replaces component '{id}' with generated '{launcher_id}' configuration; \
                     existing launcher path/args will not be used by the prepared runtime."
                ));
            }
            _ => {}
        }
    }

    components.retain(|c| {
        let id = c.get("id").and_then(Value::as_str);
        !id.is_some_and(|id| launcher_ids.contains(&id) || id == RESOURCE_CONSUMER_ID || id == RESOURCE_MANAGER_ID)
    });
    components.push(json!({"id": RESOURCE_MANAGER_ID, "path": PASSTHROUGH_RESOURCE_MANAGER, "args": {}}));
    components.push(json!({"id": launcher_id, "path": launcher_path, "args": Value::Object(args)}));
    Ok(())
}
