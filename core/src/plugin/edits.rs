//! The declarative kit edits a plugin may ask the engine to make after `prepare`,
//! with the same helpers linked targets use.

use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, Result};
use crate::patch::resources::{Launcher, ResourceManager};
use crate::staged::StagedKit;

/// The first protocol version in which a plugin may keep the kit's resource manager.
pub const KEEP_RESOURCE_MANAGER_SINCE: u64 = 3;

fn bad(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::PluginProtocol,
        format!("Plugin edits are malformed: {what}"),
        "See docs/plugin-protocol.md for the shape of `edits`.",
    )
}

fn str_field<'a>(map: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(format_args!("{what}.{key} must be a non-empty string")))
}

/// Applies `edits` in a fixed order: launcher, server storage, comm config, study-data
/// template, start scripts. `version` is the protocol version of the conversation.
pub fn apply(kit: &mut StagedKit<'_>, edits: &Value, version: u64) -> Result<()> {
    let edits = match edits {
        Value::Null => return Ok(()),
        Value::Object(map) => map,
        _ => return Err(bad("edits must be an object")),
    };
    const KNOWN: [&str; 5] = [
        "launcher",
        "server_storage",
        "comm_config",
        "study_data_template",
        "remove_start_scripts",
    ];
    if let Some(unknown) = edits.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(format_args!("unknown edit '{unknown}'")));
    }
    if let Some(launcher) = edits.get("launcher") {
        let launcher = launcher.as_object().ok_or_else(|| bad("launcher must be an object"))?;
        let id = str_field(launcher, "id", "launcher")?.to_string();
        let path = str_field(launcher, "path", "launcher")?.to_string();
        let args = match launcher.get("args") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(args)) => args.clone(),
            Some(_) => return Err(bad("launcher.args must be an object")),
        };
        let manager = resource_manager(launcher, version)?;
        kit.install_launcher_with(
            Launcher {
                id: &id,
                path: &path,
                args,
            },
            manager,
        )?;
    }
    if let Some(storage) = edits.get("server_storage") {
        let workspace = storage
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("server_storage must be a path"))?;
        if kit.info.role == crate::Role::Server {
            kit.relocate_server_storage(workspace)?;
        }
    }
    if let Some(comm) = edits.get("comm_config") {
        let comm = comm
            .as_object()
            .ok_or_else(|| bad("comm_config must be an object"))?
            .clone();
        kit.edit_comm_config(|doc| {
            if let Some(scheme) = comm.get("scheme") {
                let scheme = scheme
                    .as_str()
                    .ok_or_else(|| bad("comm_config.scheme must be a string"))?;
                doc.set_scheme(scheme)?;
            }
            match comm.get("resources") {
                None | Some(Value::Null) => {}
                Some(Value::Object(values)) => {
                    let resources = doc.internal_resources()?;
                    for (k, v) in values {
                        resources.insert(k.clone(), v.clone());
                    }
                }
                Some(_) => return Err(bad("comm_config.resources must be an object")),
            }
            Ok(())
        })?;
    }
    if edits.get("study_data_template").and_then(Value::as_bool) == Some(true) {
        kit.ensure_study_template()?;
    }
    if let Some(scripts) = edits.get("remove_start_scripts") {
        let keep: Vec<String> = match scripts.get("keep") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(_) => return Err(bad("remove_start_scripts.keep must be a list of names")),
        };
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        kit.remove_start_scripts(&keep)?;
    }
    Ok(())
}

/// `launcher.keep_resource_manager` (version 3): `true` keeps the kit's resource manager
/// and consumer instead of the passthrough manager. Refused under older versions, where
/// the plugin could not know whether the engine honours it.
fn resource_manager(launcher: &Map<String, Value>, version: u64) -> Result<ResourceManager> {
    match launcher.get("keep_resource_manager") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(ResourceManager::Passthrough),
        Some(Value::Bool(true)) if version >= KEEP_RESOURCE_MANAGER_SINCE => Ok(ResourceManager::KeepKits),
        Some(Value::Bool(true)) => Err(bad(format_args!(
            "launcher.keep_resource_manager needs protocol version {KEEP_RESOURCE_MANAGER_SINCE}; the plugin speaks version {version}"
        ))),
        Some(_) => Err(bad("launcher.keep_resource_manager must be true or false")),
    }
}
