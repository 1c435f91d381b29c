//! Argument errors: exit 4 with `INVALID_ARGS`, like the reference's usage errors.

use std::ffi::OsString;

use clap::error::ErrorKind;
use flare_deploy_core::json;
use flare_deploy_core::report::Printed;
use flare_deploy_core::Format;
use serde_json::json;

use crate::args::cli_command;
use crate::print::emit;

/// The format asked for on the command line, known before parsing so that even parse
/// errors come out in it.
pub fn format_from_argv(argv: &[OsString]) -> Format {
    let mut format = Format::Txt;
    let mut iter = argv.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = iter.next() {
        let value = match arg.strip_prefix("--format") {
            Some("") => iter.next().map(|v| v.into_owned()),
            Some(rest) => rest.strip_prefix('=').map(str::to_string),
            None => None,
        };
        match value.as_deref() {
            Some("json") => format = Format::Json,
            Some(_) => format = Format::Txt,
            None => {}
        }
    }
    format
}

/// `prepare ... --schema` anywhere on the line skips normal parsing, like the reference.
pub fn is_prepare_schema_request(argv: &[OsString]) -> bool {
    command_word(argv).is_some_and(|c| c == "prepare") && argv.iter().skip(1).any(|a| a == "--schema")
}

/// The command named on the line: its first word that is neither an option nor
/// `--format`'s value.
fn command_word(argv: &[OsString]) -> Option<String> {
    let mut words = argv.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(word) = words.next() {
        if word == "--format" {
            words.next();
        } else if !word.starts_with('-') {
            return Some(word.into_owned());
        }
    }
    None
}

/// A clap parse error as `INVALID_ARGS`; `fallback_usage` gives the usage line when
/// clap's message has none (an invalid value).
pub fn clap_error(err: clap::Error, fallback_usage: impl FnOnce() -> String, format: Format) -> i32 {
    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = err.print();
        return 0;
    }
    let rendered = err.render().to_string();
    // The first paragraph of clap's message (some span several lines), on one line.
    let detail = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string();
    // Some errors (an invalid value) carry no usage line: use the command's own.
    let usage = rendered
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .map(|l| l.trim_start_matches("Usage:").trim().to_string())
        .unwrap_or_else(fallback_usage);
    usage_error(&detail, &usage, format)
}

/// The usage of the command named on the line, or of flare-deploy itself.
pub fn command_usage(argv: &[OsString]) -> String {
    let mut command = cli_command();
    command.build();
    let name = command_word(argv);
    let usage = match name.as_deref().and_then(|n| command.find_subcommand_mut(n)) {
        Some(sub) => sub.render_usage(),
        None => command.render_usage(),
    };
    usage.to_string().trim_start_matches("Usage:").trim().to_string()
}

pub fn missing_subcommand(format: Format) -> i32 {
    let usage = cli_command().render_usage().to_string();
    let usage = usage.trim_start_matches("Usage:").trim().to_string();
    usage_error("subcommand required", &usage, format)
}

pub fn usage_error(detail: &str, usage: &str, format: Format) -> i32 {
    let message = format!("Invalid arguments. \u{2014} {detail}");
    let printed = match format {
        Format::Txt => Printed {
            stdout: String::new(),
            stderr: format!("Usage: {usage}\n\n{message}\nHint: Run with -h for usage.\nCode: INVALID_ARGS (exit 4)\n"),
        },
        Format::Json => {
            let payload = json!({
                "schema_version": "1",
                "event": "terminal",
                "terminal": true,
                "status": "error",
                "exit_code": 4,
                "error_code": "INVALID_ARGS",
                "message": message,
                "hint": "Run with --help to see usage.",
                "data": {"usage": usage},
            });
            Printed {
                stdout: format!("{}\n", json::to_line(&payload)),
                stderr: String::new(),
            }
        }
    };
    emit(&printed);
    4
}
