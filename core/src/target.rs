//! The contract between the engine and a runtime target, and how targets register.

use std::any::Any;
use std::path::Path;

use crate::action::{self, ActionContext, ActionSpec};
use crate::config::RuntimeConfig;
use crate::error::{Error, Result};
use crate::kit::KitInfo;
pub use crate::launcher::LauncherClass;
use crate::release::NvflareRelease;
use crate::report::Outcome;
use crate::staged::StagedKit;

/// A deployment runtime (`runtime: <name>` in the config).
///
/// The engine validates the kit, makes the staging copy and swaps it into place; the
/// target validates its own config and edits the staged copy, step by step. The steps
/// run in this order: [`validate_config`](Self::validate_config), then on the staged
/// copy [`patch_resources`](Self::patch_resources),
/// [`patch_comm_config`](Self::patch_comm_config), [`emit_artifacts`](Self::emit_artifacts),
/// and after the swap [`describe`](Self::describe).
pub trait RuntimeTarget: Send + Sync + 'static {
    /// The validated, typed config the steps work from. Its shape mirrors the YAML and
    /// its JSON Schema (with the field docs) is what `flare-deploy targets show` prints.
    type Config: schemars::JsonSchema + Send + Sync + 'static;

    /// The value of `runtime:` that selects this target.
    fn name(&self) -> &'static str;

    /// One line for `flare-deploy targets`.
    fn summary(&self) -> &'static str;

    /// The launcher component this target installs. The engine also uses every
    /// registered target's launcher to recognise components a re-prepared kit carries.
    fn launcher(&self) -> LauncherClass;

    /// Validates the raw config in the reference's order (first failure wins).
    fn validate_config(&self, config: &RuntimeConfig) -> Result<Self::Config>;

    /// Paths (relative to the kit) this target always deletes or regenerates; the engine
    /// does not copy them into the staging directory at all.
    fn copy_skips(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Refuses to let any prepare replace `output` (an existing directory), whatever its
    /// runtime, when this target knows it must not go yet (Kubernetes: resources staged
    /// in the cluster still point at it). Called for every linked target.
    fn guard_replace(&self, _output: &Path) -> Result<()> {
        Ok(())
    }

    /// The NVFlare releases this target prepares kits for (default: all). The engine
    /// refuses the others before calling the target; the chosen one is
    /// `RuntimeConfig::release` and `StagedKit::release`.
    fn releases(&self) -> &'static [NvflareRelease] {
        &NvflareRelease::ALL
    }

    /// Edits `local/resources.json.default` (launcher, resource manager, storage).
    fn patch_resources(&self, kit: &mut StagedKit<'_>, config: &Self::Config) -> Result<()>;

    /// Edits `local/comm_config.json` (the internal connection of parent and jobs).
    fn patch_comm_config(&self, kit: &mut StagedKit<'_>, config: &Self::Config) -> Result<()>;

    /// Writes the runtime's own files (start script, chart, templates).
    fn emit_artifacts(&self, kit: &mut StagedKit<'_>, config: &Self::Config) -> Result<()>;

    /// The result fields printed after success, in order. `output` is the final path.
    /// Fields named `*_command` are the next steps (start the site, install the chart):
    /// the `--all` summary shows them for each kit.
    fn describe(&self, kit: &KitInfo, config: &Self::Config, output: &Path) -> Outcome;

    /// The names the site takes in the runtime that must differ between the sites of
    /// one federation (a container name, a Helm release), each with what kind of name it
    /// is and where it must be unique. `prepare --all` refuses a federation in which two
    /// kits would take the same one. Default: none.
    fn runtime_names(&self, _kit: &KitInfo, _config: &Self::Config) -> Vec<RuntimeName> {
        Vec::new()
    }

    /// Other words that name this runtime in action commands (`flare-deploy k8 stage`);
    /// configs use the name only.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// The verbs this target adds, run on a prepared output as
    /// `flare-deploy <runtime> <action> [KIT] [options]`.
    fn actions(&self) -> Vec<ActionSpec> {
        Vec::new()
    }

    /// Runs the action `context.spec` (one of [`actions`](Self::actions)) on the
    /// prepared output `context.kit`; the result fields are printed like prepare's.
    fn run_action(&self, context: &mut ActionContext<'_>) -> Result<Outcome> {
        Err(action::undeclared(self.name(), &context.spec.name))
    }
}

/// Object-safe form of [`RuntimeTarget`] that the registry stores; implemented for every
/// `RuntimeTarget`, with the typed config carried as `Any`.
pub trait DynTarget: Send + Sync {
    fn name(&self) -> &str;
    fn summary(&self) -> &str;
    /// The launcher the target installs, when the engine knows it up front.
    fn launcher(&self) -> Option<LauncherClass>;
    /// JSON Schema of the config file.
    fn config_schema(&self) -> Result<serde_json::Value>;
    /// Kit paths not to copy (see [`RuntimeTarget::copy_skips`]).
    fn copy_skips(&self) -> Vec<String> {
        Vec::new()
    }
    /// See [`RuntimeTarget::releases`].
    fn releases(&self) -> Vec<NvflareRelease> {
        NvflareRelease::ALL.to_vec()
    }
    /// See [`RuntimeTarget::guard_replace`].
    fn guard_replace(&self, _output: &Path) -> Result<()> {
        Ok(())
    }
    /// See [`RuntimeTarget::aliases`].
    fn aliases(&self) -> Vec<String> {
        Vec::new()
    }
    /// See [`RuntimeTarget::actions`]; a plugin's answer may fail.
    fn actions(&self) -> Result<Vec<ActionSpec>> {
        Ok(Vec::new())
    }
    /// See [`RuntimeTarget::run_action`].
    fn run_action(&self, context: &mut ActionContext<'_>) -> Result<Outcome> {
        Err(action::undeclared(self.name(), &context.spec.name))
    }
    fn validate_config(&self, config: &RuntimeConfig) -> Result<Box<dyn Any + Send + Sync>>;
    fn prepare_staged(&self, kit: &mut StagedKit<'_>, config: &(dyn Any + Send + Sync)) -> Result<()>;
    fn describe(&self, kit: &KitInfo, config: &(dyn Any + Send + Sync), output: &Path) -> Result<Outcome>;
    /// See [`RuntimeTarget::runtime_names`].
    fn runtime_names(&self, _kit: &KitInfo, _config: &(dyn Any + Send + Sync)) -> Result<Vec<RuntimeName>> {
        Ok(Vec::new())
    }
}

/// A name a site takes in its runtime: `kind` says which name (e.g. `Helm release name`),
/// `scope` where it must be unique when that is narrower than the runtime (e.g.
/// `namespace 'nvflare'`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuntimeName {
    pub kind: String,
    pub scope: Option<String>,
    pub name: String,
}

impl RuntimeName {
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        RuntimeName {
            kind: kind.into(),
            scope: None,
            name: name.into(),
        }
    }

    /// The same name, unique only within `scope`.
    pub fn within(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// `Helm release name 'x' (namespace 'y')`.
    pub fn describe(&self) -> String {
        match &self.scope {
            Some(scope) => format!("{} '{}' ({scope})", self.kind, self.name),
            None => format!("{} '{}'", self.kind, self.name),
        }
    }
}

fn typed<'c, C: 'static>(name: &str, config: &'c (dyn Any + Send + Sync)) -> Result<&'c C> {
    config
        .downcast_ref::<C>()
        .ok_or_else(|| Error::internal(format!("target '{name}' was given a config it did not produce")))
}

impl<T: RuntimeTarget> DynTarget for T {
    fn name(&self) -> &str {
        RuntimeTarget::name(self)
    }
    fn summary(&self) -> &str {
        RuntimeTarget::summary(self)
    }
    fn launcher(&self) -> Option<LauncherClass> {
        Some(RuntimeTarget::launcher(self))
    }
    fn config_schema(&self) -> Result<serde_json::Value> {
        Ok(crate::release::with_release_key(
            schemars::schema_for!(T::Config).to_value(),
        ))
    }
    fn copy_skips(&self) -> Vec<String> {
        RuntimeTarget::copy_skips(self).iter().map(|s| s.to_string()).collect()
    }
    fn releases(&self) -> Vec<NvflareRelease> {
        RuntimeTarget::releases(self).to_vec()
    }
    fn guard_replace(&self, output: &Path) -> Result<()> {
        RuntimeTarget::guard_replace(self, output)
    }
    fn aliases(&self) -> Vec<String> {
        RuntimeTarget::aliases(self).iter().map(|s| s.to_string()).collect()
    }
    fn actions(&self) -> Result<Vec<ActionSpec>> {
        Ok(RuntimeTarget::actions(self))
    }
    fn run_action(&self, context: &mut ActionContext<'_>) -> Result<Outcome> {
        RuntimeTarget::run_action(self, context)
    }
    fn validate_config(&self, config: &RuntimeConfig) -> Result<Box<dyn Any + Send + Sync>> {
        Ok(Box::new(RuntimeTarget::validate_config(self, config)?))
    }
    fn prepare_staged(&self, kit: &mut StagedKit<'_>, config: &(dyn Any + Send + Sync)) -> Result<()> {
        let config = typed::<T::Config>(RuntimeTarget::name(self), config)?;
        self.patch_resources(kit, config)?;
        self.patch_comm_config(kit, config)?;
        self.emit_artifacts(kit, config)
    }
    fn describe(&self, kit: &KitInfo, config: &(dyn Any + Send + Sync), output: &Path) -> Result<Outcome> {
        let config = typed::<T::Config>(RuntimeTarget::name(self), config)?;
        Ok(RuntimeTarget::describe(self, kit, config, output))
    }
    fn runtime_names(&self, kit: &KitInfo, config: &(dyn Any + Send + Sync)) -> Result<Vec<RuntimeName>> {
        let config = typed::<T::Config>(RuntimeTarget::name(self), config)?;
        Ok(RuntimeTarget::runtime_names(self, kit, config))
    }
}

/// One linked target. Submit it with [`register_target!`](crate::register_target).
pub struct Registration {
    pub target: &'static dyn DynTarget,
    /// The crate that registered the target.
    pub crate_name: &'static str,
}

impl Registration {
    pub const fn new<T: RuntimeTarget>(target: &'static T, crate_name: &'static str) -> Self {
        Registration { target, crate_name }
    }
}

inventory::collect!(Registration);

/// Registers a [`RuntimeTarget`] value with the engine:
/// `flare_deploy_core::register_target!(MyTarget);`. A binary has the target when it
/// links the crate (name it with `use my_target as _;`).
#[macro_export]
macro_rules! register_target {
    ($target:expr) => {
        $crate::inventory::submit! {
            $crate::Registration::new(&$target, env!("CARGO_PKG_NAME"))
        }
    };
}
