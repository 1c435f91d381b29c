//! One `prepare`: resolve the inputs, validate config and kit, stage a copy, let the
//! target edit it, swap it into place, describe the result.

use std::path::{Path, PathBuf};

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
use crate::target::DynTarget;

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

/// Runs one prepare. Warnings are appended to `warnings` as they arise, also when the
/// prepare fails afterwards.
pub fn prepare(request: &PrepareRequest, registry: &Registry, warnings: &mut Vec<String>) -> Result<Prepared> {
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

    let staging = Staging::create(&output)?;
    // Under the output's lock, which an action that changes the output (`k8s stage`)
    // holds too: what the guard sees cannot change before the swap.
    if output.is_dir() {
        for entry in registry.linked() {
            entry.target.guard_replace(&output)?;
        }
    }
    output::copy_kit(&kit, staging.path(), &target.copy_skips())?;
    tracing::debug!("kit copied to staging");
    let known_launchers = registry.launchers();
    let staged_info = KitInfo {
        kit_dir: staging.path().to_path_buf(),
        ..kit_info.clone()
    };
    let mut staged = StagedKit::new(
        staged_info,
        kit.clone(),
        output.clone(),
        &known_launchers,
        warnings,
        release,
    )
    .with_resources(resources);
    target.prepare_staged(&mut staged, target_config.as_ref())?;
    staged.flush()?;
    // Last, so that it describes the finished tree; it is what marks the output as ours.
    Receipt::of_tree(
        staging.path(),
        &ReceiptSource {
            runtime: target.name(),
            nvflare_release: Some(release.as_str()),
            kit: &kit_info,
            input_kit: &kit,
            config_path: &config.path,
            config_sha256: &config.sha256,
        },
    )?
    .write(staging.path())?;
    staging.commit(&output)?;
    tracing::debug!(output = %output.display(), "output replaced");

    let outcome = target.describe(&kit_info, target_config.as_ref(), &output)?;
    Ok(Prepared {
        kit: kit_info,
        output,
        outcome,
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
