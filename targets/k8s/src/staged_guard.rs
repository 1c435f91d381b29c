//! The guard that keeps a prepare from replacing a Kubernetes output whose `local/` and
//! `startup/` are still staged in the cluster (NVFlare 2.9's `OUTPUT_STAGED`): the
//! ConfigMap and Secret recorded in `helm_chart/values.yaml` would be orphaned, and a
//! running release would keep mounting the old files.

use std::path::Path;

use flare_deploy_core::{Error, ErrorCode, Result};
use serde_yaml::Value;

/// Largest values.yaml read (a prepared one is a few KiB).
const MAX_VALUES_BYTES: u64 = 16 << 20;

fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Sequence(items)) => !items.is_empty(),
        Some(Value::Mapping(map)) => !map.is_empty(),
        Some(Value::Tagged(tagged)) => truthy(Some(&tagged.value)),
    }
}

/// `Ok` unless `<output>/helm_chart/values.yaml` records a staged ConfigMap or Secret.
pub fn check(output: &Path) -> Result<()> {
    let path = output.join("helm_chart").join("values.yaml");
    let Ok(meta) = path.symlink_metadata() else {
        return Ok(());
    };
    if !meta.is_file() {
        return Ok(());
    }
    let parse_error = |detail: &dyn std::fmt::Display| {
        Error::invalid_kit(
            format!("Failed to parse Helm values: {detail}"),
            "Fix helm_chart/values.yaml.",
        )
    };
    if meta.len() > MAX_VALUES_BYTES {
        return Err(parse_error(&format_args!("{} is larger than 16 MiB", path.display())));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| parse_error(&e))?;
    let values: Value = serde_yaml::from_str(&text).map_err(|e| parse_error(&e))?;
    let Value::Mapping(values) = values else {
        return Err(Error::invalid_kit(
            "helm_chart/values.yaml must contain a YAML mapping.",
            "Fix the prepared Helm chart.",
        ));
    };
    let workspace = match values.get("workspaceConfig") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Mapping(map)) => map,
        Some(_) => {
            return Err(Error::invalid_kit(
                "helm_chart/values.yaml workspaceConfig must be a mapping.",
                "Fix the prepared chart.",
            ))
        }
    };
    let entry = |key: &str| match workspace.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Mapping(map)) => Ok(Some(map)),
        Some(_) => Err(Error::invalid_kit(
            "helm_chart/values.yaml workspaceConfig local/startup entries must be mappings.",
            "Fix the prepared chart.",
        )),
    };
    let (local, startup) = (entry("local")?, entry("startup")?);
    let staged =
        local.is_some_and(|m| truthy(m.get("configMapName"))) || startup.is_some_and(|m| truthy(m.get("secretName")));
    if staged {
        return Err(Error::new(
            ErrorCode::OutputStaged,
            format!(
                "Prepared Kubernetes output still has staged resources: {}",
                output.display()
            ),
            format!(
                "After Helm uninstall, run nvflare deploy k8 unstage {} before replacing this output.",
                output.display()
            ),
        ));
    }
    Ok(())
}
