//! The declarative kit edits a plugin may ask the engine to make after `prepare`,
//! with the same helpers linked targets use.

use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, Result};
use crate::staged::StagedKit;

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
/// template, start scripts.
pub fn apply(kit: &mut StagedKit<'_>, edits: &Value) -> Result<()> {
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
        kit.install_launcher_path(&id, &path, args)?;
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
