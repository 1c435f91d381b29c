//! `helm_chart/values.yaml` of a prepared output as `stage`, `unstage` and the prepare
//! guard read it, and the record of staged objects in its `workspaceConfig`
//! (docs/dev/nvflare-2.9-behaviour.md B.3, B.7, B.10).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flare_deploy_core::{yaml_write, Error, Result};
use serde_json::{json, Map, Value};

use crate::chart::CHART_DIR;

/// The key of the record.
pub const RECORD_KEY: &str = "workspaceConfig";
/// Largest values.yaml read (a prepared one is a few KiB).
const MAX_VALUES_BYTES: u64 = 16 << 20;

pub fn values_path(kit: &Path) -> PathBuf {
    kit.join(CHART_DIR).join("values.yaml")
}

/// Python's truthiness of a YAML value, which the reference's checks use.
pub fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(map)) => !map.is_empty(),
    }
}

/// The parsed values of `<kit>/helm_chart/values.yaml`, `None` when it is not a regular
/// file (a link to one counts, as in the reference).
pub fn load(kit: &Path) -> Result<Option<Map<String, Value>>> {
    let path = values_path(kit);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => {}
        _ => return Ok(None),
    }
    let parse_error = |detail: &dyn std::fmt::Display| {
        Error::invalid_kit(
            format!("Failed to parse Helm values: {detail}"),
            "Fix helm_chart/values.yaml.",
        )
    };
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if size > MAX_VALUES_BYTES {
        return Err(parse_error(&format_args!("{} is larger than 16 MiB", path.display())));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| parse_error(&e))?;
    let values: Value = serde_yaml::from_str(&text).map_err(|e| parse_error(&e))?;
    match values {
        Value::Object(map) => Ok(Some(map)),
        _ => Err(Error::invalid_kit(
            "helm_chart/values.yaml must contain a YAML mapping.",
            "Fix the prepared Helm chart.",
        )),
    }
}

/// What the values record: the namespace and the names of the staged ConfigMap and
/// Secret, each only when truthy (as the reference counts them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub namespace: Option<Value>,
    pub local_configmap: Option<Value>,
    pub startup_secret: Option<Value>,
}

impl Record {
    /// Reads the record of `values` (none when there are no values).
    pub fn of(values: Option<&Map<String, Value>>) -> Result<Record> {
        let Some(values) = values else {
            return Ok(Record::default());
        };
        let workspace = match values.get(RECORD_KEY) {
            None | Some(Value::Null) => return Ok(Record::default()),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(Error::invalid_kit(
                    "helm_chart/values.yaml workspaceConfig must be a mapping.",
                    "Fix the prepared chart.",
                ))
            }
        };
        let entry = |key: &str| match workspace.get(key) {
            // Falsy entries count as empty mappings, as in the reference.
            entry if !truthy(entry) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            _ => Err(Error::invalid_kit(
                "helm_chart/values.yaml workspaceConfig local/startup entries must be mappings.",
                "Fix the prepared chart.",
            )),
        };
        let (local, startup) = (entry("local")?, entry("startup")?);
        let kept = |value: Option<&Value>| value.filter(|v| truthy(Some(v))).cloned();
        Ok(Record {
            namespace: kept(workspace.get("namespace")),
            local_configmap: kept(local.and_then(|m| m.get("configMapName"))),
            startup_secret: kept(startup.and_then(|m| m.get("secretName"))),
        })
    }

    /// Whether a ConfigMap or Secret is recorded (a namespace alone is not staging).
    pub fn is_staged(&self) -> bool {
        self.local_configmap.is_some() || self.startup_secret.is_some()
    }
}

/// One staged object as recorded: its name and the items that map its keys to paths.
pub struct StagedObject<'a> {
    pub name: &'a str,
    pub items: Vec<Value>,
}

/// Records a stage: `workspaceConfig` (appended when absent) gets the namespace and the
/// two objects; its other keys stay.
pub fn record_stage(values: &mut Map<String, Value>, namespace: &str, local: StagedObject, startup: StagedObject) {
    let workspace = match values.get_mut(RECORD_KEY) {
        Some(Value::Object(map)) => map,
        _ => {
            values.insert(RECORD_KEY.into(), json!({}));
            match values.get_mut(RECORD_KEY) {
                Some(Value::Object(map)) => map,
                _ => return,
            }
        }
    };
    workspace.insert("namespace".into(), namespace.into());
    workspace.insert(
        "local".into(),
        json!({"configMapName": local.name, "items": local.items}),
    );
    workspace.insert(
        "startup".into(),
        json!({"secretName": startup.name, "items": startup.items}),
    );
}

/// Clears what an unstage removed: an entry naming the deleted object, then the
/// namespace once neither object is recorded. Whether anything changed.
pub fn clear_stage(
    values: &mut Map<String, Value>,
    namespace: &str,
    local_configmap: &str,
    startup_secret: &str,
) -> bool {
    let Some(Value::Object(workspace)) = values.get_mut(RECORD_KEY) else {
        return false;
    };
    let mut changed = false;
    let names = |workspace: &Map<String, Value>, entry: &str, key: &str| {
        workspace
            .get(entry)
            .and_then(Value::as_object)
            .and_then(|m| m.get(key))
            .cloned()
    };
    if names(workspace, "local", "configMapName") == Some(Value::from(local_configmap)) {
        workspace.insert("local".into(), json!({"configMapName": null, "items": []}));
        changed = true;
    }
    if names(workspace, "startup", "secretName") == Some(Value::from(startup_secret)) {
        workspace.insert("startup".into(), json!({"secretName": null, "items": []}));
        changed = true;
    }
    let entry_ok = |entry: &str| {
        let value = workspace.get(entry);
        !truthy(value) || value.is_some_and(Value::is_object)
    };
    let nothing_staged = entry_ok("local")
        && entry_ok("startup")
        && !truthy(names(workspace, "local", "configMapName").as_ref())
        && !truthy(names(workspace, "startup", "secretName").as_ref());
    if nothing_staged && workspace.get("namespace") == Some(&Value::from(namespace)) {
        workspace.insert("namespace".into(), Value::Null);
        changed = true;
    }
    changed
}

/// Rewrites `<kit>/helm_chart/values.yaml` with `values` in one step (a temporary file
/// beside it, then a rename), keeping its permission bits.
pub fn write(kit: &Path, values: &Map<String, Value>) -> Result<()> {
    let path = values_path(kit);
    let mode = std::fs::metadata(&path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
    let text = yaml_write::to_string(&Value::Object(values.clone()));
    flare_deploy_core::atomic::replace_file(&path, text.as_bytes(), mode).map_err(|e| {
        Error::invalid_kit(
            format!("Cannot write the Helm values {}: {e}", path.display()),
            "Check that the prepared kit is writable.",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(yaml: &str) -> Map<String, Value> {
        match serde_yaml::from_str(yaml) {
            Ok(Value::Object(map)) => map,
            other => panic!("not a mapping: {other:?}"),
        }
    }

    #[test]
    fn the_record_counts_only_truthy_names() {
        let v = values("workspaceConfig:\n  namespace: ns\n  local: {configMapName: '', items: []}\n  startup: null\n");
        let record = Record::of(Some(&v)).expect("record");
        assert_eq!(record.namespace, Some(json!("ns")));
        assert!(!record.is_staged());
        let v = values("workspaceConfig:\n  local: []\n");
        assert!(Record::of(Some(&v))
            .expect("falsy list is empty")
            .local_configmap
            .is_none());
        let v = values("workspaceConfig:\n  local: [1]\n");
        assert!(Record::of(Some(&v)).is_err());
    }

    #[test]
    fn stage_then_clear_restores_the_prepared_record() {
        let prepared = "name: site-1\nworkspaceConfig:\n  namespace: null\n  local:\n    configMapName: null\n    \
                        items: []\n  startup:\n    secretName: null\n    items: []\nport: 8102\n";
        let mut v = values(prepared);
        let item = json!({"key": "f0000-x-a", "path": "a"});
        let local = StagedObject {
            name: "cm",
            items: vec![item.clone()],
        };
        let startup = StagedObject {
            name: "sec",
            items: vec![item],
        };
        record_stage(&mut v, "ns", local, startup);
        assert_eq!(v["workspaceConfig"]["local"]["configMapName"], "cm");
        assert!(Record::of(Some(&v)).expect("record").is_staged());
        assert!(clear_stage(&mut v, "ns", "cm", "sec"));
        assert_eq!(yaml_write::to_string(&Value::Object(v.clone())), prepared);
        assert!(!clear_stage(&mut v, "ns", "cm", "sec"), "nothing left to clear");
    }

    #[test]
    fn a_missing_record_is_appended() {
        let mut v = values("name: a\n");
        let none = || StagedObject {
            name: "x",
            items: Vec::new(),
        };
        record_stage(&mut v, "ns", none(), none());
        let keys: Vec<&str> = v.keys().map(String::as_str).collect();
        assert_eq!(keys, ["name", "workspaceConfig"]);
    }
}
