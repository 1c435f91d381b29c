//! The staged copy of a kit that targets edit before the engine swaps it into place.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::kit::KitInfo;
use crate::patch;
use crate::target::LauncherClass;

/// A kit copy in the staging directory. `info.kit_dir` is the staged root; paths shown
/// to the user use `final_output`.
pub struct StagedKit<'a> {
    pub info: KitInfo,
    /// The input kit (read-only).
    pub input_kit: PathBuf,
    pub final_output: PathBuf,
    known_launchers: &'a [LauncherClass],
    warnings: &'a mut Vec<String>,
}

impl<'a> StagedKit<'a> {
    pub fn new(
        info: KitInfo,
        input_kit: PathBuf,
        final_output: PathBuf,
        known_launchers: &'a [LauncherClass],
        warnings: &'a mut Vec<String>,
    ) -> Self {
        StagedKit {
            info,
            input_kit,
            final_output,
            known_launchers,
            warnings,
        }
    }

    pub fn root(&self) -> &Path {
        &self.info.kit_dir
    }

    pub fn local_dir(&self) -> PathBuf {
        self.root().join("local")
    }

    pub fn startup_dir(&self) -> PathBuf {
        self.root().join("startup")
    }

    /// Records a warning; it is printed like the reference's `Warning: ...` lines.
    pub fn warn(&mut self, message: impl Into<String>) {
        let message = message.into();
        tracing::debug!(%message, "warning");
        self.warnings.push(message);
    }

    /// Replaces the job launcher and resource manager in `resources.json.default`
    /// with the passthrough manager and `launcher` (for this kit's role) with `args`,
    /// warning about configuration that will no longer be used.
    pub fn install_launcher(&mut self, launcher: LauncherClass, args: Map<String, Value>) -> Result<()> {
        let path = launcher.path_for(self.info.role);
        let local = self.local_dir();
        let known = self.known_launchers;
        patch::resources::install_launcher(&local, known, launcher.id, path, args, self.warnings)
    }

    /// Like [`install_launcher`](Self::install_launcher) with an explicit id and class path.
    pub fn install_launcher_path(&mut self, id: &str, path: &str, args: Map<String, Value>) -> Result<()> {
        let local = self.local_dir();
        patch::resources::install_launcher(&local, self.known_launchers, id, path, args, self.warnings)
    }

    /// Points server job and snapshot storage into the mounted workspace.
    pub fn relocate_server_storage(&mut self, workspace: &str) -> Result<()> {
        let local = self.local_dir();
        patch::storage::relocate_server_storage(&local, workspace, self.warnings)
    }

    /// Loads `local/comm_config.json` (or the reference's default), lets `edit` change
    /// it and writes it back.
    pub fn edit_comm_config(&mut self, edit: impl FnOnce(&mut patch::comm::CommConfig) -> Result<()>) -> Result<()> {
        patch::comm::edit(&self.local_dir(), edit)
    }

    /// Writes `local/study_data.yaml` unless something of that name exists.
    pub fn ensure_study_data_template(&self) -> Result<()> {
        patch::study::ensure_template(&self.local_dir())
    }

    /// Deletes the provisioned start scripts from `startup/`, except `keep`.
    pub fn remove_start_scripts(&self, keep: &[&str]) -> Result<()> {
        patch::scripts::remove_start_scripts(&self.startup_dir(), keep)
    }

    /// Writes a file under the staged root; `executable` adds the x bits like `chmod +x`.
    pub fn write_file(&self, relative: &str, contents: &str, executable: bool) -> Result<PathBuf> {
        let path = self.root().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        std::fs::write(&path, contents).map_err(|e| io_error(&path, e))?;
        if executable {
            patch::scripts::add_exec_bits(&path)?;
        }
        Ok(path)
    }
}

pub(crate) fn io_error(path: &Path, err: std::io::Error) -> Error {
    Error::prepare_failed(format_args!("{}: {err}", path.display()))
}
