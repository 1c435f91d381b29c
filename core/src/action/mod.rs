//! Target actions: verbs a runtime adds beside `prepare`, run on a prepared output as
//! `flare-deploy <runtime> <action> [KIT] [options]` (Kubernetes: `stage`, `unstage`).
//!
//! A target declares each action as data ([`ActionSpec`]: name, summary, options); the
//! command line builds its parser and help from that, and [`run`] resolves the kit,
//! takes the output's lock when the action writes into it, calls the target and keeps
//! the output's receipt current. Executable plugins declare and run actions through the
//! plugin protocol (version 2), so the registry, not the command line, is where a verb
//! is found.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, Result};
use crate::lock::OutputLock;
use crate::paths::resolve_user_path;
use crate::receipt::{describe_tree, Receipt};
use crate::registry::Entry;
use crate::report::Outcome;

mod spec;

pub use spec::{ActionOption, ActionSpec};

/// Option names every action has (the kit, the schema switch and the global options);
/// an action cannot declare them.
pub const RESERVED_OPTIONS: [&str; 6] = ["kit", "schema", "format", "verbose", "help", "version"];

/// The options given on the command line: a string for each value option given, `true`
/// for each switch given. Key order is the command line's declaration order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionOptions(pub Map<String, Value>);

impl ActionOptions {
    /// The value of `--<name>`, when given (possibly empty).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// The value of `--<name>` when given and not empty: the reference treats
    /// `--namespace ""` as not given.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.value(name).filter(|v| !v.is_empty())
    }

    pub fn switch(&self, name: &str) -> bool {
        self.0.get(name).and_then(Value::as_bool).unwrap_or(false)
    }
}

/// What the command line read for one action.
#[derive(Debug, Clone, Default)]
pub struct ActionRequest {
    /// The positional `KIT`.
    pub kit: Option<String>,
    /// `--kit`.
    pub kit_flag: Option<String>,
    pub options: ActionOptions,
}

/// What an action works with: the resolved prepared output, the options, and a place
/// for warnings (printed before the result, also when the action fails afterwards).
pub struct ActionContext<'a> {
    /// The runtime name (not an alias): `k8s`.
    pub runtime: &'a str,
    pub spec: &'a ActionSpec,
    /// The prepared output, resolved like every path argument (`~`, symlinks).
    pub kit: &'a Path,
    pub options: &'a ActionOptions,
    pub warnings: &'a mut Vec<String>,
}

impl ActionContext<'_> {
    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    /// `flare-deploy <runtime> <action>`, for hints.
    pub fn command(&self) -> String {
        format!("flare-deploy {} {}", self.runtime, self.spec.name)
    }
}

/// The error of a target asked for an action it does not declare (the command line
/// only offers declared ones, so this is a bug of the target).
pub fn undeclared(runtime: &str, action: &str) -> Error {
    Error::internal(format!("runtime '{runtime}' has no action '{action}'"))
}

/// The prepared output named by `KIT` or `--kit` (exactly one), resolved.
fn resolve_kit(runtime: &str, spec: &ActionSpec, request: &ActionRequest) -> Result<PathBuf> {
    let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let (positional, flag) = (non_empty(&request.kit), non_empty(&request.kit_flag));
    if positional.is_some() && flag.is_some() {
        return Err(Error::invalid_args(
            "Specify the prepared startup kit only once.",
            "Use either positional kit or --kit.",
        ));
    }
    let Some(raw) = positional.or(flag) else {
        return Err(Error::invalid_args(
            "Missing prepared startup kit directory.",
            format!("Run flare-deploy {runtime} {} <prepared-kit-dir>.", spec.name),
        ));
    };
    let kit = resolve_user_path(&raw).map_err(|e| {
        Error::invalid_args(
            format!("Cannot resolve kit path: {raw}"),
            format!("Check the path: {e}"),
        )
    })?;
    if !kit.is_dir() {
        return Err(Error::invalid_kit(
            format!("Prepared kit directory does not exist: {}", kit.display()),
            "Provide an existing prepared kit (an output of flare-deploy prepare).",
        ));
    }
    Ok(kit)
}

/// Runs `spec` of the target in `entry` on the kit of `request`. Warnings are appended
/// to `warnings` as they arise, also when the action fails afterwards.
pub fn run(entry: &Entry, spec: &ActionSpec, request: &ActionRequest, warnings: &mut Vec<String>) -> Result<Outcome> {
    let runtime = entry.target.name().to_string();
    let kit = resolve_kit(&runtime, spec, request)?;
    tracing::debug!(runtime = %runtime, action = %spec.name, kit = %kit.display(), "running action");
    // One writer per output: a prepare replacing this output, or a second action, waits.
    let lock = match spec.writes_kit {
        true => Some(OutputLock::acquire(&kit)?),
        false => None,
    };
    // What the output holds before, so that the receipt records the action's changes only.
    let before = match spec.writes_kit && Receipt::read(&kit).is_some() {
        true => describe_tree(&kit).ok(),
        false => None,
    };
    let mut context = ActionContext {
        runtime: &runtime,
        spec,
        kit: &kit,
        options: &request.options,
        warnings,
    };
    let outcome = entry.target.run_action(&mut context);
    if let Some(before) = before {
        // Also after a failure: an action may have changed files before it failed.
        if let Err(err) = Receipt::record_changes(&kit, &before) {
            warnings.push(format!(
                "Could not update the receipt of {}: {}",
                kit.display(),
                err.message
            ));
        }
    }
    drop(lock);
    outcome
}

/// The spec named `name` among `specs`.
pub fn find<'a>(specs: &'a [ActionSpec], name: &str) -> Option<&'a ActionSpec> {
    specs.iter().find(|s| s.name == name)
}

/// The error for a plugin's action list that the command line could not offer.
pub fn bad_spec(plugin: &Path, what: &str) -> Error {
    Error::new(
        ErrorCode::PluginProtocol,
        format!("Plugin {}: {what}", plugin.display()),
        "Fix the plugin's 'describe' answer (docs/plugin-protocol.md#actions).",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> ActionSpec {
        ActionSpec::new("stage", "Stage it.", "Stage the kit.")
            .option(ActionOption::value("namespace", "NS", "The namespace.").with_choices(&[]))
            .option(ActionOption::value("kubectl", "CMD", "The CLI.").with_choices(&["kubectl", "oc"]))
            .option(ActionOption::switch("dry-run", "Only print."))
            .examples(&["flare-deploy k8s stage ./site-1"])
    }

    #[test]
    fn schema_lists_kit_options_and_schema_in_order() {
        let schema = spec().schema("k8s");
        assert_eq!(schema["command"], "flare-deploy k8s stage");
        let names: Vec<&str> = schema["args"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            names,
            ["kit", "--kit", "--namespace", "--kubectl", "--dry-run", "--schema"]
        );
        assert_eq!(schema["args"][3]["choices"], json!(["kubectl", "oc"]));
        assert!(schema["args"][2].get("choices").is_none());
        assert_eq!(schema["args"][4]["type"], "boolean");
    }

    #[test]
    fn specs_the_command_line_cannot_offer_are_refused() {
        assert!(spec().check().is_ok());
        assert!(ActionSpec::new("Stage", "", "").check().is_err());
        assert!(ActionSpec::new("stage-", "", "").check().is_err());
        let reserved = ActionSpec::new("x", "", "").option(ActionOption::switch("kit", ""));
        assert!(reserved.check().is_err());
        let twice = ActionSpec::new("x", "", "")
            .option(ActionOption::switch("a", ""))
            .option(ActionOption::switch("a", ""));
        assert!(twice.check().is_err());
    }

    #[test]
    fn empty_values_count_as_not_given() {
        let mut options = ActionOptions::default();
        options.0.insert("namespace".into(), "".into());
        options.0.insert("force".into(), true.into());
        assert_eq!(options.value("namespace"), Some(""));
        assert_eq!(options.non_empty("namespace"), None);
        assert!(options.switch("force"));
        assert!(!options.switch("other"));
    }
}
