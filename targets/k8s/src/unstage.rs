//! `flare-deploy k8s unstage <prepared-kit>`: delete the staged Secret and ConfigMap
//! (after `helm uninstall`) and clear their record from `helm_chart/values.yaml`
//! (docs/dev/nvflare-2.9-behaviour.md B.10).

use flare_deploy_core::prepare::display_path;
use flare_deploy_core::{ActionContext, Error, Outcome, Result};
use serde_json::Value;

use crate::actions::{self, checked_namespace, checked_object_name, UNSTAGE};
use crate::kubectl::{self, Redactor};
use crate::manifests;
use crate::values::{self, Record};

/// What the Secret's name is replaced with in a failed command's message.
const MASKED_SECRET: &str = "secret/<staged-name>";

fn mismatch(label: &str) -> Error {
    Error::invalid_args(
        format!("Requested {label} does not match the value recorded by stage."),
        "Omit the override to use the target recorded by stage.",
    )
}

pub fn run(context: &mut ActionContext<'_>) -> Result<Outcome> {
    let kit = context.kit.to_path_buf();
    let manifests_option = context.options.non_empty("manifests").map(str::to_string);
    let kubectl_option = context.options.non_empty("kubectl").map(str::to_string);
    actions::check_exclusive(manifests_option.as_deref(), kubectl_option.as_deref())?;
    let values = values::load(&kit)?;
    let record = Record::of(values.as_ref())?;
    let option = |name: &str| context.options.non_empty(name).map(Value::from);
    let requested = [
        ("namespace", record.namespace, option("namespace")),
        ("local ConfigMap", record.local_configmap, option("local-configmap")),
        ("startup Secret", record.startup_secret, option("startup-secret")),
    ];
    let mut chosen = Vec::new();
    for (label, recorded, requested) in requested {
        if let (Some(recorded), Some(requested)) = (&recorded, &requested) {
            if recorded != requested {
                return Err(mismatch(label));
            }
        }
        chosen.push(requested.or(recorded));
    }
    let [namespace, configmap, secret]: [Option<Value>; 3] = chosen
        .try_into()
        .map_err(|_| Error::internal("three unstage targets"))?;
    let Some(namespace) = namespace else {
        return Err(Error::invalid_args(
            "The staged Kubernetes namespace is not recorded in the prepared kit.",
            "Pass the namespace used by stage with --namespace.",
        ));
    };
    let (Some(configmap), Some(secret)) = (configmap, secret) else {
        return Err(Error::invalid_args(
            "The staged ConfigMap and Secret names are not recorded in the prepared kit.",
            "Pass the exact staged names with --local-configmap and --startup-secret.",
        ));
    };
    let values_file = values::values_path(&kit);
    if !values_file.is_file() {
        return Err(Error::invalid_kit(
            format!("Missing Helm values file: {}", values_file.display()),
            "Provide the prepared K8s kit used for staging.",
        ));
    }
    let namespace = checked_namespace(&namespace, UNSTAGE, "Use the namespace passed to stage.")?;
    let configmap = checked_object_name(
        &configmap,
        "local ConfigMap name",
        "Use the exact ConfigMap name passed to stage.",
    )?;
    let secret = checked_object_name(
        &secret,
        "startup Secret name",
        "Use the exact Secret name passed to stage.",
    )?;

    let mut outcome = Outcome::new()
        .field("status", "unstaged")
        .field("namespace", namespace.as_str())
        .field("prepared_kit", display_path(&kit))
        .field("local_configmap", configmap.as_str())
        .field("helm_values", display_path(&values_file));
    match manifests_option {
        Some(raw) => {
            let dir = manifests::dir(&kit, &raw)?;
            let (configmap_file, secret_file) = manifests::file_names(&dir, &configmap, &secret);
            // The Secret first, as kubectl deletes it first.
            manifests::remove(&secret_file)?;
            manifests::remove(&configmap_file)?;
            outcome = outcome.field("manifests", display_path(&dir));
        }
        None => {
            let program = kubectl::resolve(kubectl_option.as_deref())?;
            // The credential-bearing Secret first; one command attempts both deletions.
            let command = |secret_ref: String| {
                vec![
                    program.clone(),
                    "delete".into(),
                    secret_ref,
                    format!("configmap/{configmap}"),
                    "--namespace".into(),
                    namespace.clone(),
                    "--ignore-not-found=true".into(),
                ]
            };
            kubectl::run(
                &command(format!("secret/{secret}")),
                None,
                &command(MASKED_SECRET.into()),
                &Redactor::default(),
            )?;
            outcome = outcome.field("kubectl", program.as_str());
        }
    }
    if let Some(mut values) = values {
        if values::clear_stage(&mut values, &namespace, &configmap, &secret) {
            values::write(&kit, &values)?;
        }
    }
    Ok(outcome)
}
