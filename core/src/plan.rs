//! `prepare --dry-run`: every check of a real prepare, then the real preparation built in
//! a private scratch directory (never beside the output or in the kit), compared with
//! the input kit and deleted. No lock, no staging directory, no output is written.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::kit::KitInfo;
use crate::output::PREPARED_DIR;
use crate::plan_diff::{self, ChangeKind, FileChange};
use crate::prepare::{check, display_path, Checked, PrepareRequest};
use crate::receipt::{describe_all, ReceiptEntry};
use crate::registry::Registry;
use crate::report::Outcome;

/// What a prepare would do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub output: PathBuf,
    /// An output exists at the path and would be replaced.
    pub replaces_existing: bool,
    /// Every entry of the output that differs from the input kit, by path.
    pub changes: Vec<FileChange>,
}

impl Plan {
    /// How many entries are added, changed and removed.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |kind| self.changes.iter().filter(|c| c.change == kind).count();
        (
            count(ChangeKind::Added),
            count(ChangeKind::Changed),
            count(ChangeKind::Removed),
        )
    }

    pub fn to_json(&self) -> Value {
        let (added, changed, removed) = self.counts();
        json!({
            "output": display_path(&self.output),
            "replaces_existing_output": self.replaces_existing,
            "summary": {"added": added, "changed": changed, "removed": removed},
            "changes": self.changes.iter().map(FileChange::to_json).collect::<Vec<_>>(),
        })
    }
}

/// A dry run's result: the fields a real run would print, and the plan.
#[derive(Debug, Clone)]
pub struct Planned {
    pub kit: KitInfo,
    pub outcome: Outcome,
    pub plan: Plan,
}

impl Planned {
    /// The result fields: `dry_run`, the real run's fields, then `plan`.
    pub fn fields(&self) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("dry_run".into(), true.into());
        fields.extend(self.outcome.fields.clone());
        fields.insert("plan".into(), self.plan.to_json());
        fields
    }
}

/// Checks like `prepare` and plans; writes nothing.
pub fn dry_run(request: &PrepareRequest, registry: &Registry, warnings: &mut Vec<String>) -> Result<Planned> {
    let checked = check(request, registry, &mut None)?;
    plan_checked(&checked, registry, warnings)
}

/// Builds the checked prepare in a scratch directory and compares it with the kit.
pub fn plan_checked(checked: &Checked, registry: &Registry, warnings: &mut Vec<String>) -> Result<Planned> {
    checked.guard_replace(registry)?;
    let scratch = scratch_dir(&checked.kit, &checked.output)?;
    let built = scratch.path().join("output");
    std::fs::create_dir(&built).map_err(|e| crate::error::io_error(&built, e))?;
    checked.build_into(&built, registry, warnings)?;
    let before = kit_entries(&checked.kit)?;
    let after = describe_all(&built)?;
    let changes = plan_diff::compare(&checked.kit, &before, &built, &after);
    let outcome = checked.describe()?;
    drop(scratch);
    Ok(Planned {
        kit: checked.kit_info.clone(),
        outcome,
        plan: Plan {
            output: checked.output.clone(),
            replaces_existing: checked.output.symlink_metadata().is_ok(),
            changes,
        },
    })
}

/// The kit's entries as a prepare sees them: `prepared/` is never copied.
fn kit_entries(kit: &Path) -> Result<Vec<ReceiptEntry>> {
    let prepared = format!("{PREPARED_DIR}/");
    Ok(describe_all(kit)?
        .into_iter()
        .filter(|e| e.path != PREPARED_DIR && !e.path.starts_with(&prepared))
        .collect())
}

/// A private directory (mode 0700, removed on drop) in the system's temporary
/// directory, or another one when that is the directory a real run would write into (the
/// output's parent) or lies in the kit or the output: the dry run must leave those exactly
/// as they are.
fn scratch_dir(kit: &Path, output: &Path) -> Result<tempfile::TempDir> {
    let bases = [
        std::env::temp_dir(),
        PathBuf::from("/var/tmp"),
        PathBuf::from("/dev/shm"),
    ];
    // The directory a real run would write into: the output's parent, or the first of
    // its ancestors that exists (a run creates the rest).
    let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let touched = output.ancestors().skip(1).find(|d| d.is_dir()).map(real);
    let kit = real(kit);
    let allowed = |base: &Path| {
        let base = real(base);
        base.is_dir() && !base.starts_with(&kit) && !base.starts_with(output) && Some(&base) != touched.as_ref()
    };
    let mut last_error = None;
    for base in bases.iter().filter(|b| allowed(b)) {
        match tempfile::Builder::new()
            .prefix(".flare-deploy-dry-run-")
            .tempdir_in(base)
        {
            Ok(dir) => return Ok(dir),
            Err(e) => last_error = Some(format!("{}: {e}", base.display())),
        }
    }
    Err(Error::invalid_args(
        "Cannot create a scratch directory for the dry run outside the kit and the output's parent directory.",
        format!(
            "Set TMPDIR to a writable directory elsewhere{}.",
            last_error.map(|e| format!(" ({e})")).unwrap_or_default()
        ),
    ))
}
