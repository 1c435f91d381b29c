//! Runs the real `flare-deploy` binary.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Exit code and output of one run.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The single JSON document on stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts a `txt` error: message, hint and code lines on stderr, nothing on stdout.
    #[track_caller]
    pub fn assert_txt_error(&self, code: &str, message: &str, hint: &str) -> &Self {
        assert_eq!(
            self.code, 4,
            "expected exit 4\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        let expected = format!("{message}\nHint: {hint}\nCode: {code} (exit 4)\n");
        assert!(
            self.stderr.ends_with(&expected),
            "stderr does not end with\n{expected}\ngot:\n{}",
            self.stderr
        );
        assert!(!self.stdout.contains("Code:"), "stdout: {}", self.stdout);
        self
    }

    /// Asserts an error's code, and that its message starts with `message_prefix`.
    #[track_caller]
    pub fn assert_error_code(&self, code: &str, message_prefix: &str) -> &Self {
        assert_eq!(
            self.code, 4,
            "expected exit 4\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(&format!("Code: {code} (exit 4)")),
            "expected {code}\nstderr:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.starts_with(message_prefix) || self.stderr.contains(&format!("\n{message_prefix}")),
            "expected message starting with {message_prefix:?}\nstderr:\n{}",
            self.stderr
        );
        self
    }
}

/// Path of the built `flare-deploy` binary, built once per test process if needed.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("FLARE_DEPLOY_BIN") {
            return PathBuf::from(path);
        }
        // target/<profile>/deps/<test binary> -> target/<profile>/flare-deploy
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
        let bin = profile_dir.join("flare-deploy");
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "--quiet",
            "-p",
            "flare-deploy",
            "--bin",
            "flare-deploy",
            "--manifest-path",
        ]);
        build.arg(&manifest);
        if profile_dir.file_name() == Some(OsStr::new("release")) {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build for flare-deploy");
        assert!(status.success(), "cargo build of flare-deploy failed");
        assert!(bin.is_file(), "built binary not found at {}", bin.display());
        bin
    })
}

/// Runs `flare-deploy` with `args` in `cwd` (or the current directory).
pub fn flare_deploy<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_in(None, args, &[])
}

/// The NVFlare release the suites written before release selection run on: `run_in`
/// adds `--nvflare-version 2.8` to a `prepare` that names no release, so that those
/// suites keep proving 2.8 output byte for byte. 2.9 tests pass the option themselves.
pub const SUITE_RELEASE: &str = "2.8";

/// Runs `flare-deploy` with a working directory and extra environment; a `prepare`
/// without `--nvflare-version` runs on [`SUITE_RELEASE`].
pub fn run_in<I, S>(cwd: Option<&Path>, args: I, env: &[(&str, &str)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
    let is_prepare = subcommand(&args).is_some_and(|a| a == "prepare");
    let names_release = args
        .iter()
        .any(|a| a.to_string_lossy().starts_with("--nvflare-version"));
    if is_prepare && !names_release {
        args.extend(["--nvflare-version".into(), SUITE_RELEASE.into()]);
    }
    run_exact(cwd, args, env)
}

/// The first word that is not a global option (`--format X`, `-v`).
fn subcommand(args: &[std::ffi::OsString]) -> Option<&std::ffi::OsString> {
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == "--format" {
            words.next();
        } else if !word.to_string_lossy().starts_with('-') {
            return Some(word);
        }
    }
    None
}

/// `prepare <kit> --config <config> --output <out> --nvflare-version <release>`.
pub fn prepare_for_release(kit: &Path, config: &Path, out: &Path, release: &str) -> Run {
    run_exact(
        None,
        [
            OsStr::new("prepare"),
            kit.as_os_str(),
            OsStr::new("--config"),
            config.as_os_str(),
            OsStr::new("--output"),
            out.as_os_str(),
            OsStr::new("--nvflare-version"),
            OsStr::new(release),
        ],
        &[],
    )
}

/// The argv of `prepare <kit> --config <config> --output <output>`.
pub fn prepare_argv(kit: &Path, config: &Path, output: &Path) -> Vec<std::ffi::OsString> {
    [
        OsStr::new("prepare"),
        kit.as_os_str(),
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--output"),
        output.as_os_str(),
    ]
    .iter()
    .map(|a| a.to_os_string())
    .collect()
}

/// Runs `prepare <kit> --config <config> --output <output> [extra]` with `env`.
pub fn prepare_with(kit: &Path, config: &Path, output: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut argv = prepare_argv(kit, config, output);
    argv.extend(extra.iter().map(std::ffi::OsString::from));
    run_in(None, &argv, env)
}

/// The argv of `prepare --all <dir> --config <config> --output-root <out_root>`.
pub fn prepare_all_argv(dir: &Path, config: &Path, out_root: &Path) -> Vec<std::ffi::OsString> {
    [
        OsStr::new("prepare"),
        OsStr::new("--all"),
        dir.as_os_str(),
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--output-root"),
        out_root.as_os_str(),
    ]
    .iter()
    .map(|a| a.to_os_string())
    .collect()
}

/// Runs `flare-deploy` with exactly `args` (no release added).
pub fn run_exact<I, S>(cwd: Option<&Path>, args: I, env: &[(&str, &str)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(binary());
    cmd.args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run flare-deploy");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Path of the binary `bin` of the workspace package `package`, in target/<profile>/
/// next to `flare-deploy`, built once per test process (like [`binary`]).
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = built.get(bin) {
        return path.clone();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = profile_dir.join(bin);
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", package, "--bin", bin, "--manifest-path"]);
    build.arg(&manifest);
    if profile_dir.file_name() == Some(OsStr::new("release")) {
        build.arg("--release");
    }
    let status = build
        .status()
        .unwrap_or_else(|e| panic!("run cargo build for {bin}: {e}"));
    assert!(status.success(), "cargo build of {bin} failed");
    assert!(path.is_file(), "built binary not found at {}", path.display());
    built.insert(bin.to_string(), path.clone());
    path
}

/// Runs any `program` with a working directory and extra environment.
pub fn run_program<I, S>(program: &Path, cwd: Option<&Path>, args: I, env: &[(&str, &str)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
