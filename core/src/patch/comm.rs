//! `local/comm_config.json`: the internal connection between the parent process and its
//! jobs (spec section 4.4).

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::json;

pub const COMM_CONFIG_JSON: &str = "comm_config.json";

/// The loaded comm config document.
pub struct CommConfig {
    pub doc: Map<String, Value>,
}

impl CommConfig {
    /// `internal`, created empty when absent.
    pub fn internal(&mut self) -> Result<&mut Map<String, Value>> {
        let internal = self.doc.entry("internal").or_insert_with(|| json!({}));
        internal.as_object_mut().ok_or_else(|| {
            Error::invalid_kit(
                "comm_config.json internal must be a mapping.",
                "Fix the startup kit comm config.",
            )
        })
    }

    /// `internal.scheme`.
    pub fn set_scheme(&mut self, scheme: &str) -> Result<()> {
        self.internal()?.insert("scheme".into(), Value::String(scheme.into()));
        Ok(())
    }

    /// The parent listens for its jobs on every interface of its container: scheme tcp,
    /// host 0.0.0.0, and `connection_security` clear unless the kit already chose one.
    pub fn listen_in_container(&mut self) -> Result<()> {
        self.set_scheme("tcp")?;
        let resources = self.internal_resources()?;
        resources.insert("host".into(), Value::String("0.0.0.0".into()));
        resources
            .entry("connection_security")
            .or_insert_with(|| Value::String("clear".into()));
        Ok(())
    }

    /// `internal.resources`, created empty when absent.
    pub fn internal_resources(&mut self) -> Result<&mut Map<String, Value>> {
        let resources = self.internal()?.entry("resources").or_insert_with(|| json!({}));
        resources.as_object_mut().ok_or_else(|| {
            Error::invalid_kit(
                "comm_config.json internal.resources must be a mapping.",
                "Fix the startup kit comm config.",
            )
        })
    }
}

fn default_doc() -> Map<String, Value> {
    let value = json!({
        "allow_adhoc_conns": false,
        "backbone_conn_gen": 2,
        "internal": {"scheme": "tcp", "resources": {"connection_security": "clear"}}
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

pub fn edit(local: &Path, edit: impl FnOnce(&mut CommConfig) -> Result<()>) -> Result<()> {
    let path = local.join(COMM_CONFIG_JSON);
    let doc = if path.is_file() {
        json::load_object(&path, COMM_CONFIG_JSON)?
    } else {
        default_doc()
    };
    let mut config = CommConfig { doc };
    edit(&mut config)?;
    json::write_file(&path, &config.doc)
}
