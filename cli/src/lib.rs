//! The `flare-deploy` command line. It parses arguments, calls the engine and prints;
//! the work happens in `flare-deploy-core` and the target crates.
//!
//! A binary with an extra runtime target links the target's crate and calls [`run`]:
//! ```text
//! use my_target as _;
//! fn main() { std::process::exit(flare_deploy::run()) }
//! ```

mod actions;
mod args;
mod extras;
mod plan;
mod print;
mod progress;
mod schema;
mod usage;
mod verify;

use std::ffi::OsString;

use flare_deploy_core::{Error, Format, PrepareRequest, Registry};
// Built-in targets: a crate nothing names is not linked, and its registration with it.
use flare_deploy_docker as _;
use flare_deploy_k8s as _;
use flare_deploy_slurm as _;

use args::{Cli, Command, OutputFormat, TargetsCommand};

/// Crates of the targets that ship with flare-deploy; other linked crates are listed
/// with their crate name.
pub const BUILTIN_TARGET_CRATES: [&str; 3] = ["flare-deploy-docker", "flare-deploy-k8s", "flare-deploy-slurm"];

/// Runs the command line with the process arguments and returns the exit code.
pub fn run() -> i32 {
    run_with(std::env::args_os().collect())
}

/// Runs the command line with `argv` (program name first) and returns the exit code.
pub fn run_with(argv: Vec<OsString>) -> i32 {
    let format = usage::format_from_argv(&argv);
    match std::panic::catch_unwind(|| dispatch(argv, format)) {
        Ok(code) => code,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            print::error(&Error::internal(detail), format, &[])
        }
    }
}

fn dispatch(argv: Vec<OsString>, format: Format) -> i32 {
    if usage::is_prepare_schema_request(&argv) {
        let text = serde_json::to_string_pretty(&schema::prepare_schema()).unwrap_or_default();
        println!("{text}");
        return 0;
    }
    // Bare `flare-deploy`: a person exploring; show what there is (exit 0, like cargo).
    if argv.len() <= 1 {
        let _ = args::cli_command().print_help();
        return 0;
    }
    let cli = match args::cli_command()
        .try_get_matches_from(&argv)
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(err) => return usage::clap_error(err, || usage::command_usage(&argv), format),
    };
    if cli.schema && cli.command.is_none() {
        let text = serde_json::to_string_pretty(&schema::commands_schema()).unwrap_or_default();
        println!("{text}");
        return 0;
    }
    init_logging(cli.verbose);
    // Options after a runtime's action are not clap's global ones: take the format of
    // the whole line.
    let argv_format = format;
    let format = match cli.format {
        OutputFormat::Txt => Format::Txt,
        OutputFormat::Json => Format::Json,
    };
    let registry = match Registry::collect(&BUILTIN_TARGET_CRATES) {
        Ok(registry) => registry,
        Err(err) => return print::error(&err, format, &[]),
    };
    match cli.command {
        None => usage::missing_subcommand(format),
        Some(Command::Completions(args)) => extras::completions(args.shell),
        Some(Command::Man) => extras::man_page(),
        Some(Command::Verify(args)) => verify::run(&args, format),
        Some(Command::Action(words)) => actions::dispatch(&registry, words, argv_format),
        Some(Command::Targets(args)) => match args.command {
            None => print::targets(&registry, format),
            Some(TargetsCommand::Show(show)) => print::target_show(&registry, &show.name, show.schema, format),
        },
        // clap skips `requires` when the argument also conflicts with a present one.
        Some(Command::Prepare(args)) if args.all.is_none() && (args.output_root.is_some() || args.jobs.is_some()) => {
            usage::usage_error(
                "--output-root and --jobs apply to --all only",
                "flare-deploy prepare --all <DIR> [--output-root <ROOT>] [--jobs <N>]",
                format,
            )
        }
        Some(Command::Prepare(args)) if args.all.is_some() => {
            let request = flare_deploy_core::batch::BatchRequest {
                dir: args.all.unwrap_or_default(),
                config: args.config,
                output_root: args.output_root,
                jobs: args.jobs.unwrap_or(0),
                nvflare_version: args.nvflare_version,
                dry_run: args.dry_run,
            };
            print::batch(&request, &registry, format)
        }
        Some(Command::Prepare(args)) => {
            let request = PrepareRequest {
                kit: args.kit,
                kit_flag: args.kit_flag,
                output: args.output,
                config: args.config,
                nvflare_version: args.nvflare_version,
            };
            if args.dry_run {
                return plan::single(&request, &registry, format);
            }
            let mut warnings = Vec::new();
            match flare_deploy_core::prepare(&request, &registry, &mut warnings) {
                Ok(prepared) => print::ok(&prepared.outcome.fields, format, &warnings),
                Err(err) => print::error(&err, format, &warnings),
            }
        }
    }
}

pub(crate) fn init_logging(verbose: bool) {
    if !verbose {
        return;
    }
    use std::io::IsTerminal;
    // Colour only for a person at a terminal, and never when NO_COLOR is set.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_ansi(colour)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
