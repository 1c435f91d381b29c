//! `flare-deploy k8s stage <prepared-kit>`: `local/` into a ConfigMap and `startup/` into
//! a Secret, recorded in `helm_chart/values.yaml` so that the chart mounts them, then
//! applied with kubectl, or written as manifests (docs/dev/nvflare-2.9-behaviour.md B.4).

use std::path::{Path, PathBuf};

use flare_deploy_core::naming::stable_k8s_name;
use flare_deploy_core::prepare::display_path;
use flare_deploy_core::receipt::Receipt;
use flare_deploy_core::{shell, ActionContext, Error, NvflareRelease, Outcome, Result};
use serde_json::{Map, Value};

use crate::actions::{self, checked_namespace, checked_object_name, STAGE};
use crate::bundle::{self, Bundle};
use crate::chart::CHART_DIR;
use crate::config::{DEFAULT_NAMESPACE, NAME_MAX, OBJECT_NAME_MAX};
use crate::kubectl::{self, Redactor};
use crate::values::{self, Record, StagedObject};
use crate::{manifests, release_name};

/// Kubernetes objects near this size may not be accepted (900 KiB, the reference's mark).
const SIZE_WARNING_BYTES: usize = 900 * 1024;

/// What stage works on, resolved from the options and the record.
struct Plan {
    namespace: String,
    local_configmap: String,
    startup_secret: String,
}

fn binding_changed(label: &str) -> Error {
    Error::invalid_args(
        format!("Prepared kit is already staged with a different {label}."),
        "Run flare-deploy k8s unstage before changing staged resource names or namespace.",
    )
}

/// The reference's order: the legacy record, the three bindings, then the namespace
/// and names with their defaults, then the kit's folders, launcher and values, then the
/// names' syntax.
fn plan(context: &ActionContext<'_>, values: Option<&Map<String, Value>>) -> Result<Plan> {
    let kit = context.kit;
    let record = Record::of(values)?;
    let option = |name: &str| context.options.non_empty(name).map(Value::from);
    let (namespace, configmap, secret) = (option("namespace"), option("local-configmap"), option("startup-secret"));
    if namespace.is_none() && record.namespace.is_none() && record.is_staged() {
        return Err(Error::invalid_args(
            "The existing staged resource names do not include their Kubernetes namespace.",
            "Pass the original stage namespace with --namespace before restaging this legacy prepared kit.",
        ));
    }
    for (label, recorded, requested) in [
        ("namespace", &record.namespace, &namespace),
        ("local ConfigMap", &record.local_configmap, &configmap),
        ("startup Secret", &record.startup_secret, &secret),
    ] {
        if let (Some(recorded), Some(requested)) = (recorded, requested) {
            if recorded != requested {
                return Err(binding_changed(label));
            }
        }
    }
    let namespace = match namespace.or(record.namespace) {
        Some(ns) => ns,
        None => Value::from(actions::launcher_namespace(kit)?.unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())),
    };
    let site = stable_k8s_name(&actions::site_name(values, kit), NAME_MAX);
    let configmap = configmap
        .or(record.local_configmap)
        .unwrap_or_else(|| stable_k8s_name(&format!("nvflare-local-{site}"), OBJECT_NAME_MAX).into());
    let secret = secret
        .or(record.startup_secret)
        .unwrap_or_else(|| stable_k8s_name(&format!("nvflare-startup-{site}"), OBJECT_NAME_MAX).into());

    let run_prepare = "Run flare-deploy prepare with runtime: k8s before staging.";
    for folder in ["local", "startup"] {
        let path = kit.join(folder);
        if !path.is_dir() {
            return Err(Error::invalid_kit(
                format!("Missing prepared kit folder: {}", path.display()),
                run_prepare,
            ));
        }
        if path.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::invalid_kit(
                format!("Prepared kit folder must not be a symlink: {}", path.display()),
                "Use a prepared K8s kit whose local/ and startup/ folders are regular directories.",
            ));
        }
    }
    if actions::launcher(kit)?.is_none() {
        return Err(Error::invalid_kit(
            format!(
                "Input folder was not generated for the Kubernetes runtime: {}",
                kit.display()
            ),
            "Run flare-deploy prepare with runtime: k8s and pass that prepared output directory to flare-deploy \
             k8s stage.",
        ));
    }
    let values_file = values::values_path(kit);
    if !values_file.is_file() {
        return Err(Error::invalid_kit(
            format!("Missing Helm values file: {}", values_file.display()),
            run_prepare,
        ));
    }
    // A 2.8 chart has no staged volumes: the objects would be applied and never mounted.
    let release = Receipt::read(kit).and_then(|r| r.nvflare_release);
    if release.as_deref() == Some(NvflareRelease::V2_8.as_str()) {
        return Err(Error::invalid_kit(
            format!(
                "Prepared kit was prepared for NVFlare 2.8, whose chart does not mount staged volumes: {}",
                kit.display()
            ),
            "Prepare it again for NVFlare 2.9 (--nvflare-version 2.9 or nvflare_version: \"2.9\"), then stage.",
        ));
    }
    Ok(Plan {
        namespace: checked_namespace(&namespace, STAGE, "Use a valid --namespace value.")?,
        local_configmap: checked_object_name(
            &configmap,
            "local ConfigMap name",
            "Use a valid --local-configmap value.",
        )?,
        startup_secret: checked_object_name(&secret, "startup Secret name", "Use a valid --startup-secret value.")?,
    })
}

fn size_warning(context: &mut ActionContext<'_>, kind: &str, name: &str, bundle: &Bundle) {
    if bundle.encoded_size > SIZE_WARNING_BYTES {
        context.warn(format!(
            "{kind} '{name}' encoded payload is about {} bytes; Kubernetes objects have size limits, so large \
             local/startup folders may fail to apply.",
            bundle.encoded_size
        ));
    }
}

/// The Secret's contents, for keeping them out of kubectl's words in error messages.
fn redactor_for(kit: &Path, startup: &Bundle) -> Redactor {
    let mut redactor = Redactor::default();
    for item in &startup.items {
        let (Some(key), Some(path)) = (item["key"].as_str(), item["path"].as_str()) else {
            continue;
        };
        let encoded = startup.data.get(key).and_then(Value::as_str).unwrap_or_default();
        let bytes = std::fs::read(kit.join("startup").join(path)).unwrap_or_default();
        redactor.add(encoded, &bytes);
    }
    redactor
}

fn quoted_command(words: &[String]) -> String {
    words.iter().map(|w| shell::quote(w)).collect::<Vec<_>>().join(" ")
}

fn helm_command(kit: &Path, values: Option<&Map<String, Value>>, namespace: &str) -> String {
    quoted_command(&[
        "helm".into(),
        "upgrade".into(),
        "--install".into(),
        release_name(&actions::site_name(values, kit)),
        display_path(&kit.join(CHART_DIR)),
        "--namespace".into(),
        namespace.into(),
    ])
}

/// Where the objects go: the cluster through kubectl, or manifest files.
enum Delivery {
    Kubectl(String),
    Manifests {
        dir: PathBuf,
        configmap: PathBuf,
        secret: PathBuf,
    },
}

pub fn run(context: &mut ActionContext<'_>) -> Result<Outcome> {
    let kit = context.kit.to_path_buf();
    let manifests_option = context.options.non_empty("manifests").map(str::to_string);
    let kubectl_option = context.options.non_empty("kubectl").map(str::to_string);
    actions::check_exclusive(manifests_option.as_deref(), kubectl_option.as_deref())?;
    let values = values::load(&kit)?;
    let plan = plan(context, values.as_ref())?;
    let delivery = match &manifests_option {
        Some(raw) => {
            let dir = manifests::dir(&kit, raw)?;
            let (configmap, secret) = manifests::file_names(&dir, &plan.local_configmap, &plan.startup_secret);
            Delivery::Manifests { dir, configmap, secret }
        }
        None => Delivery::Kubectl(kubectl::resolve(kubectl_option.as_deref())?),
    };
    let local = bundle::build(&kit.join("local"))?;
    let startup = bundle::build(&kit.join("startup"))?;
    size_warning(context, "ConfigMap", &plan.local_configmap, &local);
    size_warning(context, "Secret", &plan.startup_secret, &startup);
    let configmap = manifests::configmap(&plan.local_configmap, &plan.namespace, &local.data);
    let secret = manifests::secret(&plan.startup_secret, &plan.namespace, &startup.data);

    // Files first, then the record. For a cluster the record comes first (once kubectl
    // is known to exist), so that an apply failing half-way leaves unstage the exact
    // objects to delete.
    match &delivery {
        Delivery::Manifests {
            dir,
            configmap: configmap_file,
            secret: secret_file,
        } => {
            manifests::create_dir(dir)?;
            manifests::write(configmap_file, &configmap)?;
            manifests::write(secret_file, &secret)?;
        }
        Delivery::Kubectl(program) => kubectl::check_available(program)?,
    }
    let mut record = values.unwrap_or_default();
    values::record_stage(
        &mut record,
        &plan.namespace,
        StagedObject {
            name: &plan.local_configmap,
            items: local.items.clone(),
        },
        StagedObject {
            name: &plan.startup_secret,
            items: startup.items.clone(),
        },
    );
    values::write(&kit, &record)?;
    tracing::debug!(values = %values::values_path(&kit).display(), "stage recorded");
    if let Delivery::Kubectl(program) = &delivery {
        let redactor = redactor_for(&kit, &startup);
        let argv: Vec<String> = std::iter::once(program.as_str())
            .chain(kubectl::APPLY_ARGS)
            .map(str::to_string)
            .collect();
        for manifest in [&configmap, &secret] {
            kubectl::run(&argv, Some(manifests::to_yaml(manifest).as_bytes()), &argv, &redactor)?;
        }
    }
    Ok(outcome(&kit, &plan, &record, (&local, &startup), &delivery))
}

/// The result fields, in the reference's order; `--manifests` names the files where the
/// reference names kubectl.
fn outcome(
    kit: &Path,
    plan: &Plan,
    values: &Map<String, Value>,
    (local, startup): (&Bundle, &Bundle),
    delivery: &Delivery,
) -> Outcome {
    let mut outcome = Outcome::new()
        .field("namespace", plan.namespace.as_str())
        .field("prepared_kit", display_path(kit))
        .field("local_configmap", plan.local_configmap.as_str())
        .field("startup_secret", plan.startup_secret.as_str())
        .field("local_files", local.items.len())
        .field("startup_files", startup.items.len())
        .field("helm_values", display_path(&values::values_path(kit)));
    let helm = helm_command(kit, Some(values), &plan.namespace);
    let mut unstage: Vec<String> = ["flare-deploy", "k8s", "unstage"].map(String::from).to_vec();
    unstage.push(display_path(kit));
    match delivery {
        Delivery::Kubectl(program) => {
            unstage.extend(["--kubectl".to_string(), program.clone()]);
            outcome = outcome
                .field("kubectl", program.as_str())
                .field("next_step", "Start the server/client parent pod with the helm_command.")
                .field("helm_command", helm)
                .field(
                    "cleanup_step",
                    "After Helm uninstall, remove the staged credentials with the cleanup_command.",
                );
        }
        Delivery::Manifests { dir, configmap, secret } => {
            unstage.extend(["--manifests".to_string(), display_path(dir)]);
            outcome = outcome
                .field("manifests", display_path(dir))
                .field("local_manifest", display_path(configmap))
                .field("startup_manifest", display_path(secret))
                .field(
                    "next_step",
                    "Apply the two manifests through your pipeline, then start the server/client parent pod with \
                     the helm_command.",
                )
                .field("helm_command", helm)
                .field(
                    "cleanup_step",
                    "After Helm uninstall, delete the two objects through your pipeline and clear the record with \
                     the cleanup_command.",
                );
        }
    }
    outcome.field("cleanup_command", quoted_command(&unstage))
}
