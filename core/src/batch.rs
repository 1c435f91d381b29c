//! A whole federation at once: every server and client kit directly under a folder
//! (what a provisioning run writes, e.g. `prod_00/`), prepared in parallel, each kit
//! atomically on its own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::paths::resolve_user_path;
use crate::plan::{plan_checked, Planned};
use crate::prepare::{check, execute, Checked, PrepareRequest, Prepared};
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
    /// `--dry-run`: plan every kit, write nothing.
    pub dry_run: bool,
}

/// What happened to one kit.
#[derive(Debug)]
pub enum KitOutcome {
    Prepared(Prepared),
    /// A dry run's plan.
    Planned(Planned),
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
    /// The runtime of the kit's config, once the config named a known one (also for
    /// kits that failed later).
    pub runtime: Option<String>,
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

fn kit_name(kit: &Path) -> String {
    kit.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A kit after the checks: ready to prepare, or already decided.
enum Stage {
    Ready(Box<Checked>),
    Done(Box<KitOutcome>),
}

/// A kit after the checks, with its runtime when its config named one.
struct CheckedKit {
    stage: Stage,
    runtime: Option<String>,
}

/// Phase one: everything `prepare` checks for one kit, writing nothing.
fn check_one(kit: &Path, request: &BatchRequest, output_root: Option<&Path>, registry: &Registry) -> CheckedKit {
    let mut runtime = None;
    if is_admin_kit(kit) {
        return CheckedKit {
            stage: Stage::Done(Box::new(KitOutcome::Skipped("admin kit".to_string()))),
            runtime,
        };
    }
    let single = PrepareRequest {
        kit: Some(kit.to_string_lossy().into_owned()),
        kit_flag: None,
        output: output_root.map(|root| root.join(kit_name(kit)).to_string_lossy().into_owned()),
        config: request.config.clone(),
        nvflare_version: request.nvflare_version.clone(),
    };
    let stage = match check(&single, registry, &mut runtime) {
        Ok(checked) => Stage::Ready(Box::new(checked)),
        Err(err) if err.code == ErrorCode::UnsupportedKit => Stage::Done(Box::new(KitOutcome::Skipped(err.message))),
        Err(err) => Stage::Done(Box::new(KitOutcome::Failed(err))),
    };
    CheckedKit { stage, runtime }
}

/// Phase two: prepare (or plan) one checked kit.
fn run_one(stage: Stage, dry_run: bool, registry: &Registry, warnings: &mut Vec<String>) -> KitOutcome {
    match stage {
        Stage::Done(outcome) => *outcome,
        Stage::Ready(checked) if dry_run => match plan_checked(&checked, registry, warnings) {
            Ok(planned) => KitOutcome::Planned(planned),
            Err(err) => KitOutcome::Failed(err),
        },
        Stage::Ready(checked) => match execute(*checked, registry, warnings) {
            Ok(prepared) => KitOutcome::Prepared(prepared),
            Err(err) => KitOutcome::Failed(err),
        },
    }
}

/// Refuses a federation in which two kits would take one runtime name (e.g. `Site_1`
/// and `site-1-ab7f9d10` both become the Kubernetes name `site-1-ab7f9d10`): their
/// sites would replace or reach each other's resources.
fn check_names(kits: &[PathBuf], stages: &[CheckedKit]) -> Result<()> {
    let mut seen: Vec<(crate::target::RuntimeName, usize)> = Vec::new();
    for (index, checked_kit) in stages.iter().enumerate() {
        let Stage::Ready(checked) = &checked_kit.stage else {
            continue;
        };
        let mut names = checked.runtime_names()?;
        names.sort();
        names.dedup();
        for name in names {
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                let site = |i: usize| match &stages[i].stage {
                    Stage::Ready(c) => format!("'{}' (kit {})", c.kit_info.name, kit_name(&kits[i])),
                    Stage::Done(_) => kit_name(&kits[i]),
                };
                return Err(Error::invalid_args(
                    format!(
                        "Sites {} and {} would both get the {}; nothing was prepared.",
                        site(*first),
                        site(index),
                        name.describe()
                    ),
                    "Runtime names are derived from site names and must differ within a federation: rename one of the sites in the project file and provision again, or prepare the two kits for different namespaces or hosts one at a time.",
                ));
            }
            seen.push((name, index));
        }
    }
    Ok(())
}

/// Runs `work(index)` for every index below `count` on `workers` threads; the results
/// in index order.
fn parallel<R: Send>(count: usize, workers: usize, work: &(dyn Fn(usize) -> R + Sync)) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(count));
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    break;
                }
                let result = work(index);
                if let Ok(mut all) = results.lock() {
                    all.push((index, result));
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .map_err(|_| Error::internal("a batch worker panicked"))?;
    results.sort_by_key(|(index, _)| *index);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

/// Prepares every kit under `request.dir`; `progress(done, total)` is called once the
/// kits are found (`done` 0) and after each kit. One kit's failure does not stop the others.
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
    // The total is known now; a progress display can show "0/N" while kits are checked.
    progress(0, kits.len());
    let output_root = match &request.output_root {
        Some(root) if !root.is_empty() => Some(resolve_user_path(root).map_err(|e| {
            Error::invalid_args(
                format!("Cannot resolve output root: {root}"),
                format!("Check the path: {e}"),
            )
        })?),
        _ => None,
    };
    let workers = match request.jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(kits.len());
    // Every kit is checked before any is written, so that a federation whose sites
    // would collide in the runtime is refused as a whole.
    let stages = parallel(kits.len(), workers, &|i| {
        check_one(&kits[i], request, output_root.as_deref(), registry)
    })?;
    check_names(&kits, &stages)?;
    // Made once, before the workers: they must not race to create (or, failing, remove)
    // the directory they all write into. A dry run makes nothing.
    let created_root = match &output_root {
        Some(root) if !root.exists() && !request.dry_run => {
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
    // Each worker takes its kit's checked state out of its slot.
    let slots: Vec<Mutex<Option<CheckedKit>>> = stages.into_iter().map(|s| Mutex::new(Some(s))).collect();
    let done = AtomicUsize::new(0);
    let reports = parallel(kits.len(), workers, &|i| {
        let CheckedKit { stage, runtime } =
            slots[i]
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .unwrap_or_else(|| CheckedKit {
                    stage: Stage::Done(Box::new(KitOutcome::Failed(Error::internal("kit taken twice")))),
                    runtime: None,
                });
        let mut warnings = Vec::new();
        let outcome = run_one(stage, request.dry_run, registry, &mut warnings);
        progress(done.fetch_add(1, Ordering::Relaxed) + 1, kits.len());
        KitReport {
            kit: kit_name(&kits[i]),
            path: kits[i].clone(),
            role: crate::kit::role_of(&kits[i]),
            runtime,
            outcome,
            warnings,
        }
    })?;
    if let (true, Some(root)) = (created_root, &output_root) {
        // Nothing was written into it (every kit failed or was skipped): leave no empty
        // output root behind. remove_dir only removes an empty directory.
        let _ = std::fs::remove_dir(root);
    }
    Ok(reports)
}
