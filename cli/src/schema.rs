//! `--schema`: machine-readable descriptions of the command line. `prepare --schema` keeps
//! the reference's entries word for word and adds flare-deploy's own options from the
//! clap definition; `flare-deploy --schema` lists the commands.

use clap::{Arg, ArgAction, Command};
use flare_deploy_core::NvflareRelease;
use serde_json::{json, Value};

use crate::args::{cli_command, PREPARE_EXAMPLES};

/// The reference's entries, then every other option `prepare` accepts (global ones too).
pub fn prepare_schema() -> Value {
    let kit_help = "Existing input startup kit directory.";
    let mut args = vec![
        json!({"name": "kit", "type": "string", "required": false, "description": kit_help, "default": null, "nargs": "?"}),
        json!({"name": "--kit", "type": "string", "required": false, "description": kit_help, "default": null}),
        json!({"name": "--output", "type": "path", "required": false,
         "description": "Directory to write the prepared startup kit copy. Defaults to <kit>/prepared/<runtime>.",
         "default": null}),
        json!({"name": "--config", "type": "string", "required": false,
         "description": "YAML runtime config file with a top-level runtime: key. Defaults to <kit>/config.yaml.",
         "default": null}),
        json!({"name": "--nvflare-version", "type": "string", "required": false,
         "description": "NVFlare release the site runs: 2.8 or 2.9 (a full version such as 2.9.0 selects its minor release). Wins over the config's nvflare_version; default 2.9.",
         "default": null, "choices": NvflareRelease::ALL.map(NvflareRelease::as_str)}),
        json!({"name": "--schema", "type": "boolean", "required": false,
         "description": "print command schema as JSON and exit", "default": false}),
    ];
    let listed: Vec<String> = args
        .iter()
        .filter_map(|a| a["name"].as_str().map(str::to_string))
        .collect();
    let command = built_command();
    if let Some(prepare) = command.find_subcommand("prepare") {
        for arg in prepare.get_arguments().filter(|a| !is_help(a)) {
            let entry = arg_entry(arg);
            if !entry["name"].as_str().is_some_and(|n| listed.iter().any(|l| l == n)) {
                args.push(entry);
            }
        }
    }
    json!({
        "schema_version": "1",
        "command": "flare-deploy prepare",
        "description": "Prepare an existing server/client startup kit for a deployment runtime.",
        "args": args,
        "examples": PREPARE_EXAMPLES,
    })
}

/// `flare-deploy --schema`: the global options and each command with its arguments.
pub fn commands_schema() -> Value {
    let command = built_command();
    let options: Vec<Value> = command.get_arguments().filter(|a| !is_help(a)).map(arg_entry).collect();
    let mut commands: Vec<Value> = command
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|sub| {
            let mut entry = json!({
                "name": sub.get_name(),
                "description": sub.get_about().map(|a| a.to_string()),
                "args": sub.get_arguments().filter(|a| !is_help(a) && !a.is_global_set()).map(arg_entry).collect::<Vec<_>>(),
            });
            let nested: Vec<Value> = sub
                .get_subcommands()
                .map(|n| json!({"name": n.get_name(), "description": n.get_about().map(|a| a.to_string())}))
                .collect();
            if !nested.is_empty() {
                entry["commands"] = Value::Array(nested);
            }
            if sub.get_name() == "prepare" {
                entry["schema"] = json!("flare-deploy prepare --schema");
            }
            entry
        })
        .collect();
    commands.push(json!({
        "name": "<runtime> <action>",
        "description": "An action of a runtime target on a prepared output (e.g. `k8s stage`); `flare-deploy targets` lists them.",
        "args": [],
    }));
    json!({
        "schema_version": "1",
        "command": "flare-deploy",
        "version": command.get_version(),
        "description": command.get_about().map(|a| a.to_string()),
        "options": options,
        "commands": commands,
    })
}

/// The command with globals propagated to subcommands (what `build` does at parse time).
fn built_command() -> Command {
    let mut command = cli_command();
    command.build();
    command
}

fn is_help(arg: &Arg) -> bool {
    matches!(
        arg.get_action(),
        ArgAction::Help | ArgAction::HelpLong | ArgAction::Version
    )
}

/// One argument in the reference's entry shape: name, type, required, description, default
/// (and choices for a fixed set of values).
fn arg_entry(arg: &Arg) -> Value {
    let name = match arg.get_long() {
        Some(long) => format!("--{long}"),
        None => arg.get_id().to_string(),
    };
    let is_flag = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
    let value_type = if is_flag {
        "boolean"
    } else if arg.get_value_names().is_some_and(|n| n.iter().any(|n| *n == "N")) {
        "integer"
    } else if arg
        .get_value_names()
        .is_some_and(|n| n.iter().any(|n| *n == "DIR" || *n == "ROOT"))
    {
        "path"
    } else {
        "string"
    };
    let default = match arg.get_default_values().first() {
        Some(v) => json!(v.to_string_lossy()),
        None if is_flag => json!(false),
        None => Value::Null,
    };
    let mut entry = json!({
        "name": name,
        "type": value_type,
        "required": arg.is_required_set(),
        "description": arg.get_help().map(|h| h.to_string()),
        "default": default,
    });
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    if !choices.is_empty() && !is_flag {
        entry["choices"] = json!(choices);
    }
    entry
}
