//! Actions of executable plugins (protocol version 2): the specs a plugin lists in its
//! `describe` answer, and the `action` request that runs one.

use std::path::Path;

use serde_json::{json, Value};

use super::session::Session;
use crate::action::{bad_spec, ActionContext, ActionOption, ActionSpec};
use crate::error::Result;
use crate::report::Outcome;

/// The first protocol version with actions.
pub const ACTIONS_SINCE: u64 = 2;

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn option(plugin: &Path, action: &str, value: &Value) -> Result<ActionOption> {
    let name =
        text(value, "name").ok_or_else(|| bad_spec(plugin, &format!("an option of action '{action}' has no name")))?;
    // `value_name` makes a value option; without one (or with `"switch": true`) it is a switch.
    let switch = value.get("switch").and_then(Value::as_bool).unwrap_or(false);
    let value_name = match switch {
        true => None,
        false => Some(text(value, "value_name").unwrap_or_else(|| name.to_ascii_uppercase().replace('-', "_"))),
    };
    Ok(ActionOption {
        help: text(value, "help").unwrap_or_default(),
        value_name,
        choices: strings(value, "choices"),
        name,
    })
}

/// The actions of a `describe` answer; none for a plugin that speaks version 1.
pub fn parse_specs(plugin: &Path, version: u64, answer: &Value) -> Result<Vec<ActionSpec>> {
    if version < ACTIONS_SINCE {
        return Ok(Vec::new());
    }
    let list = match answer.get("actions") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(bad_spec(plugin, "'actions' of 'describe' must be a list")),
    };
    let mut specs: Vec<ActionSpec> = Vec::new();
    for item in list {
        let name = text(item, "name").ok_or_else(|| bad_spec(plugin, "an action has no name"))?;
        let summary = text(item, "summary").unwrap_or_default();
        let mut spec = ActionSpec::new(&name, &summary, &text(item, "description").unwrap_or(summary.clone()));
        if let Some(help) = text(item, "kit_help") {
            spec.kit_help = help;
        }
        for value in item.get("options").and_then(Value::as_array).into_iter().flatten() {
            spec.options.push(option(plugin, &name, value)?);
        }
        spec.examples = strings(item, "examples");
        spec.writes_kit = item.get("writes_kit").and_then(Value::as_bool).unwrap_or(false);
        spec.check().map_err(|what| bad_spec(plugin, &what))?;
        if specs.iter().any(|s| s.name == name) {
            return Err(bad_spec(plugin, &format!("action '{name}' is listed twice")));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// Sends the `action` request on a started session and turns the answer into the
/// outcome; the plugin's warnings go to `context`.
pub fn call(session: &mut Session, plugin: &Path, context: &mut ActionContext<'_>) -> Result<Outcome> {
    if session.version() < ACTIONS_SINCE {
        return Err(session.protocol_error(format_args!(
            "speaks protocol version {}, which has no actions (they need version {ACTIONS_SINCE})",
            session.version()
        )));
    }
    let answer = session.call(
        "action",
        json!({
            "action": context.spec.name,
            "kit": context.kit.to_string_lossy(),
            "options": Value::Object(context.options.0.clone()),
        }),
    )?;
    for warning in answer.get("warnings").and_then(Value::as_array).into_iter().flatten() {
        if let Some(text) = warning.as_str() {
            context.warn(text);
        }
    }
    let fields = super::result_fields(plugin, "action", &answer)?;
    Ok(Outcome { fields })
}
