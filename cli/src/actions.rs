//! `flare-deploy <runtime> <action> [KIT] [options]`: the parser and help of each action
//! are built from the target's [`ActionSpec`]s, so the command line knows no runtime.

use std::ffi::OsString;

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Arg, ArgAction, ArgMatches, Command};
use flare_deploy_core::action::{self, ActionOptions, ActionRequest, ActionSpec};
use flare_deploy_core::registry::Entry;
use flare_deploy_core::report::Printed;
use flare_deploy_core::{Format, Registry};

use crate::print;
use crate::usage;

const EXIT_CODES: &str = "Exit codes: 0 success, 4 invalid input (arguments, kit, failing command), 5 internal error.";

/// Arg id of an action's option (kept apart from the fixed ids below).
fn option_id(name: &str) -> String {
    format!("option:{name}")
}

fn option_help(option: &action::ActionOption) -> String {
    match option.choices.is_empty() {
        true => option.help.clone(),
        false => format!("{} [choices: {}]", option.help, option.choices.join(", ")),
    }
}

/// The parser (and help) of one action.
fn action_command(runtime: &str, spec: &ActionSpec) -> Command {
    let mut after_help = String::new();
    if !spec.examples.is_empty() {
        after_help.push_str("Examples:\n");
        for example in &spec.examples {
            after_help.push_str(&format!("  {example}\n"));
        }
        after_help.push('\n');
    }
    after_help.push_str(EXIT_CODES);
    let mut command = Command::new(spec.name.clone())
        .about(spec.summary.clone())
        .long_about(spec.description.clone())
        .after_help(after_help)
        .bin_name(format!("flare-deploy {runtime} {}", spec.name))
        .arg(Arg::new("kit").value_name("KIT").help(spec.kit_help.clone()))
        .arg(Arg::new("kit_flag").long("kit").value_name("KIT").help(format!(
            "{} (instead of the positional KIT)",
            spec.kit_help.trim_end_matches('.')
        )));
    for option in &spec.options {
        let arg = Arg::new(option_id(&option.name))
            .long(option.name.clone())
            .help(option_help(option));
        command = command.arg(match &option.value_name {
            Some(value_name) => arg.value_name(value_name.clone()).action(ArgAction::Set),
            None => arg.action(ArgAction::SetTrue),
        });
    }
    command
        .arg(
            Arg::new("schema")
                .long("schema")
                .action(ArgAction::SetTrue)
                .help("Print the command's argument schema as JSON and exit."),
        )
        .arg(
            Arg::new("format")
                .long("format")
                .value_name("FORMAT")
                .value_parser(PossibleValuesParser::new([
                    PossibleValue::new("txt").alias("human"),
                    PossibleValue::new("json"),
                ]))
                .help("Output format of results and errors."),
        )
        .arg(
            Arg::new("verbose")
                .short('v')
                .long("verbose")
                .action(ArgAction::SetTrue)
                .help("Print debug logs on stderr."),
        )
}

/// The parser of `flare-deploy <runtime> ...`: one subcommand per action.
fn runtime_command(runtime: &str, specs: &[ActionSpec]) -> Command {
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let action = match names.is_empty() {
        true => "ACTION".to_string(),
        false => names.join("|"),
    };
    let mut command = Command::new(runtime.to_string())
        .bin_name(format!("flare-deploy {runtime}"))
        .about(format!("Actions of the {runtime} runtime on a prepared output"))
        .after_help(format!(
            "Run `flare-deploy {runtime} <action> --help` for an action's options. {EXIT_CODES}"
        ))
        .disable_help_subcommand(true)
        .override_usage(format!("flare-deploy {runtime} <{action}> [KIT] [OPTIONS]"));
    for spec in specs {
        command = command.subcommand(action_command(runtime, spec));
    }
    command
}

fn request(spec: &ActionSpec, matches: &ArgMatches) -> ActionRequest {
    let mut options = ActionOptions::default();
    for option in &spec.options {
        let id = option_id(&option.name);
        if option.is_switch() {
            if matches.get_flag(&id) {
                options.0.insert(option.name.clone(), true.into());
            }
        } else if let Some(value) = matches.get_one::<String>(&id) {
            options.0.insert(option.name.clone(), value.clone().into());
        }
    }
    ActionRequest {
        kit: matches.get_one::<String>("kit").cloned(),
        kit_flag: matches.get_one::<String>("kit_flag").cloned(),
        options,
    }
}

/// The first word after the runtime that is not an option (or `--format`'s value).
fn action_word(words: &[String]) -> Option<&str> {
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        if word == "--format" {
            iter.next();
        } else if !word.starts_with('-') {
            return Some(word);
        }
    }
    None
}

/// Runs `words` (`<runtime> [action] [args...]`) and returns the exit code.
pub fn dispatch(registry: &Registry, words: Vec<OsString>, format: Format) -> i32 {
    let words: Vec<String> = words.iter().map(|w| w.to_string_lossy().into_owned()).collect();
    let Some((word, rest)) = words.split_first() else {
        return usage::missing_subcommand(format);
    };
    let Some(entry) = registry.find_command(word) else {
        let top = crate::args::cli_command().render_usage().to_string();
        return usage::usage_error(
            &format!("unrecognized subcommand '{word}'"),
            top.trim_start_matches("Usage:").trim(),
            format,
        );
    };
    let specs = match entry.target.actions() {
        Ok(specs) => specs,
        Err(err) => return print::error(&err, format, &[]),
    };
    let runtime = entry.target.name().to_string();
    // `--schema` prints the action's schema whatever else the line holds, like prepare's.
    if rest.iter().any(|w| w == "--schema") {
        if let Some(spec) = action_word(rest).and_then(|name| action::find(&specs, name)) {
            let text = serde_json::to_string_pretty(&spec.schema(&runtime)).unwrap_or_default();
            print::emit(&Printed {
                stdout: text + "\n",
                stderr: String::new(),
            });
            return 0;
        }
    }
    let asks_help = rest.iter().any(|w| w == "-h" || w == "--help");
    if specs.is_empty() && !asks_help {
        let usage = format!("flare-deploy {runtime} <ACTION> [KIT] [OPTIONS]");
        return usage::usage_error(&format!("runtime '{runtime}' has no actions"), &usage, format);
    }
    let mut command = runtime_command(&runtime, &specs);
    let usage = command.render_usage().to_string();
    let usage = usage.trim_start_matches("Usage:").trim().to_string();
    let argv = std::iter::once(format!("flare-deploy {runtime}")).chain(rest.iter().cloned());
    let matches = match command.try_get_matches_from_mut(argv) {
        Ok(matches) => matches,
        Err(err) => return usage::clap_error(err, || usage.clone(), format),
    };
    let Some((name, matches)) = matches.subcommand() else {
        return usage::usage_error(&format!("{runtime} action required"), &usage, format);
    };
    let Some(spec) = action::find(&specs, name) else {
        return usage::usage_error(&format!("unrecognized action '{name}'"), &usage, format);
    };
    if matches.get_flag("verbose") {
        crate::init_logging(true);
    }
    run(&entry, spec, &request(spec, matches), format)
}

fn run(entry: &Entry, spec: &ActionSpec, request: &ActionRequest, format: Format) -> i32 {
    let mut warnings = Vec::new();
    match action::run(entry, spec, request, &mut warnings) {
        Ok(outcome) => print::ok(&outcome.fields, format, &warnings),
        Err(err) => print::error(&err, format, &warnings),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_is_the_first_word_that_is_not_an_option() {
        let words = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            action_word(&words(&["--format", "json", "stage", "kit"])),
            Some("stage")
        );
        assert_eq!(action_word(&words(&["-v", "unstage"])), Some("unstage"));
        assert_eq!(action_word(&words(&["--schema"])), None);
    }
}
