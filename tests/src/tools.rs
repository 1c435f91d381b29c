//! External tools some tests need (helm, kubernetes-validate). `.ci/install-tools.sh`
//! installs them into `FLARE_DEPLOY_TOOLS` (default `~/.cache/flare-deploy-tools`).
//! Without them a test skips that part with a recorded message on a developer machine
//! (listed at the end of `scripts/test.sh`); under `CI=true` a missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `.ci/install-tools.sh` installs the tools.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("FLARE_DEPLOY_TOOLS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/flare-deploy-tools"),
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a missing prerequisite: a recorded skip outside CI, a panic under `CI=true`.
pub fn missing(what: &str) {
    unavailable(&format!(
        "{what} is missing; run .ci/install-tools.sh to install the test tools"
    ));
}

/// Reports a prerequisite this machine lacks that CI must have (root, a namespace):
/// a recorded skip outside CI, a panic under `CI=true`.
pub fn unavailable(message: &str) {
    if in_ci() {
        panic!("{message} (CI=true: a missing prerequisite fails the run)");
    }
    skipped(message);
}

/// Records that part of the running test did not run, and why. The line goes straight
/// to the terminal (libtest hides `eprintln!` of passing tests) and into
/// `target/test-skips/`, which `scripts/test.sh` (the README's test command) lists at the
/// end of the run. Use it for what no install can give (a kernel feature); a missing
/// tool goes through [`missing`], which fails under `CI=true`.
pub fn skipped(reason: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let suite = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
            _ => stem,
        })
        .unwrap_or_else(|| "?".to_string());
    let line = format!("{suite}::{test}: {}", reason.replace('\n', " "));
    // Not `eprintln!`: the test harness captures that for passing tests.
    let _ = writeln!(std::io::stderr(), "SKIPPED {line}");
    if let Some(dir) = skips_dir() {
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{suite}.{}", std::process::id()));
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(file) {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// `target/test-skips`, next to the test executables (`target/<profile>/deps/<test>`).
fn skips_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FLARE_DEPLOY_SKIPS_DIR") {
        return Some(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?.parent()?;
    Some(target.join("test-skips"))
}

/// `path` if it exists, else reports `what` as missing.
pub fn require_path(path: &Path, what: &str) -> Option<PathBuf> {
    if path.exists() {
        Some(path.to_path_buf())
    } else {
        missing(&format!("{what} ({})", path.display()));
        None
    }
}

/// Finds `name` in the tools dir or on PATH. Returns `None` (after printing why) when it
/// is missing on a developer machine; panics under `CI=true`.
pub fn require(name: &str) -> Option<PathBuf> {
    let candidate = tools_dir().join("bin").join(name);
    let found = if candidate.is_file() {
        Some(candidate)
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
    };
    if found.is_none() {
        let message = format!(
            "{name} not found in {} or on PATH; run .ci/install-tools.sh to install it",
            tools_dir().join("bin").display()
        );
        if in_ci() {
            panic!("{message} (CI=true: a missing tool fails the run)");
        }
        skipped(&message);
    }
    found
}

/// Output of a tool run that must succeed.
pub fn run_ok(program: &Path, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {:?} failed:\nstdout:\n{}\nstderr:\n{}",
        program.display(),
        args,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A rendered and validated chart: `helm lint --strict`, `helm template`, then
/// `kubernetes-validate --strict` on the output. Returns the rendered objects, or
/// `None` when the tools are missing (outside CI).
pub fn render_chart(chart: &Path, release: &str, namespace: &str) -> Option<Vec<serde_json::Value>> {
    let helm = require("helm")?;
    let validator = require("kubernetes-validate")?;
    run_ok(&helm, &["lint".as_ref(), "--strict".as_ref(), chart.as_os_str()]);
    let rendered = run_ok(
        &helm,
        &[
            "template".as_ref(),
            release.as_ref(),
            chart.as_os_str(),
            "--namespace".as_ref(),
            namespace.as_ref(),
        ],
    );
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, &rendered).expect("write rendered");
    run_ok(&validator, &["--strict".as_ref(), "--quiet".as_ref(), file.as_os_str()]);
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&rendered) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc).expect("rendered YAML parses");
        if !value.is_null() {
            objects.push(value);
        }
    }
    Some(objects)
}

/// The rendered object of `kind` named `name`.
pub fn object<'a>(objects: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            let have: Vec<String> = objects
                .iter()
                .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
                .collect();
            panic!("no {kind} named {name}; rendered: {have:?}")
        })
}

/// The `nvflare` command of the venv `$FLARE_DEPLOY_TOOLS/<venv>` when it holds NVFlare
/// `version` exactly (checked by importing it); otherwise reported missing.
pub fn nvflare_cli(venv: &str, version: &str) -> Option<PathBuf> {
    let dir = tools_dir().join(venv);
    let found = Command::new(dir.join("bin/python"))
        .args(["-c", "import nvflare; print(nvflare.__version__)"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    match found {
        Some(v) if v == version => Some(dir.join("bin/nvflare")),
        other => {
            missing(&format!(
                "NVFlare {version} in {} (found: {})",
                dir.display(),
                other.as_deref().unwrap_or("none")
            ));
            None
        }
    }
}

/// NVFlare 2.9.0's `nvflare` command (the 2.9 oracle).
pub fn nvflare_2_9() -> Option<PathBuf> {
    nvflare_cli("nvflare29-venv", "2.9.0")
}
