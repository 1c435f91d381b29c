//! `local/comm_config.json`: the internal connection between the parent process and its
//! jobs (spec section 4.4).

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::json;

pub const COMM_CONFIG_JSON: &str = "comm_config.json";

/// How the parent and its jobs secure their internal link (NVFlare 2.9's
/// `parent.internal_connection_security`); written as `internal.resources.connection_security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InternalSecurity {
    /// Mutual TLS with the kit's certificates (the 2.9 default).
    Mtls,
    /// Plain TCP inside the pod or container network.
    Clear,
}

impl InternalSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            InternalSecurity::Mtls => "mtls",
            InternalSecurity::Clear => "clear",
        }
    }
}

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

    /// NVFlare 2.9: Docker and Kubernetes parents cannot share files with job containers
    /// or pods, so a kit whose internal scheme is `shared-file` is refused.
    pub fn refuse_shared_file(&mut self, runtime_label: &str) -> Result<()> {
        let scheme = self
            .doc
            .get("internal")
            .and_then(|i| i.get("scheme"))
            .and_then(Value::as_str);
        if scheme == Some("shared-file") {
            return Err(Error::invalid_kit(
                format!("{runtime_label} runtime does not support internal.scheme 'shared-file'."),
                "Use internal.scheme 'tcp', run the original kit in process mode, or choose the Slurm runtime.",
            ));
        }
        Ok(())
    }

    /// NVFlare 2.9's container listener: like [`listen_in_container`](Self::listen_in_container),
    /// but `connection_security` is always the configured one.
    pub fn listen_in_container_secured(&mut self, security: InternalSecurity) -> Result<()> {
        self.set_scheme("tcp")?;
        let resources = self.internal_resources()?;
        resources.insert("host".into(), Value::String("0.0.0.0".into()));
        resources.insert("connection_security".into(), Value::String(security.as_str().into()));
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
