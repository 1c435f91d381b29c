//! The actions of `runtime: k8s`: `stage` and `unstage` (nvflare 2.9's
//! `deploy k8s stage|unstage`), their options and help, and what both share: the site
//! name, the launcher's namespace and the name checks.

use std::path::Path;

use flare_deploy_core::json::load_object;
use flare_deploy_core::naming::{is_dns1123_label, is_dns1123_subdomain};
use flare_deploy_core::{pyrepr, ActionOption, ActionSpec, Error, Result};
use serde_json::{Map, Value};

use crate::config::{NAMESPACE_RULE, NAME_MAX, OBJECT_NAME_MAX, OBJECT_NAME_RULE};
use crate::values::truthy;
use crate::K8S_LAUNCHER;

pub const STAGE: &str = "stage";
pub const UNSTAGE: &str = "unstage";

/// `--namespace`, `--local-configmap`, `--startup-secret` and `--kubectl` (used for
/// `verb`), with their help texts.
fn target_options(namespace: &str, configmap: &str, secret: &str, verb: &str) -> Vec<ActionOption> {
    vec![
        ActionOption::value("namespace", "NS", namespace),
        ActionOption::value("local-configmap", "NAME", configmap),
        ActionOption::value("startup-secret", "NAME", secret),
        ActionOption::value(
            "kubectl",
            "CMD",
            &format!(
                "Kubernetes CLI command used for {verb}. Defaults to the KUBECTL environment variable or kubectl."
            ),
        )
        .with_choices(&["kubectl", "oc"]),
    ]
}

pub fn stage_spec() -> ActionSpec {
    ActionSpec::new(
        STAGE,
        "stage local/startup as Kubernetes ConfigMap/Secret",
        "Create Kubernetes ConfigMap/Secret resources for a prepared kit's local/startup folders and patch the \
         generated Helm chart to mount them.",
    )
    .kit_help("Prepared Kubernetes startup kit directory.")
    .options(target_options(
        "Kubernetes namespace for the ConfigMap and Secret. Defaults to the prepared launcher namespace.",
        "ConfigMap name for the prepared local/ folder. Defaults to nvflare-local-<site>.",
        "Secret name for the prepared startup/ folder. Defaults to nvflare-startup-<site>.",
        "apply",
    ))
    .option(ActionOption::value(
        "manifests",
        "DIR",
        "Write the ConfigMap and Secret manifests into DIR (files of mode 0600) instead of applying them, for a \
         pipeline that applies them; the chart is patched all the same.",
    ))
    .examples(&[
        "flare-deploy k8s stage ./site-1-k8s --namespace nvflare",
        "flare-deploy k8s stage ./server-k8s --namespace nvflare --local-configmap server-local",
        "flare-deploy k8s stage ./site-1-k8s --startup-secret site-1-startup",
        "flare-deploy k8s stage ./site-1-k8s --manifests ./gitops/site-1",
    ])
    .writes_kit()
}

pub fn unstage_spec() -> ActionSpec {
    ActionSpec::new(
        UNSTAGE,
        "delete staged Kubernetes ConfigMap/Secret resources",
        "Delete the ConfigMap and Secret created by flare-deploy k8s stage and clear their references from the \
         prepared Helm chart. Run this after Helm uninstall.",
    )
    .kit_help("Prepared Kubernetes startup kit directory used to stage.")
    .options(target_options(
        "Staged Kubernetes namespace. Defaults to the namespace recorded by stage.",
        "Exact staged ConfigMap name. Defaults to the name recorded by stage.",
        "Exact staged Secret name. Defaults to the name recorded by stage.",
        "delete",
    ))
    .option(ActionOption::value(
        "manifests",
        "DIR",
        "Remove the manifest files stage --manifests wrote into DIR instead of deleting the objects with kubectl.",
    ))
    .examples(&[
        "flare-deploy k8s unstage ./site-1-k8s",
        "flare-deploy k8s unstage ./server-k8s --namespace nvflare",
        "flare-deploy k8s unstage ./site-1-k8s --kubectl oc",
    ])
    .writes_kit()
}

/// `--manifests` and `--kubectl` exclude each other: one applies, the other does not.
pub fn check_exclusive(manifests: Option<&str>, kubectl: Option<&str>) -> Result<()> {
    if manifests.is_some() && kubectl.is_some() {
        return Err(Error::invalid_args(
            "--manifests and --kubectl exclude each other.",
            "Pass --manifests to write the manifests, or --kubectl to apply them.",
        ));
    }
    Ok(())
}

/// The site name the defaults derive from: `siteName`, else `name` of the values, else
/// the kit directory's name (as the reference's `str()` of it).
pub fn site_name(values: Option<&Map<String, Value>>, kit: &Path) -> String {
    let from_values = values.and_then(|v| {
        [v.get("siteName"), v.get("name")]
            .into_iter()
            .find(|value| truthy(*value))
            .flatten()
    });
    match from_values {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => kit
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// The Kubernetes launcher component of `local/resources.json.default` (id
/// `k8s_launcher` with one of its two class paths), if the file exists and has one.
pub fn launcher(kit: &Path) -> Result<Option<Map<String, Value>>> {
    let path = kit.join("local").join("resources.json.default");
    if !path.is_file() {
        return Ok(None);
    }
    let resources = load_object(&path, "resources.json.default")?;
    let Some(Value::Array(components)) = resources.get("components") else {
        return Ok(None);
    };
    let paths = [K8S_LAUNCHER.server_path, K8S_LAUNCHER.client_path];
    Ok(components
        .iter()
        .filter_map(Value::as_object)
        .find(|c| {
            c.get("id").and_then(Value::as_str) == Some(K8S_LAUNCHER.id)
                && c.get("path")
                    .and_then(Value::as_str)
                    .is_some_and(|p| paths.contains(&p))
        })
        .cloned())
}

/// The namespace the prepared launcher runs jobs in, when it names one.
pub fn launcher_namespace(kit: &Path) -> Result<Option<String>> {
    Ok(launcher(kit)?.and_then(|component| {
        component
            .get("args")
            .and_then(|args| args.get("namespace"))
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .map(str::to_string)
    }))
}

/// A namespace from an option or the record, checked (`verb` is `stage` or `unstage`).
pub fn checked_namespace(value: &Value, verb: &str, hint: &str) -> Result<String> {
    let Some(text) = value.as_str().filter(|s| !s.is_empty()) else {
        return Err(Error::invalid_args(
            format!("{verb} namespace must be a non-empty string."),
            hint,
        ));
    };
    if text.chars().count() > NAME_MAX || !is_dns1123_label(text) {
        return Err(Error::invalid_args(
            format!(
                "{verb} namespace must be a valid Kubernetes namespace (DNS-1123 label): {}.",
                pyrepr::str_repr(text)
            ),
            format!("{NAMESPACE_RULE} {hint}"),
        ));
    }
    Ok(text.to_string())
}

/// A ConfigMap or Secret name, checked; the value is not echoed.
pub fn checked_object_name(value: &Value, label: &str, hint: &str) -> Result<String> {
    match value.as_str() {
        Some(name) if name.chars().count() <= OBJECT_NAME_MAX && is_dns1123_subdomain(name) => Ok(name.to_string()),
        _ => Err(Error::invalid_args(
            format!("{label} must contain valid Kubernetes object names."),
            format!("{OBJECT_NAME_RULE} {hint}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_offerable() {
        assert!(stage_spec().check().is_ok());
        assert!(unstage_spec().check().is_ok());
    }

    #[test]
    fn namespaces_and_names_are_checked() {
        let hint = "Use a valid --namespace value.";
        assert_eq!(
            checked_namespace(&"nvflare".into(), STAGE, hint).ok().as_deref(),
            Some("nvflare")
        );
        let err = checked_namespace(&"Bad_NS".into(), STAGE, hint).expect_err("invalid");
        assert_eq!(
            err.message,
            "stage namespace must be a valid Kubernetes namespace (DNS-1123 label): 'Bad_NS'."
        );
        assert!(err.hint.ends_with(hint));
        let err = checked_namespace(&Value::from(7), UNSTAGE, "x").expect_err("not a string");
        assert_eq!(err.message, "unstage namespace must be a non-empty string.");
        assert!(checked_object_name(&"a.b-c".into(), "local ConfigMap name", "").is_ok());
        let err = checked_object_name(&"Secret!".into(), "startup Secret name", "h").expect_err("bad");
        assert!(!err.message.contains("Secret!") && !err.hint.contains("Secret!"));
    }
}
