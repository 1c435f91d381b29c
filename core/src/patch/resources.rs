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
    let launcher = Launcher {
        id: launcher_id,
        path: launcher_path,
        args,
    };
    replace_launcher_with(
        resources,
        known_launchers,
        launcher,
        ResourceManager::Passthrough,
        warnings,
    )
}

/// The job launcher a target installs.
pub struct Launcher<'a> {
    pub id: &'a str,
    pub path: &'a str,
    pub args: Map<String, Value>,
}

/// What becomes of the kit's resource manager (and resource consumer) when the launcher
/// is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceManager {
    /// The reference's behaviour: the passthrough manager, no consumer.
    Passthrough,
    /// The kit's own manager and consumer stay as provisioned (a plugin whose runtime
    /// schedules by the kit's resources asks for it).
    KeepKits,
}

/// [`replace_launcher`] with the choice of resource manager.
pub fn replace_launcher_with(
    resources: &mut Map<String, Value>,
    known_launchers: &[LauncherClass],
    launcher: Launcher<'_>,
    manager: ResourceManager,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let Launcher {
        id: launcher_id,
        path: launcher_path,
        args,
    } = launcher;
    let replace_manager = manager == ResourceManager::Passthrough;
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
            Some(RESOURCE_CONSUMER_ID)
                if replace_manager && has_custom_config(component, &BUILTIN_RESOURCE_CONSUMERS) =>
            {
                warnings.push(format!(
                    "deploy prepare removes component '{RESOURCE_CONSUMER_ID}' from resources.json.default; \
                     existing resource consumer configuration will not be used by the prepared runtime."
                ));
            }
            Some(RESOURCE_MANAGER_ID)
                if replace_manager && has_custom_config(component, &BUILTIN_RESOURCE_MANAGERS) =>
            {
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
        let manager = |id: &str| id == RESOURCE_CONSUMER_ID || id == RESOURCE_MANAGER_ID;
        !id.is_some_and(|id| launcher_ids.contains(&id) || (replace_manager && manager(id)))
    });
    if replace_manager {
        components.push(json!({"id": RESOURCE_MANAGER_ID, "path": PASSTHROUGH_RESOURCE_MANAGER, "args": {}}));
    }
    components.push(json!({"id": launcher_id, "path": launcher_path, "args": Value::Object(args)}));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's provisioned components: a GPU manager with args, its consumer, the
    /// process launcher.
    fn client_resources() -> Map<String, Value> {
        let doc = json!({"components": [
            {"id": "resource_manager", "path": GPU_RESOURCE_MANAGER, "args": {"num_of_gpus": 2}},
            {"id": "resource_consumer", "path": GPU_RESOURCE_CONSUMER, "args": {}},
            {"id": "process_launcher", "path": PROCESS_LAUNCHER.client_path, "args": {}},
        ]});
        doc.as_object().cloned().unwrap_or_default()
    }

    fn replace(manager: ResourceManager) -> (Vec<Value>, Vec<String>) {
        let mut resources = client_resources();
        let mut warnings = Vec::new();
        let launcher = Launcher {
            id: "docker_launcher",
            path: DOCKER_LAUNCHER.client_path,
            args: Map::new(),
        };
        replace_launcher_with(&mut resources, &[DOCKER_LAUNCHER], launcher, manager, &mut warnings).expect("replaced");
        let components = resources["components"].as_array().cloned().unwrap_or_default();
        (components, warnings)
    }

    #[test]
    fn keeping_the_kits_manager_keeps_manager_and_consumer_and_warns_of_neither() {
        let (components, warnings) = replace(ResourceManager::KeepKits);
        let ids: Vec<&str> = components.iter().filter_map(|c| c["id"].as_str()).collect();
        assert_eq!(ids, ["resource_manager", "resource_consumer", "docker_launcher"]);
        assert_eq!(components[0]["args"], json!({"num_of_gpus": 2}));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn by_default_the_passthrough_manager_replaces_both_with_warnings() {
        let (components, warnings) = replace(ResourceManager::Passthrough);
        let ids: Vec<&str> = components.iter().filter_map(|c| c["id"].as_str()).collect();
        assert_eq!(ids, ["resource_manager", "docker_launcher"]);
        assert_eq!(components[0]["path"], PASSTHROUGH_RESOURCE_MANAGER);
        assert_eq!(warnings.len(), 1, "the manager's args are dropped: {warnings:?}");
    }
}
