//! Server job and snapshot storage moved into the mounted workspace (spec section 4.7),
//! so it survives the parent container.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::patch::resources;

/// [`relocate`] on the file in `local`: load, edit, save.
pub fn relocate_server_storage(local: &Path, workspace: &str, warnings: &mut Vec<String>) -> Result<()> {
    let mut doc = resources::load(local)?;
    relocate(&mut doc, workspace, warnings)?;
    resources::save(local, &doc)
}

/// Points job and snapshot storage of a loaded `resources.json.default` at `workspace`.
pub fn relocate(doc: &mut Map<String, Value>, workspace: &str, warnings: &mut Vec<String>) -> Result<()> {
    let snapshot_root = format!("{workspace}/snapshot-storage");
    if let Some(persistor) = doc.get_mut("snapshot_persistor") {
        let slot = persistor
            .get_mut("args")
            .and_then(|a| a.get_mut("storage"))
            .and_then(|s| s.get_mut("args"))
            .and_then(Value::as_object_mut);
        match slot {
            Some(args) => {
                args.insert("root_dir".into(), Value::String(snapshot_root));
            }
            None => warnings.push(format!(
                "snapshot_persistor is present, but deploy prepare could not relocate snapshot storage to the \
                 workspace at {snapshot_root}. Expected nested key: snapshot_persistor.args.storage.args.root_dir."
            )),
        }
    }
    let jobs_root = Value::String(format!("{workspace}/jobs-storage"));
    for component in resources::components_mut(doc)?
        .iter_mut()
        .filter_map(Value::as_object_mut)
    {
        if component.get("id").and_then(Value::as_str) != Some("job_manager") {
            continue;
        }
        let args = component.entry("args").or_insert_with(|| Value::Object(Map::new()));
        if args.is_null() {
            *args = Value::Object(Map::new());
        }
        let Value::Object(args) = args else {
            return Err(Error::invalid_kit(
                "resources.json.default job_manager args must be a JSON object.",
                "Fix the startup kit resources file.",
            ));
        };
        args.insert("uri_root".into(), jobs_root.clone());
    }
    Ok(())
}
