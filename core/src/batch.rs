//! A whole federation at once: every server and client kit directly under a folder
//! (what a provisioning run writes, e.g. `prod_00/`), prepared in parallel, each kit
//! atomically on its own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::paths::resolve_user_path;
use crate::prepare::{prepare, PrepareRequest, Prepared};
use crate::registry::Registry;

/// `prepare --all` inputs.
#[derive(Debug, Clone, Default)]
pub struct BatchRequest {
    /// The folder holding the kits.
    pub dir: String,
    /// One config for every kit; default: each kit's own `config.yaml`.
    pub config: Option<String>,
    /// Outputs go to `<output_root>/<kit dir name>`; default: each kit's default place.
    pub output_root: Option<String>,
    /// Parallel workers; 0 means one per core.
    pub jobs: usize,
    /// `--nvflare-version` for every kit.
    pub nvflare_version: Option<String>,
}

/// What happened to one kit.
#[derive(Debug)]
pub enum KitOutcome {
    Prepared(Prepared),
    Skipped(String),
    Failed(Error),
}

/// One kit of the batch.
#[derive(Debug)]
pub struct KitReport {
    /// The kit's directory name.
    pub kit: String,
    pub path: PathBuf,
    /// From the role file, when exactly one is present (also for failed kits).
    pub role: Option<crate::Role>,
    pub outcome: KitOutcome,
    pub warnings: Vec<String>,
}

impl KitReport {
    pub fn failed(&self) -> bool {
        matches!(self.outcome, KitOutcome::Failed(_))
    }
}

/// The subdirectories of `dir` that look like kits (sorted by name), or why not.
fn candidates(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::invalid_args(
            format!("Kit folder does not exist: {}", dir.display()),
            "Pass the folder that holds the kits, e.g. <workspace>/<project>/prod_00.",
        ));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::invalid_args(
            format!("Cannot read kit folder: {}", dir.display()),
            format!("Check the path: {e}"),
        )
    })?;
    let mut kits: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join("startup").is_dir())
        .collect();
    kits.sort();
    if kits.is_empty() {
        return Err(Error::invalid_args(
            format!("No startup kits (folders with startup/) in {}", dir.display()),
            "Pass the folder that holds the kits, e.g. <workspace>/<project>/prod_00.",
        ));
    }
    Ok(kits)
}

/// An admin kit has only `fed_admin.json`; it is skipped, not failed.
fn is_admin_kit(kit: &Path) -> bool {
    crate::kit::role_of(kit) == Some(crate::Role::Admin)
}

fn prepare_one(kit: &Path, request: &BatchRequest, output_root: Option<&Path>, registry: &Registry) -> KitReport {
    let name = kit
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut warnings = Vec::new();
    let outcome = if is_admin_kit(kit) {
        KitOutcome::Skipped("admin kit".to_string())
    } else {
        let single = PrepareRequest {
            kit: Some(kit.to_string_lossy().into_owned()),
            kit_flag: None,
            output: output_root.map(|root| root.join(&name).to_string_lossy().into_owned()),
            config: request.config.clone(),
            nvflare_version: request.nvflare_version.clone(),
        };
        match prepare(&single, registry, &mut warnings) {
            Ok(prepared) => KitOutcome::Prepared(prepared),
            Err(err) if err.code == ErrorCode::UnsupportedKit => KitOutcome::Skipped(err.message),
            Err(err) => KitOutcome::Failed(err),
        }
    };
    KitReport {
        kit: name,
        path: kit.to_path_buf(),
        role: crate::kit::role_of(kit),
        outcome,
        warnings,
    }
}

/// Prepares every kit under `request.dir`; `progress(done, total)` is called after each
/// kit. One kit's failure does not stop the others.
pub fn prepare_all(
    request: &BatchRequest,
    registry: &Registry,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<KitReport>> {
    let dir = resolve_user_path(&request.dir).map_err(|e| {
        Error::invalid_args(
            format!("Cannot resolve kit folder: {}", request.dir),
            format!("Check the path: {e}"),
        )
    })?;
    // A bad option fails the batch once, not every kit.
    crate::prepare::release_option(request.nvflare_version.as_deref().filter(|v| !v.is_empty()))?;
    let kits = candidates(&dir)?;
    let output_root = match &request.output_root {
        Some(root) if !root.is_empty() => Some(resolve_user_path(root).map_err(|e| {
            Error::invalid_args(
                format!("Cannot resolve output root: {root}"),
                format!("Check the path: {e}"),
            )
        })?),
        _ => None,
    };
    // Made once, before the workers: they must not race to create (or, failing, remove)
    // the directory they all write into.
    let created_root = match &output_root {
        Some(root) if !root.exists() => {
            std::fs::create_dir_all(root).map_err(|e| {
                Error::invalid_args(
                    format!("Cannot create output root: {}", root.display()),
                    format!("Check the path: {e}"),
                )
            })?;
            true
        }
        _ => false,
    };
    let workers = match request.jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(kits.len());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let reports: Mutex<Vec<(usize, KitReport)>> = Mutex::new(Vec::with_capacity(kits.len()));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(kit) = kits.get(index) else { break };
                let report = prepare_one(kit, request, output_root.as_deref(), registry);
                if let Ok(mut all) = reports.lock() {
                    all.push((index, report));
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, kits.len());
            });
        }
    });
    if let (true, Some(root)) = (created_root, &output_root) {
        // Nothing was written into it (every kit failed or was skipped): leave no empty
        // output root behind. remove_dir only removes an empty directory.
        let _ = std::fs::remove_dir(root);
    }
    let mut reports = reports
        .into_inner()
        .map_err(|_| Error::internal("a batch worker panicked"))?;
    reports.sort_by_key(|(index, _)| *index);
    Ok(reports.into_iter().map(|(_, report)| report).collect())
}
