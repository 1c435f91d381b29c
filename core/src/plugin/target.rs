//! An executable plugin seen through the engine's target interface.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};

use super::actions;
use super::confine::{self, Enforcement, Sandbox};
use super::session::Session;
use super::watch::{Findings, Guard};
use crate::action::{ActionContext, ActionSpec};
use crate::config::{yaml_to_json, RuntimeConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::kit::KitInfo;
use crate::release::NvflareRelease;
use crate::report::Outcome;
use crate::staged::StagedKit;
use crate::target::{DynTarget, LauncherClass};

/// What `describe` said (or why it failed).
struct Description {
    summary: String,
    /// The schema `targets show` prints: the declared one plus the engine's keys.
    schema: Result<Value>,
    /// The `config_schema` as the plugin declared it, checked before `validate`.
    declared_schema: Option<Value>,
    /// The actions of a plugin speaking protocol version 2 or later (none for version 1).
    actions: Result<Vec<ActionSpec>>,
    /// `nvflare_releases` of the answer; all when the plugin does not say.
    releases: Vec<NvflareRelease>,
}

pub struct ExecutableTarget {
    name: String,
    path: PathBuf,
    description: OnceLock<Description>,
}

/// The per-prepare state: the config and, after prepare, the result.
struct PluginRun {
    config: Value,
    outcome: Mutex<Option<Outcome>>,
}

impl ExecutableTarget {
    pub fn new(name: &str, path: PathBuf) -> Self {
        ExecutableTarget {
            name: name.to_string(),
            path,
            description: OnceLock::new(),
        }
    }

    /// A conversation with the plugin, which may write below `writable` (and its own
    /// temporary directory) only.
    fn start(&self, cwd: Option<&Path>, writable: &[PathBuf]) -> Result<Session> {
        let sandbox = Sandbox::new(writable)?;
        Session::start(&self.path, &self.name, cwd, super::request_timeout(), sandbox)
    }

    fn description(&self) -> &Description {
        self.description.get_or_init(|| {
            let described = self.start(None, &[]).and_then(|mut session| {
                let answer = session.call("describe", json!({}))?;
                let version = session.version();
                session.finish()?;
                Ok((answer, version))
            });
            match described {
                Ok((answer, version)) => Description {
                    actions: actions::parse_specs(&self.path, version, &answer),
                    summary: answer
                        .get("summary")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    schema: Ok(crate::release::with_release_key(
                        answer.get("config_schema").cloned().unwrap_or(json!({})),
                    )),
                    declared_schema: answer.get("config_schema").filter(|s| !s.is_null()).cloned(),
                    releases: match answer.get("nvflare_releases").and_then(Value::as_array) {
                        Some(names) => names
                            .iter()
                            .filter_map(Value::as_str)
                            .filter_map(NvflareRelease::parse)
                            .collect(),
                        None => NvflareRelease::ALL.to_vec(),
                    },
                },
                Err(err) => Description {
                    actions: Err(err.clone()),
                    summary: format!("(unavailable: {})", err.message),
                    schema: Err(err),
                    declared_schema: None,
                    releases: NvflareRelease::ALL.to_vec(),
                },
            }
        })
    }
}

fn run_state(config: &(dyn Any + Send + Sync)) -> Result<&PluginRun> {
    config
        .downcast_ref::<PluginRun>()
        .ok_or_else(|| Error::internal("plugin target was given a config it did not produce"))
}

fn kit_json(kit: &KitInfo, input_dir: &Path) -> Value {
    json!({
        "role": kit.role.as_str(),
        "name": kit.name,
        "org": kit.org,
        "fed_learn_port": kit.fed_learn_port,
        "admin_port": kit.admin_port,
        "input_dir": input_dir.to_string_lossy(),
    })
}

impl ExecutableTarget {
    /// What the after-the-fact check found, said plainly.
    fn wrote_outside(&self, findings: &Findings, input: &Path, output: &Path) -> Error {
        let list = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut what = Vec::new();
        if !findings.input_kit.is_empty() {
            let undone = match &findings.restored {
                Ok(()) => "; every change was undone from a copy taken before the plugin ran".to_string(),
                Err(e) => format!("; it could NOT be restored ({e}): restore the kit from its provisioning"),
            };
            what.push(format!(
                "it modified the input kit {} ({}){undone}",
                input.display(),
                list(&findings.input_kit)
            ));
        }
        if !findings.previous_output.is_empty() {
            what.push(format!(
                "it modified the previous output {} ({}), which was not replaced",
                output.display(),
                list(&findings.previous_output)
            ));
        }
        Error::new(
            ErrorCode::PluginWroteOutside,
            format!(
                "Plugin {} wrote outside its staging directory: {}",
                self.path.display(),
                what.join("; ")
            ),
            "A plugin may only change files below the staging_dir it is given; fix the plugin. (This system cannot confine plugins, so flare-deploy checks afterwards.)",
        )
    }
}

impl DynTarget for ExecutableTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn summary(&self) -> &str {
        &self.description().summary
    }

    fn launcher(&self) -> Option<LauncherClass> {
        None
    }

    fn config_schema(&self) -> Result<Value> {
        self.description().schema.clone()
    }

    fn releases(&self) -> Vec<NvflareRelease> {
        self.description().releases.clone()
    }

    fn actions(&self) -> Result<Vec<ActionSpec>> {
        self.description().actions.clone()
    }

    /// A conversation of its own, in the prepared output: an action that writes the kit
    /// may write below it (and `$TMPDIR`), any other action nowhere.
    fn run_action(&self, context: &mut ActionContext<'_>) -> Result<Outcome> {
        let kit = context.kit.to_path_buf();
        let writable = match context.spec.writes_kit {
            true => vec![kit.clone()],
            false => Vec::new(),
        };
        let mut session = self.start(Some(&kit), &writable)?;
        let outcome = actions::call(&mut session, &self.path, context)?;
        session.finish()?;
        Ok(outcome)
    }

    fn validate_config(&self, config: &RuntimeConfig) -> Result<Box<dyn Any + Send + Sync>> {
        let config_json = yaml_to_json(&serde_yaml::Value::Mapping(config.root.clone()), "config")?;
        // The declared schema first: the plugin sees only configs of the shape it declared.
        let description = self.description();
        if let Err(err) = &description.schema {
            return Err(err.clone());
        }
        if let Some(validator) = super::schema::compile(&self.path, description.declared_schema.as_ref())? {
            super::schema::check(&validator, &self.name, &config_json)?;
        }
        let mut session = self.start(None, &[])?;
        let answer = session.call(
            "validate",
            json!({"config": config_json, "nvflare_release": config.release.as_str()}),
        )?;
        let errors = answer
            .get("errors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(first) = errors.first() {
            let text = |k: &str| first.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let (path, message) = (text("path"), text("message"));
            let message = if path.is_empty() || message.starts_with(&path) {
                message
            } else {
                format!("{path}: {message}")
            };
            let hint = match text("hint") {
                h if h.is_empty() => "Fix the runtime config.".to_string(),
                h => h,
            };
            return Err(Error::invalid_config(message, hint));
        }
        session.finish()?;
        Ok(Box::new(PluginRun {
            config: config_json,
            outcome: Mutex::new(None),
        }))
    }

    fn prepare_staged(&self, kit: &mut StagedKit<'_>, config: &(dyn Any + Send + Sync)) -> Result<()> {
        let run = run_state(config)?;
        let staging = kit.root().to_path_buf();
        let input = kit.input_kit.clone();
        let output = kit.final_output.clone();
        // Where the kernel cannot confine the plugin, watch (and copy) what it must not touch.
        let guard = (!confine::fully_confined()).then(|| Guard::take(&input, &output));
        // A second conversation, started in the staging directory.
        let answer = self
            .start(Some(&staging), std::slice::from_ref(&staging))
            .and_then(|mut session| {
                if guard.is_none() && *session.enforcement() != Enforcement::Full {
                    tracing::warn!("the plugin could not be confined although the probe said it would be");
                }
                let version = session.version();
                let answer = session.call(
                    "prepare",
                    json!({
                        "kit": kit_json(&kit.info, &input),
                        "config": run.config,
                        "staging_dir": staging.to_string_lossy(),
                        "output": output.to_string_lossy(),
                        "nvflare_release": kit.release.as_str(),
                    }),
                )?;
                session.finish()?;
                Ok((answer, version))
            });
        // Checked whatever the plugin answered: a failing plugin may have written too.
        if let Some(findings) = guard.map(|g| g.check_and_restore()) {
            if !findings.is_clean() {
                return Err(self.wrote_outside(&findings, &input, &output));
            }
        }
        let (answer, version) = answer?;
        for warning in answer.get("warnings").and_then(Value::as_array).into_iter().flatten() {
            if let Some(text) = warning.as_str() {
                kit.warn(text);
            }
        }
        // The plugin may have rewritten resources.json.default itself.
        kit.reload_resources()?;
        super::edits::apply(kit, answer.get("edits").unwrap_or(&Value::Null), version)?;
        let fields = super::result_fields(&self.path, "prepare", &answer)?;
        if let Ok(mut slot) = run.outcome.lock() {
            *slot = Some(Outcome { fields });
        }
        Ok(())
    }

    fn describe(&self, kit: &KitInfo, config: &(dyn Any + Send + Sync), output: &Path) -> Result<Outcome> {
        let run = run_state(config)?;
        let stored = run.outcome.lock().ok().and_then(|mut o| o.take()).unwrap_or_default();
        // The engine's own fields first, then what the plugin reports.
        let mut outcome = Outcome::new()
            .field("runtime", self.name.as_str())
            .field("role", kit.role.as_str())
            .field("name", kit.name.as_str())
            .field("output", output.to_string_lossy().into_owned());
        for (k, v) in stored.fields {
            outcome.fields.entry(k).or_insert(v);
        }
        Ok(outcome)
    }
}
