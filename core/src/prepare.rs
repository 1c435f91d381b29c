//! One `prepare`: resolve the inputs, validate config and kit, stage a copy, let the
//! target edit it, swap it into place, describe the result.

use std::any::Any;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::config::RuntimeConfig;
use crate::error::{Error, Result};
use crate::kit::{inspect, KitInfo};
use crate::output::{self, Staging};
use crate::paths::resolve_user_path;
use crate::receipt::{Receipt, ReceiptSource};
use crate::registry::{Registry, TargetRef};
use crate::release::NvflareRelease;
use crate::report::Outcome;
use crate::staged::StagedKit;
use crate::target::{DynTarget, RuntimeName};

/// The command-line inputs of `prepare`, as given.
#[derive(Debug, Clone, Default)]
pub struct PrepareRequest {
    /// Positional kit.
    pub kit: Option<String>,
    /// `--kit`.
    pub kit_flag: Option<String>,
    /// `--output`; default `<kit>/prepared/<runtime>`.
    pub output: Option<String>,
    /// `--config`; default `<kit>/config.yaml`.
    pub config: Option<String>,
    /// `--nvflare-version`; wins over the config's `nvflare_version`.
    pub nvflare_version: Option<String>,
}

/// The release named by `--nvflare-version`, if given.
pub fn release_option(raw: Option<&str>) -> Result<Option<NvflareRelease>> {
    raw.map(|text| {
        NvflareRelease::parse(text).ok_or_else(|| {
            Error::invalid_args(
                format!(
                    "--nvflare-version must be a supported NVFlare release ({}, or a full version such as 2.9.0), got '{text}'.",
                    NvflareRelease::choices()
                ),
                format!("Pass the release the site runs (supported: {}).", NvflareRelease::supported_list()),
            )
        })
    })
    .transpose()
}

/// A successful prepare: the result fields and the kit it came from.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub kit: KitInfo,
    pub output: PathBuf,
    pub outcome: Outcome,
}

fn resolve(raw: &str, what: &str) -> Result<PathBuf> {
    resolve_user_path(raw).map_err(|e| {
        Error::invalid_args(
            format!("Cannot resolve {what} path: {raw}"),
            format!("Check the path: {e}"),
        )
    })
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// Everything `prepare` checked before writing anything: the inputs resolved, the
/// config and kit valid, the output allowed. [`execute`] writes it; a dry run builds it
/// elsewhere ([`crate::plan`]).
pub struct Checked {
    /// The input kit.
    pub kit: PathBuf,
    pub kit_info: KitInfo,
    /// The final output path.
    pub output: PathBuf,
    config: RuntimeConfig,
    target: TargetRef,
    target_config: Box<dyn Any + Send + Sync>,
    /// The input kit's parsed `resources.json.default`.
    resources: Map<String, Value>,
}

impl Checked {
    /// The names the site would take in the runtime (see [`crate::RuntimeTarget::runtime_names`]).
    pub fn runtime_names(&self) -> Result<Vec<RuntimeName>> {
        self.target.runtime_names(&self.kit_info, self.target_config.as_ref())
    }

    /// The result fields of a run that wrote the output.
    pub fn describe(&self) -> Result<Outcome> {
        self.target
            .describe(&self.kit_info, self.target_config.as_ref(), &self.output)
    }

    /// Refuses (through every linked target's guard) to replace an existing output that
    /// must not go yet.
    pub fn guard_replace(&self, registry: &Registry) -> Result<()> {
        if self.output.is_dir() {
            for entry in registry.linked() {
                entry.target.guard_replace(&self.output)?;
            }
        }
        Ok(())
    }

    /// Copies the kit into `dir` (an empty directory), lets the target edit the copy and
    /// writes the receipt: the finished output, not yet in place.
    pub fn build_into(&self, dir: &Path, registry: &Registry, warnings: &mut Vec<String>) -> Result<()> {
        let target = &self.target;
        output::copy_kit(&self.kit, dir, &target.copy_skips())?;
        tracing::debug!("kit copied to staging");
        let known_launchers = registry.launchers();
        let staged_info = KitInfo {
            kit_dir: dir.to_path_buf(),
            ..self.kit_info.clone()
        };
        let release = self.config.release;
        let mut staged = StagedKit::new(
            staged_info,
            self.kit.clone(),
            self.output.clone(),
            &known_launchers,
            warnings,
            release,
        )
        .with_resources(self.resources.clone());
        target.prepare_staged(&mut staged, self.target_config.as_ref())?;
        staged.flush()?;
        // Last, so that it describes the finished tree; it is what marks the output as ours.
        Receipt::of_tree(
            dir,
            &ReceiptSource {
                runtime: target.name(),
                nvflare_release: Some(release.as_str()),
                kit: &self.kit_info,
                input_kit: &self.kit,
                config_path: &self.config.path,
                config_sha256: &self.config.sha256,
            },
        )?
        .write(dir)
    }
}

/// Runs one prepare. Warnings are appended to `warnings` as they arise, also when the
/// prepare fails afterwards.
pub fn prepare(request: &PrepareRequest, registry: &Registry, warnings: &mut Vec<String>) -> Result<Prepared> {
    let checked = check(request, registry, &mut None)?;
    execute(checked, registry, warnings)
}

/// Writes a checked prepare: stages the copy beside the output, under the output's lock,
/// and swaps it into place.
pub fn execute(checked: Checked, registry: &Registry, warnings: &mut Vec<String>) -> Result<Prepared> {
    let staging = Staging::create(&checked.output)?;
    // Under the output's lock, which an action that changes the output (`k8s stage`)
    // holds too: what the guard sees cannot change before the swap.
    checked.guard_replace(registry)?;
    checked.build_into(staging.path(), registry, warnings)?;
    staging.commit(&checked.output)?;
    tracing::debug!(output = %checked.output.display(), "output replaced");
    let outcome = checked.describe()?;
    Ok(Prepared {
        kit: checked.kit_info,
        output: checked.output,
        outcome,
    })
}

/// Everything `prepare` checks before it writes: arguments, config, release, kit and
/// output rules. `runtime` is set as soon as the config names a known runtime (so that a
/// later failure can still say which runtime the kit was for).
pub fn check(request: &PrepareRequest, registry: &Registry, runtime: &mut Option<String>) -> Result<Checked> {
    let (positional, flag) = (non_empty(&request.kit), non_empty(&request.kit_flag));
    if positional.is_some() && flag.is_some() {
        return Err(Error::invalid_args(
            "Specify the startup kit only once.",
            "Use either positional kit or --kit.",
        ));
    }
    let Some(kit_arg) = positional.or(flag) else {
        return Err(Error::invalid_args(
            "Missing startup kit directory.",
            "Run flare-deploy prepare <startup-kit-dir>.",
        ));
    };
    let release_override = release_option(non_empty(&request.nvflare_version))?;
    let kit = resolve(kit_arg, "kit")?;
    let config_path = match non_empty(&request.config) {
        Some(raw) => resolve(raw, "config")?,
        None => kit.join("config.yaml"),
    };
    tracing::debug!(kit = %kit.display(), config = %config_path.display(), "resolved inputs");

    // The lookup that checks `runtime:` is the one whose target we use (for a plugin it
    // searches the plugin path, so it is done once).
    let mut found = None;
    let mut config = RuntimeConfig::load(
        &config_path,
        |name| {
            found = registry.find(name);
            found.is_some()
        },
        || registry.all_names(),
    )?;
    let entry = found.ok_or_else(|| {
        Error::internal(format!(
            "runtime '{}' passed loading but has no target",
            config.runtime()
        ))
    })?;
    let target = entry.target;
    *runtime = Some(target.name().to_string());
    if let Some(release) = release_override {
        config.release = release;
    }
    let release = config.release;
    tracing::debug!(release = release.as_str(), "NVFlare release");
    // A linked target says up front; a plugin says in its description, which costs a
    // conversation, so a broken plugin is reported by `validate` first.
    let linked = matches!(target, TargetRef::Linked(_));
    if linked {
        check_release(&*target, release)?;
    }
    let target_config = target.validate_config(&config)?;
    if !linked {
        check_release(&*target, release)?;
    }
    tracing::debug!(runtime = target.name(), "config valid");

    let output = match non_empty(&request.output) {
        Some(raw) => resolve(raw, "output")?,
        None => kit.join(output::PREPARED_DIR).join(target.name()),
    };
    let (kit_info, resources) = inspect(&kit)?;
    tracing::debug!(role = kit_info.role.as_str(), name = %kit_info.name, org = %kit_info.org, "kit valid");
    output::check_output(&kit, &output)?;
    Ok(Checked {
        kit,
        kit_info,
        output,
        config,
        target,
        target_config,
        resources,
    })
}

/// Refuses a release the target does not prepare kits for.
fn check_release(target: &dyn DynTarget, release: NvflareRelease) -> Result<()> {
    let supported = target.releases();
    if supported.contains(&release) {
        return Ok(());
    }
    let list: Vec<&str> = supported.iter().map(|r| r.as_str()).collect();
    Err(Error::invalid_config(
        format!(
            "Runtime '{}' does not support NVFlare {release}; it supports {}.",
            target.name(),
            list.join(", ")
        ),
        format!(
            "Set {} in the config (or --nvflare-version) to a release the runtime supports.",
            crate::release::RELEASE_KEY
        ),
    ))
}

/// Path text for result fields.
pub fn display_path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
