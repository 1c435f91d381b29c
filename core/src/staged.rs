//! The staged copy of a kit that targets edit before the engine swaps it into place.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{io_error, Result};
use crate::kit::KitInfo;
use crate::launcher::LauncherClass;
use crate::patch;
use crate::release::NvflareRelease;

/// A kit copy in the staging directory. `info.kit_dir` is the staged root; paths shown
/// to the user use `final_output`.
pub struct StagedKit<'a> {
    pub info: KitInfo,
    /// `local/resources.json.default`, parsed once and written once by [`flush`](Self::flush).
    resources: Option<Map<String, Value>>,
    resources_changed: bool,
    /// The input kit (read-only).
    pub input_kit: PathBuf,
    pub final_output: PathBuf,
    known_launchers: &'a [LauncherClass],
    warnings: &'a mut Vec<String>,
    /// The NVFlare release the kit is prepared for.
    pub release: NvflareRelease,
}

impl<'a> StagedKit<'a> {
    pub fn new(
        info: KitInfo,
        input_kit: PathBuf,
        final_output: PathBuf,
        known_launchers: &'a [LauncherClass],
        warnings: &'a mut Vec<String>,
        release: NvflareRelease,
    ) -> Self {
        StagedKit {
            info,
            resources: None,
            resources_changed: false,
            input_kit,
            final_output,
            known_launchers,
            warnings,
            release,
        }
    }

    /// Starts from an already parsed `resources.json.default` (the input kit's, which the
    /// staged copy holds byte for byte) instead of parsing it again.
    pub fn with_resources(mut self, resources: Map<String, Value>) -> Self {
        self.resources = Some(resources);
        self
    }

    fn resources_mut(&mut self) -> Result<&mut Map<String, Value>> {
        if self.resources.is_none() {
            self.resources = Some(patch::resources::load(&self.local_dir())?);
        }
        self.resources_changed = true;
        self.resources
            .as_mut()
            .ok_or_else(|| crate::Error::internal("resources cache empty after loading"))
    }

    /// Forgets the parsed `resources.json.default` (after something else wrote the file).
    pub fn reload_resources(&mut self) -> Result<()> {
        self.flush()?;
        self.resources = None;
        Ok(())
    }

    /// Writes the edited `resources.json.default` (and drops `local/resources.json`).
    pub fn flush(&mut self) -> Result<()> {
        if let (true, Some(resources)) = (self.resources_changed, &self.resources) {
            patch::resources::save(&self.local_dir(), resources)?;
            self.resources_changed = false;
        }
        Ok(())
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
        self.install_launcher_path(launcher.id, launcher.path_for(self.info.role), args)
    }

    /// Like [`install_launcher`](Self::install_launcher) with an explicit id and class path.
    pub fn install_launcher_path(&mut self, id: &str, path: &str, args: Map<String, Value>) -> Result<()> {
        let known = self.known_launchers;
        let mut warnings = std::mem::take(self.warnings);
        let done = self
            .resources_mut()
            .and_then(|resources| patch::resources::replace_launcher(resources, known, id, path, args, &mut warnings));
        self.warnings.extend(warnings);
        done
    }

    /// Like [`install_launcher_path`](Self::install_launcher_path), with the choice of
    /// keeping the kit's resource manager (a plugin's `keep_resource_manager`).
    pub fn install_launcher_with(
        &mut self,
        launcher: patch::resources::Launcher<'_>,
        manager: patch::resources::ResourceManager,
    ) -> Result<()> {
        let known = self.known_launchers;
        let mut warnings = std::mem::take(self.warnings);
        let done = self.resources_mut().and_then(|resources| {
            patch::resources::replace_launcher_with(resources, known, launcher, manager, &mut warnings)
        });
        self.warnings.extend(warnings);
        done
    }

    /// Points server job and snapshot storage into the mounted workspace.
    pub fn relocate_server_storage(&mut self, workspace: &str) -> Result<()> {
        let mut warnings = std::mem::take(self.warnings);
        let done = self
            .resources_mut()
            .and_then(|resources| patch::storage::relocate(resources, workspace, &mut warnings));
        self.warnings.extend(warnings);
        done
    }

    /// Loads `local/comm_config.json` (or the reference's default), lets `edit` change
    /// it and writes it back.
    pub fn edit_comm_config(&mut self, edit: impl FnOnce(&mut patch::comm::CommConfig) -> Result<()>) -> Result<()> {
        patch::comm::edit(&self.local_dir(), edit)
    }

    /// The release's study template: `local/study_data.yaml` (2.8) unless something of
    /// that name exists; `local/study_runtime.yaml` (2.9) unless it or a legacy
    /// `study_data.yaml` exists.
    pub fn ensure_study_template(&self) -> Result<()> {
        match self.release {
            NvflareRelease::V2_8 => patch::study::ensure_template(&self.local_dir()),
            NvflareRelease::V2_9 => patch::study::ensure_runtime_template(&self.local_dir()),
        }
    }

    /// Whether the kit carries a legacy (2.8) `local/study_data.yaml`.
    pub fn has_legacy_study_data(&self) -> bool {
        self.local_dir()
            .join(patch::study::STUDY_DATA_YAML)
            .symlink_metadata()
            .is_ok()
    }

    /// Deletes the provisioned start scripts (and, for 2.9, earlier Slurm start files)
    /// from `startup/`, except `keep`.
    pub fn remove_start_scripts(&self, keep: &[&str]) -> Result<()> {
        let scripts: &[&str] = match self.release {
            NvflareRelease::V2_8 => &patch::scripts::START_SCRIPTS,
            NvflareRelease::V2_9 => &patch::scripts::START_SCRIPTS_2_9,
        };
        patch::scripts::remove_start_scripts(&self.startup_dir(), scripts, keep)
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
