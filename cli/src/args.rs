//! The command line: what the user can type, with help that explains it.

use std::ffi::OsString;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use flare_deploy_core::NvflareRelease;

pub const PREPARE_EXAMPLES: [&str; 3] = [
    "flare-deploy prepare ./site-1",
    "flare-deploy prepare ./site-1 --output ./site-1-docker --config docker.yaml",
    "flare-deploy prepare ./site-1 --output ./site-1-k8s --config k8s.yaml",
];

#[derive(Debug, Parser)]
#[command(
    name = "flare-deploy",
    about = "Prepare NVIDIA FLARE startup kits for deployment runtimes",
    long_about = "Prepare NVIDIA FLARE startup kits for deployment runtimes.\n\n\
        flare-deploy takes a provisioned server or client startup kit and a YAML runtime config \
        (its `runtime:` key names the target, e.g. `docker`) and writes a prepared copy of the kit: \
        job launcher and resource manager patched for the runtime, internal communication set up, \
        and the runtime's start files. The input kit is never modified.",
    after_help = "Run `flare-deploy targets` to list the runtimes this binary supports and their actions.\n\
        A runtime's actions work on a prepared output: flare-deploy <runtime> <action> [KIT] [options]\n\
        (e.g. `flare-deploy k8s stage ./site-1-k8s`; `flare-deploy <runtime> --help` lists them).",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Output format of results and errors.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Txt)]
    pub format: OutputFormat,

    /// Print debug logs on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Print the commands as JSON (each with the command that prints its own schema) and exit.
    #[arg(long)]
    pub schema: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// `key: value` lines; errors on stderr with a hint.
    #[value(alias = "human")]
    Txt,
    /// One JSON envelope on stdout (`status`, `exit_code`, `data` or `error_code`).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare a server or client startup kit for a runtime (a copy; the kit is unchanged).
    #[command(
        long_about = "Prepare an existing server/client startup kit for a deployment runtime.\n\n\
            Reads the YAML runtime config (default <kit>/config.yaml), validates it and the kit, \
            copies the kit to a staging directory beside the output, patches the copy for the \
            runtime and swaps it into place (default <kit>/prepared/<runtime>). A previous output \
            at that path is replaced in one step; on any error it stays as it was.",
        after_help = "Examples:\n  \
            flare-deploy prepare ./site-1\n  \
            flare-deploy prepare ./site-1 --output ./site-1-docker --config docker.yaml\n  \
            flare-deploy prepare ./site-1 --format json\n  \
            flare-deploy prepare --all ./workspace/project/prod_00 --config docker.yaml\n\n\
            Minimal docker config:\n  \
            runtime: docker\n  \
            nvflare_version: \"2.9\"   # the site's NVFlare release: 2.8 or 2.9 (default 2.9)\n  \
            parent:\n    docker_image: nvflare/nvflare:2.9.0\n\n\
            Exit codes: 0 success, 4 invalid input (config, kit, arguments), 5 internal error."
    )]
    Prepare(PrepareArgs),

    /// List the runtime targets: built in, linked crates and executable plugins.
    #[command(
        after_help = "A runtime that is not built in is an executable `flare-deploy-target-<name>` in \
            FLARE_DEPLOY_PLUGIN_PATH or on PATH (see docs/plugin-protocol.md)."
    )]
    Targets(TargetsArgs),

    /// Check a prepared kit against its receipt: files modified, missing or added since
    /// prepare, mode and link changes (and with --config, whether the config changed).
    #[command(after_help = "Exit codes: 0 the kit is as prepared, 4 it differs (VERIFY_MISMATCH) or has no receipt.")]
    Verify(VerifyArgs),

    /// Print a shell completion script: bash, zsh or fish.
    #[command(
        long_about = "Print a completion script for the shell on stdout.\n\n\
            It completes commands, options and their fixed values (runtimes' actions are \
            discovered at run time and are not completed).",
        after_help = "Install:\n  \
            bash: flare-deploy completions bash > ~/.local/share/bash-completion/completions/flare-deploy\n  \
            zsh:  flare-deploy completions zsh > \"${fpath[1]}/_flare-deploy\"\n  \
            fish: flare-deploy completions fish > ~/.config/fish/completions/flare-deploy.fish"
    )]
    Completions(CompletionsArgs),

    /// Print the man page (roff) on stdout.
    #[command(after_help = "Read it: flare-deploy man | man -l -\n\
        Install: flare-deploy man > /usr/local/share/man/man1/flare-deploy.1")]
    Man,

    /// `<runtime> <action> ...`: an action of a runtime target, parsed from the
    /// target's own description (see `actions.rs`).
    #[command(external_subcommand)]
    Action(Vec<OsString>),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct TargetsArgs {
    #[command(subcommand)]
    pub command: Option<TargetsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum TargetsCommand {
    /// Show a target's config keys: types, defaults and documentation.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The runtime name (the value of `runtime:`).
    pub name: String,

    /// Print the JSON Schema of the target's config instead of the key table.
    #[arg(long)]
    pub schema: bool,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Existing input startup kit directory.
    #[arg(value_name = "KIT")]
    pub kit: Option<String>,

    /// Existing input startup kit directory (instead of the positional KIT).
    #[arg(long = "kit", value_name = "KIT")]
    pub kit_flag: Option<String>,

    /// Directory to write the prepared startup kit copy. Defaults to <kit>/prepared/<runtime>.
    #[arg(long, value_name = "DIR")]
    pub output: Option<String>,

    /// YAML runtime config file with a top-level `runtime:` key. Defaults to <kit>/config.yaml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<String>,

    /// NVFlare release the site runs: 2.8 or 2.9 (a full version such as 2.9.0 selects its
    /// minor release). Wins over the config's `nvflare_version`; default 2.9.
    #[arg(long, value_name = "RELEASE")]
    pub nvflare_version: Option<String>,

    /// Print the command's argument schema as JSON and exit.
    #[arg(long)]
    pub schema: bool,

    /// Prepare every server and client kit directly under DIR (e.g. a provisioning run's
    /// prod_00/) in parallel; admin kits are skipped. Each kit uses --config if given,
    /// else its own config.yaml.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kit", "kit_flag", "output"])]
    pub all: Option<String>,

    /// With --all: write each kit's output to ROOT/<kit name> instead of <kit>/prepared/<runtime>.
    #[arg(long, value_name = "ROOT", requires = "all")]
    pub output_root: Option<String>,

    /// With --all: kits prepared at once (default: one per CPU core).
    #[arg(long, value_name = "N", requires = "all")]
    pub jobs: Option<usize>,

    /// Check everything and show what would change (files added, changed, removed;
    /// the JSON edits key by key), writing nothing at all. Works with --all.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A prepared kit (the output of flare-deploy prepare, which holds .flare-deploy.json).
    #[arg(value_name = "PREPARED_KIT")]
    pub kit: String,

    /// Also check that this runtime config is the one the kit was prepared with.
    #[arg(long, value_name = "FILE")]
    pub config: Option<String>,
}

/// `--version`: the crate version and the NVFlare releases it prepares kits for.
pub fn version_text() -> String {
    let releases: Vec<&str> = NvflareRelease::ALL.iter().map(|r| r.as_str()).collect();
    format!(
        "{} (NVFlare releases: {}; default {})",
        env!("CARGO_PKG_VERSION"),
        releases.join(", "),
        NvflareRelease::DEFAULT.as_str()
    )
}

/// The clap command with its run-time parts (the version text); completions, the man
/// page and `--schema` are made from it, so they cannot drift from what is parsed.
pub fn cli_command() -> clap::Command {
    Cli::command().version(version_text())
}
