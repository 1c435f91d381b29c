//! Every error path of `flare-deploy prepare` (reference spec sections 1.4, 2.1, 2.2, 3, 5
//! and our deviations): error code, exact message and hint, exit code 4, in `txt` and
//! `json`; the input kit unchanged; no output and no staging directory left behind.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use flare_deploy_tests::fsutil::{os, tempdir, write_file};
use flare_deploy_tests::harness::run_in;
use flare_deploy_tests::kitgen::{self, Kit};
use flare_deploy_tests::{flare_deploy, Project, Run, Snapshot};
use serde_json::{json, Value};

const CONFIG: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";
const FIX_CONFIG: &str = "Fix the runtime config.";
const UNKNOWN_KEYS: &str = "Remove or rename unsupported keys.";
const ADD_PARENT: &str = "Add a parent: section to the runtime config; parent.docker_image is required.";
const PARENT_KEYS: &str =
    "Fix the runtime config. parent must hold keys (parent.docker_image is required), not a single value.";
const BAD_YAML: &str = "Ensure the file is valid YAML.";
const VALID_KIT: &str = "Provide a valid startup kit.";
const FIX_JSON: &str = "Fix the startup kit JSON.";
const FIX_RESOURCES: &str = "Fix the startup kit resources file.";
const FIX_COMM: &str = "Fix the startup kit comm config.";
const CERT_HINT: &str = "Use a valid provisioned startup kit.";
const IDENTITY_HINT: &str = "Use a fully provisioned or packaged startup kit.";
const ROLE_HINT: &str = "A kit should contain one of fed_server.json, fed_client.json, or fed_admin.json.";
const OUTPUT_HINT: &str =
    "Choose a prepared-kit directory outside the kit, or use the default <kit>/prepared/<runtime>.";
const NOT_OURS_HINT: &str = "Choose a new or empty directory, or the output of an earlier flare-deploy prepare (it holds .flare-deploy.json); flare-deploy replaces nothing else.";

// ---------------------------------------------------------------------------------------
// helpers

/// The runtimes the reference's text names, for the targets built into this binary
/// (docker, k8s, slurm), when no executable plugin is on the plugin path.
const RUNTIME_CHOICES: &str = "runtime: docker, runtime: k8s, or runtime: slurm";

/// A JSON string the way Python's `json.dumps` writes it (ASCII only).
fn py_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Clone, Debug)]
enum Text {
    Exact(String),
    Prefix(String),
}

impl Text {
    fn matches(&self, got: &str) -> bool {
        match self {
            Text::Exact(want) => got == want,
            Text::Prefix(want) => got.starts_with(want.as_str()) && got.len() > want.len(),
        }
    }
}

fn exact(s: impl Into<String>) -> Text {
    Text::Exact(s.into())
}

fn prefix(s: impl Into<String>) -> Text {
    Text::Prefix(s.into())
}

/// One failing invocation and what it must print and leave behind.
struct Case {
    label: String,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(String, String)>,
    /// Trees that must be byte-for-byte unchanged (the input kit, earlier outputs).
    keep: Vec<PathBuf>,
    /// The output path; it must not appear, and no staging directory beside it.
    output: Option<PathBuf>,
    /// Directories (relative to a kept tree) whose own mtime may change: a staging
    /// directory was created and removed inside them.
    mtime_may_change: Vec<PathBuf>,
    code: &'static str,
    message: Text,
    hint: Text,
}

impl Case {
    fn new(label: impl Into<String>, args: Vec<OsString>, code: &'static str) -> Case {
        Case {
            label: label.into(),
            args,
            cwd: None,
            env: Vec::new(),
            keep: Vec::new(),
            output: None,
            mtime_may_change: Vec::new(),
            code,
            message: exact(""),
            hint: exact(""),
        }
    }

    fn msg(mut self, message: Text, hint: Text) -> Case {
        self.message = message;
        self.hint = hint;
        self
    }

    fn keep(mut self, path: &Path) -> Case {
        self.keep.push(path.to_path_buf());
        self
    }

    fn mtime_may_change(mut self, rel: &str) -> Case {
        self.mtime_may_change.push(PathBuf::from(rel));
        self
    }

    fn output(mut self, path: &Path) -> Case {
        self.output = Some(path.to_path_buf());
        self
    }

    fn cwd(mut self, path: &Path) -> Case {
        self.cwd = Some(path.to_path_buf());
        self
    }

    fn env(mut self, key: &str, value: &Path) -> Case {
        self.env.push((key.to_string(), value.display().to_string()));
        self
    }

    fn run(&self, extra: &[&str]) -> Run {
        let mut argv = self.args.clone();
        argv.extend(extra.iter().map(OsString::from));
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_in(self.cwd.as_deref(), &argv, &env)
    }

    /// Runs the case in `txt` (default) and `json` and checks output and filesystem.
    #[track_caller]
    fn check(&self) {
        let label = &self.label;
        let snapshots: Vec<(PathBuf, Snapshot)> = self
            .keep
            .iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .map(|p| (p.clone(), Snapshot::take(p, &[])))
            .collect();
        let output_parent = self.output.as_ref().and_then(|o| o.parent());
        let parent_existed = output_parent.map(|p| p.exists());
        if let Some(out) = &self.output {
            assert!(!out.exists(), "{label}: test setup: output {} exists", out.display());
        }

        // txt (default format)
        let run = self.run(&[]);
        assert_eq!(
            run.code, 4,
            "{label}: exit code\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        let stderr = run.stderr.as_str();
        let tail = format!("\nCode: {} (exit 4)\n", self.code);
        assert!(stderr.ends_with(&tail), "{label}: code line\n{stderr}");
        let body = &stderr[..stderr.len() - tail.len()];
        let (message, hint) = body
            .rsplit_once("\nHint: ")
            .unwrap_or_else(|| panic!("{label}: no hint line\n{stderr}"));
        assert!(
            self.message.matches(message),
            "{label}: message\nwant {:?}\ngot  {message:?}",
            self.message
        );
        assert!(
            self.hint.matches(hint),
            "{label}: hint\nwant {:?}\ngot  {hint:?}",
            self.hint
        );
        assert!(
            run.stdout.lines().all(|l| l.starts_with("Warning: ")),
            "{label}: stdout may only hold warnings in txt:\n{}",
            run.stdout
        );
        self.check_filesystem(&snapshots, parent_existed, "txt");

        // json
        let run = self.run(&["--format", "json"]);
        assert_eq!(
            run.code, 4,
            "{label}: json exit code\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        assert_eq!(
            run.stdout.matches('\n').count(),
            1,
            "{label}: json stdout must be one line:\n{}",
            run.stdout
        );
        let doc = run.json();
        let keys: Vec<&String> = doc.as_object().expect("envelope object").keys().collect();
        assert_eq!(
            keys,
            ["schema_version", "status", "exit_code", "error_code", "message", "hint"],
            "{label}: envelope keys"
        );
        assert_eq!(doc["schema_version"], "1", "{label}");
        assert_eq!(doc["status"], "error", "{label}");
        assert_eq!(doc["exit_code"], 4, "{label}");
        assert_eq!(doc["error_code"], self.code, "{label}");
        let message = doc["message"].as_str().expect("message");
        let hint = doc["hint"].as_str().expect("hint");
        assert!(
            self.message.matches(message),
            "{label}: json message\nwant {:?}\ngot  {message:?}",
            self.message
        );
        assert!(self.hint.matches(hint), "{label}: json hint {hint:?}");
        let line = format!(
            r#"{{"schema_version": "1", "status": "error", "exit_code": 4, "error_code": "{}", "message": {}, "hint": {}}}"#,
            self.code,
            py_str(message),
            py_str(hint)
        );
        assert_eq!(run.stdout.trim_end(), line, "{label}: json line format");
        assert!(
            run.stderr.lines().all(|l| l.starts_with("Warning: ")),
            "{label}: json stderr may only hold warnings:\n{}",
            run.stderr
        );
        self.check_filesystem(&snapshots, parent_existed, "json");
    }

    #[track_caller]
    fn check_filesystem(&self, snapshots: &[(PathBuf, Snapshot)], parent_existed: Option<bool>, format: &str) {
        let label = format!("{} ({format})", self.label);
        for (path, before) in snapshots {
            let mut after = Snapshot::take(path, &[]);
            for rel in &self.mtime_may_change {
                if let (Some(old), Some(new)) = (before.0.get(rel), after.0.get_mut(rel)) {
                    new.mtime_ns = old.mtime_ns;
                }
            }
            after.assert_same_as(before, &format!("{label}: {}", path.display()));
        }
        let Some(out) = &self.output else { return };
        assert!(
            out.symlink_metadata().is_err(),
            "{label}: output {} was created",
            out.display()
        );
        let parent = out.parent().expect("output parent");
        if parent.is_dir() {
            let name = out.file_name().expect("name").to_string_lossy();
            let staging = format!(".{name}.prepare-");
            let left: Vec<String> = fs::read_dir(parent)
                .expect("read_dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&staging) || n.starts_with(&format!(".{name}.previous")))
                .collect();
            assert!(
                left.is_empty(),
                "{label}: left behind in {}: {left:?}",
                parent.display()
            );
        }
        if parent_existed == Some(false) {
            assert!(
                !parent.exists(),
                "{label}: output parent {} was created",
                parent.display()
            );
        }
    }
}

/// `prepare <kit> --config <config>` (default output `<kit>/prepared/docker`), keeping the
/// kit unchanged (which also proves `<kit>/prepared` is not created).
fn kit_case(label: impl Into<String>, kit: &Path, config: &Path, code: &'static str) -> Case {
    Case::new(label, os(&[&"prepare", &kit, &"--config", &config]), code)
        .keep(kit)
        .output(&kit.join("prepared").join("docker"))
}

fn client_kit(root: &Path) -> Kit {
    Project::new("proj").client("site-1").build(root)
}

// ---------------------------------------------------------------------------------------
// section 1.4: inputs

#[test]
fn kit_given_twice_or_not_at_all() {
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    kit.write_config(CONFIG);
    let twice = "Specify the startup kit only once.";
    let twice_hint = "Use either positional kit or --kit.";
    let missing = "Missing startup kit directory.";
    let missing_hint = "Run flare-deploy prepare <startup-kit-dir>.";
    #[rustfmt::skip]
    let cases = [
        ("both", os(&[&"prepare", &kit.dir, &"--kit", &kit.dir]), twice, twice_hint),
        ("both, other order", os(&[&"prepare", &"--kit", &kit.dir, &"elsewhere"]), twice, twice_hint),
        ("none", os(&[&"prepare"]), missing, missing_hint),
        ("none with options", os(&[&"prepare", &"--config", &kit.path("config.yaml")]), missing, missing_hint),
        ("empty positional", os(&[&"prepare", &""]), missing, missing_hint),
        ("empty flag", os(&[&"prepare", &"--kit", &""]), missing, missing_hint),
        ("both empty", os(&[&"prepare", &"", &"--kit", &""]), missing, missing_hint),
    ];
    for (label, args, message, hint) in cases {
        Case::new(label, args, "INVALID_ARGS")
            .msg(exact(message), exact(hint))
            .keep(&kit.dir)
            .cwd(&root)
            .check();
    }
}

#[test]
fn empty_positional_kit_falls_back_to_the_flag() {
    // "" is not a kit, so --kit is used: its (missing) default config is reported.
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    Case::new(
        "empty positional with --kit",
        os(&[&"prepare", &"", &"--kit", &kit.dir]),
        "CONFIG_NOT_FOUND",
    )
    .msg(
        exact(format!("Config file not found: {}/config.yaml", kit.dir.display())),
        exact("Provide a YAML runtime config file."),
    )
    .keep(&kit.dir)
    .output(&kit.path("prepared/docker"))
    .check();
}

#[test]
fn paths_are_expanded_and_resolved_before_use() {
    let (_tmp, root) = tempdir();
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    let not_found = |p: &Path| exact(format!("Startup kit directory does not exist: {}", p.display()));
    let kit_hint = exact("Provide an existing kit directory.");
    // relative to the working directory
    Case::new(
        "relative kit",
        os(&[&"prepare", &"nokit", &"--config", &config]),
        "INVALID_KIT",
    )
    .msg(not_found(&root.join("nokit")), kit_hint.clone())
    .cwd(&root)
    .check();
    // `..` folded in the non-existing part
    Case::new(
        "dot-dot",
        os(&[&"prepare", &root.join("a/b/../../nokit"), &"--config", &config]),
        "INVALID_KIT",
    )
    .msg(not_found(&root.join("nokit")), kit_hint.clone())
    .check();
    // `~` expanded with $HOME
    Case::new(
        "tilde kit",
        os(&[&"prepare", &"~/nokit", &"--config", &config]),
        "INVALID_KIT",
    )
    .msg(not_found(&root.join("nokit")), kit_hint.clone())
    .env("HOME", &root)
    .check();
    // symlinks resolved
    let real = root.join("real-kit");
    fs::create_dir(&real).expect("mkdir");
    std::os::unix::fs::symlink(&real, root.join("link-kit")).expect("symlink");
    Case::new(
        "symlinked kit",
        os(&[&"prepare", &root.join("link-kit"), &"--config", &config]),
        "INVALID_KIT",
    )
    .msg(
        exact(format!("Missing startup directory: {}/startup", real.display())),
        exact(VALID_KIT),
    )
    .keep(&real)
    .check();
    // --config relative, with `~`, and through a dangling symlink
    let kit = client_kit(&root);
    Case::new(
        "relative config",
        os(&[&"prepare", &kit.dir, &"--config", &"missing.yaml"]),
        "CONFIG_NOT_FOUND",
    )
    .msg(
        exact(format!("Config file not found: {}/missing.yaml", root.display())),
        exact("Provide a YAML runtime config file."),
    )
    .cwd(&root)
    .keep(&kit.dir)
    .check();
    Case::new(
        "tilde config",
        os(&[&"prepare", &kit.dir, &"--config", &"~/cfg/missing.yaml"]),
        "CONFIG_NOT_FOUND",
    )
    .msg(
        exact(format!("Config file not found: {}/cfg/missing.yaml", root.display())),
        exact("Provide a YAML runtime config file."),
    )
    .env("HOME", &root)
    .keep(&kit.dir)
    .check();
}

#[test]
fn dangling_config_symlink_is_resolved_like_python() {
    // Path.resolve(strict=False) follows a symlink even when its target does not exist.
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    std::os::unix::fs::symlink(root.join("target-missing.yaml"), root.join("link.yaml")).expect("symlink");
    Case::new(
        "dangling config symlink",
        os(&[&"prepare", &kit.dir, &"--config", &root.join("link.yaml")]),
        "CONFIG_NOT_FOUND",
    )
    .msg(
        exact(format!("Config file not found: {}/target-missing.yaml", root.display())),
        exact("Provide a YAML runtime config file."),
    )
    .keep(&kit.dir)
    .check();
}

// ---------------------------------------------------------------------------------------
// section 2.1: loading the config

#[test]
fn config_file_not_found() {
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    let hint = exact("Provide a YAML runtime config file.");
    let missing = root.join("missing.yaml");
    kit_case("explicit missing config", &kit.dir, &missing, "CONFIG_NOT_FOUND")
        .msg(
            exact(format!("Config file not found: {}", missing.display())),
            hint.clone(),
        )
        .check();
    let dir = root.join("config-dir.yaml");
    fs::create_dir(&dir).expect("mkdir");
    kit_case("config is a directory", &kit.dir, &dir, "CONFIG_NOT_FOUND")
        .msg(exact(format!("Config file not found: {}", dir.display())), hint.clone())
        .check();
    // default <kit>/config.yaml, also with an empty --config
    let default = kit.path("config.yaml");
    for (label, args) in [
        ("default config", os(&[&"prepare", &kit.dir])),
        ("empty --config", os(&[&"prepare", &kit.dir, &"--config", &""])),
    ] {
        Case::new(label, args, "CONFIG_NOT_FOUND")
            .msg(
                exact(format!("Config file not found: {}", default.display())),
                hint.clone(),
            )
            .keep(&kit.dir)
            .output(&kit.path("prepared/docker"))
            .check();
    }
    // a missing kit without --config: the default config inside it is reported (1.5)
    let nokit = root.join("nokit");
    Case::new(
        "missing kit, default config",
        os(&[&"prepare", &nokit]),
        "CONFIG_NOT_FOUND",
    )
    .msg(
        exact(format!("Config file not found: {}/config.yaml", nokit.display())),
        hint,
    )
    .output(&nokit.join("prepared/docker"))
    .check();
    assert!(!nokit.exists());
}

#[test]
fn config_that_is_not_valid_yaml() {
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    #[rustfmt::skip]
    let cases: [(&str, &[u8]); 6] = [
        ("unclosed flow", b"runtime: [docker\n"),
        ("bad indentation", b"runtime: docker\nparent:\n  docker_image: a\n bad: b\n"),
        ("duplicate top-level key", b"runtime: docker\nruntime: docker\nparent:\n  docker_image: a\n"),
        ("duplicate nested key", b"runtime: docker\nparent:\n  docker_image: a\n  docker_image: b\n"),
        ("tab indentation", b"runtime: docker\nparent:\n\tdocker_image: a\n"),
        ("invalid utf-8", b"runtime: docker\nparent:\n  docker_image: \xff\xfe\n"),
    ];
    for (label, bytes) in cases {
        let config = root.join(format!("{}.yaml", label.replace(' ', "-")));
        fs::write(&config, bytes).expect("write");
        kit_case(label, &kit.dir, &config, "INVALID_CONFIG")
            .msg(prefix("Failed to parse config file: "), exact(BAD_YAML))
            .check();
    }
}

#[test]
fn config_that_is_not_a_mapping_or_has_no_known_runtime() {
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    // An empty plugin path and PATH, so that no executable plugin adds a runtime.
    let no_plugins = root.join("no-plugins");
    fs::create_dir(&no_plugins).expect("mkdir");
    let choices = RUNTIME_CHOICES;
    let not_mapping = exact("Runtime config must be a YAML mapping.");
    let add_hint = exact(format!("Add {choices}."));
    let no_runtime = exact(format!("Config must contain {choices}."));
    // The reference's message; the hint says what was given (deviation L8).
    let plugin =
        "A plugin runtime <name> is the executable flare-deploy-target-<name> in FLARE_DEPLOY_PLUGIN_PATH or on PATH.";
    let set_hint = exact(format!(
        "Set a supported runtime (docker, k8s, slurm) with a runtime: key. {plugin}"
    ));
    let not_one = |given: &str, guess: &str| {
        exact(format!(
            "Set a supported runtime: {given} is not one of docker, k8s, slurm.{guess} {plugin}"
        ))
    };
    let not_name = |given: &str| {
        exact(format!(
            "Set a supported runtime: runtime must be a name (docker, k8s, slurm), got {given}. {plugin}"
        ))
    };
    let k9s = not_one("'k9s'", " Did you mean 'k8s'?");
    let wrong_case = not_one("'Docker'", " Did you mean 'docker'?");
    let trailing = not_one("'docker '", " Did you mean 'docker'?");
    let (number, boolean, list, mapping) = (
        not_name("1"),
        not_name("True"),
        not_name("['docker']"),
        not_name("{'docker': 1}"),
    );
    #[rustfmt::skip]
    let cases = [
        ("empty file", "", &not_mapping, &add_hint),
        ("comment only", "# nothing here\n", &not_mapping, &add_hint),
        ("explicit null", "null\n", &not_mapping, &add_hint),
        ("list", "- runtime: docker\n", &not_mapping, &add_hint),
        ("scalar", "docker\n", &not_mapping, &add_hint),
        ("number", "42\n", &not_mapping, &add_hint),
        ("no runtime", "parent:\n  docker_image: img\n", &no_runtime, &set_hint),
        ("unknown runtime", "runtime: k9s\nparent:\n  docker_image: img\n", &no_runtime, &k9s),
        ("wrong case", "runtime: Docker\nparent:\n  docker_image: img\n", &no_runtime, &wrong_case),
        ("trailing space", "runtime: 'docker '\nparent:\n  docker_image: img\n", &no_runtime, &trailing),
        ("null runtime", "runtime:\nparent:\n  docker_image: img\n", &no_runtime, &set_hint),
        ("number runtime", "runtime: 1\n", &no_runtime, &number),
        ("bool runtime", "runtime: true\n", &no_runtime, &boolean),
        ("list runtime", "runtime: [docker]\n", &no_runtime, &list),
        ("mapping runtime", "runtime: {docker: 1}\n", &no_runtime, &mapping),
        ("runtime key not a string", "? [runtime]\n: docker\n", &no_runtime, &set_hint),
    ];
    for (label, yaml, message, hint) in cases {
        let config = write_file(&root.join("cfg.yaml"), yaml);
        kit_case(label, &kit.dir, &config, "INVALID_CONFIG")
            .env("FLARE_DEPLOY_PLUGIN_PATH", &no_plugins)
            .env("PATH", &no_plugins)
            .msg((*message).clone(), (*hint).clone())
            .check();
    }
}

// ---------------------------------------------------------------------------------------
// section 2.2: runtime: docker validation, in order

#[test]
fn docker_config_validation_in_order() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, &str)] = &[
        // 1. top-level keys
        ("unknown keys", "parent:\n  docker_image: img\nzzz: 1\nbogus: 2\n", "Unknown keys in docker config: ['bogus', 'zzz']", UNKNOWN_KEYS),
        ("unknown keys before parent", "bogus: 2\n", "Unknown keys in docker config: ['bogus']", UNKNOWN_KEYS),
        ("k8s key in docker config", "namespace: default\nparent:\n  docker_image: img\n", "Unknown keys in docker config: ['namespace']", UNKNOWN_KEYS),
        ("mixed key types", "parent:\n  docker_image: img\n1: x\nbogus: 2\n", "Unknown keys in docker config: [1, 'bogus']", UNKNOWN_KEYS),
        ("quote in key", "parent:\n  docker_image: img\n\"it's\": 1\n", "Unknown keys in docker config: [\"it's\"]", UNKNOWN_KEYS),
        // 2. parent (the hint says what it needs: deviation L10)
        ("parent missing", "", "parent must be a YAML mapping.", ADD_PARENT),
        ("parent null", "parent:\n", "parent must be a YAML mapping.", ADD_PARENT),
        ("parent string", "parent: img\n", "parent must be a YAML mapping.", PARENT_KEYS),
        ("parent list", "parent: [docker_image]\n", "parent must be a YAML mapping.", PARENT_KEYS),
        ("parent before job_launcher", "job_launcher: []\n", "parent must be a YAML mapping.", ADD_PARENT),
        // 3. job_launcher
        ("job_launcher list", "parent:\n  docker_image: img\njob_launcher: []\n", "job_launcher must be a YAML mapping.", FIX_CONFIG),
        ("job_launcher string", "parent:\n  docker_image: img\njob_launcher: x\n", "job_launcher must be a YAML mapping.", FIX_CONFIG),
        ("job_launcher number", "parent:\n  docker_image: img\njob_launcher: 0\n", "job_launcher must be a YAML mapping.", FIX_CONFIG),
        ("job_launcher before parent keys", "parent:\n  bogus: 1\njob_launcher: 5\n", "job_launcher must be a YAML mapping.", FIX_CONFIG),
        // 4. parent keys
        ("unknown parent key", "parent:\n  docker_image: img\n  parent_port: 8102\n", "Unknown keys in parent: ['parent_port']", UNKNOWN_KEYS),
        ("unknown parent key before image", "parent:\n  image: img\n", "Unknown keys in parent: ['image']", UNKNOWN_KEYS),
        ("near miss parent key", "parent:\n  docker_imag: img\n", "Unknown keys in parent: ['docker_imag']", "Remove or rename unsupported keys. 'docker_imag': did you mean 'docker_image'?"),
        ("parent keys before job_launcher keys", "parent:\n  b: 1\n  a: 2\njob_launcher:\n  x: 1\n", "Unknown keys in parent: ['a', 'b']", UNKNOWN_KEYS),
        // 5. job_launcher keys
        ("unknown job_launcher key", "parent:\n  docker_image: img\njob_launcher:\n  pending_timeout: 5\n", "Unknown keys in job_launcher: ['pending_timeout']", UNKNOWN_KEYS),
        ("job_launcher keys before image", "parent: {}\njob_launcher:\n  x: 1\n", "Unknown keys in job_launcher: ['x']", UNKNOWN_KEYS),
        // 6. docker_image
        ("image missing", "parent:\n  network: n\n", "parent.docker_image must be a non-empty string.", FIX_CONFIG),
        ("image empty", "parent:\n  docker_image: ''\n", "parent.docker_image must be a non-empty string.", FIX_CONFIG),
        ("image null", "parent:\n  docker_image:\n", "parent.docker_image must be a non-empty string.", FIX_CONFIG),
        ("image number", "parent:\n  docker_image: 7\n", "parent.docker_image must be a non-empty string.", FIX_CONFIG),
        ("image bool", "parent:\n  docker_image: true\n", "parent.docker_image must be a non-empty string.", FIX_CONFIG),
        ("image list", "parent:\n  docker_image: [img]\n", "parent.docker_image must be a non-empty string.", FIX_CONFIG),
        ("image before network", "parent:\n  network: ''\n", "parent.docker_image must be a non-empty string.", FIX_CONFIG),
        // 7. network
        ("network empty", "parent:\n  docker_image: img\n  network: ''\n", "parent.network must be a non-empty string.", FIX_CONFIG),
        ("network number", "parent:\n  docker_image: img\n  network: 7\n", "parent.network must be a non-empty string.", FIX_CONFIG),
        ("network list", "parent:\n  docker_image: img\n  network: []\n", "parent.network must be a non-empty string.", FIX_CONFIG),
        ("network before python", "parent:\n  docker_image: img\n  network: {}\njob_launcher:\n  default_python_path: 7\n", "parent.network must be a non-empty string.", FIX_CONFIG),
        // 8. default_python_path (spec 8 case 33)
        ("python number", "parent:\n  docker_image: img\njob_launcher:\n  default_python_path: 7\n", "job_launcher.default_python_path must be a non-empty string.", FIX_CONFIG),
        ("python empty", "parent:\n  docker_image: img\njob_launcher:\n  default_python_path: ''\n", "job_launcher.default_python_path must be a non-empty string.", FIX_CONFIG),
        ("python false", "parent:\n  docker_image: img\njob_launcher:\n  default_python_path: false\n", "job_launcher.default_python_path must be a non-empty string.", FIX_CONFIG),
        ("python before env", "parent:\n  docker_image: img\njob_launcher:\n  default_python_path: []\n  default_job_env: []\n", "job_launcher.default_python_path must be a non-empty string.", FIX_CONFIG),
        // 9. default_job_env
        ("env list", "parent:\n  docker_image: img\njob_launcher:\n  default_job_env: [A=1]\n", "job_launcher.default_job_env must be a mapping.", FIX_CONFIG),
        ("env string", "parent:\n  docker_image: img\njob_launcher:\n  default_job_env: A=1\n", "job_launcher.default_job_env must be a mapping.", FIX_CONFIG),
        ("env before kwargs", "parent:\n  docker_image: img\njob_launcher:\n  default_job_env: 1\n  default_job_container_kwargs: 1\n", "job_launcher.default_job_env must be a mapping.", FIX_CONFIG),
        // 10. default_job_container_kwargs
        ("kwargs list", "parent:\n  docker_image: img\njob_launcher:\n  default_job_container_kwargs: [shm_size]\n", "job_launcher.default_job_container_kwargs must be a mapping.", FIX_CONFIG),
        ("kwargs string", "parent:\n  docker_image: img\njob_launcher:\n  default_job_container_kwargs: x\n", "job_launcher.default_job_container_kwargs must be a mapping.", FIX_CONFIG),
        ("reserved kwargs", "parent:\n  docker_image: img\njob_launcher:\n  default_job_container_kwargs:\n    volumes: {}\n    shm_size: 1g\n    name: x\n", "default_job_container_kwargs contains reserved keys: ['name', 'volumes']", "Remove keys controlled by DockerJobLauncher."),
        ("all reserved kwargs", "parent:\n  docker_image: img\njob_launcher:\n  default_job_container_kwargs:\n    working_dir: /w\n    volumes: {}\n    user: u\n    network: n\n    name: x\n    mounts: []\n    environment: {}\n    detach: true\n    command: c\n", "default_job_container_kwargs contains reserved keys: ['command', 'detach', 'environment', 'mounts', 'name', 'network', 'user', 'volumes', 'working_dir']", "Remove keys controlled by DockerJobLauncher."),
        ("reserved kwargs with null value", "parent:\n  docker_image: img\njob_launcher:\n  default_job_container_kwargs:\n    environment:\n", "default_job_container_kwargs contains reserved keys: ['environment']", "Remove keys controlled by DockerJobLauncher."),
    ];
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    for (label, body, message, hint) in cases {
        let config = write_file(&root.join("docker.yaml"), &format!("runtime: docker\n{body}"));
        kit_case(*label, &kit.dir, &config, "INVALID_CONFIG")
            .msg(exact(*message), exact(*hint))
            .check();
    }
}

#[test]
fn config_errors_come_before_kit_and_output_errors() {
    let (_tmp, root) = tempdir();
    // No kit at all, an output equal to the missing kit: the config is reported.
    let nokit = root.join("nokit");
    let config = write_file(&root.join("docker.yaml"), "runtime: docker\nparent: {}\n");
    Case::new(
        "config before kit",
        os(&[&"prepare", &nokit, &"--config", &config, &"--output", &nokit]),
        "INVALID_CONFIG",
    )
    .msg(
        exact("parent.docker_image must be a non-empty string."),
        exact(FIX_CONFIG),
    )
    .check();
    assert!(!nokit.exists());
}

// ---------------------------------------------------------------------------------------
// section 3: kit validation

/// A kit of `role`, damaged by `breakage`, and the error it must give. `{kit}` in the
/// message stands for the kit's resolved path.
struct Broken {
    label: &'static str,
    role: &'static str,
    breakage: fn(&Kit),
    message: &'static str,
    is_prefix: bool,
    hint: &'static str,
}

const fn broken(
    label: &'static str,
    role: &'static str,
    breakage: fn(&Kit),
    message: &'static str,
    hint: &'static str,
) -> Broken {
    Broken {
        label,
        role,
        breakage,
        message,
        is_prefix: false,
        hint,
    }
}

const fn broken_prefix(
    label: &'static str,
    role: &'static str,
    breakage: fn(&Kit),
    message: &'static str,
    hint: &'static str,
) -> Broken {
    Broken {
        label,
        role,
        breakage,
        message,
        is_prefix: true,
        hint,
    }
}

fn check_broken(cases: &[Broken]) {
    let project = Project::new("proj");
    for case in cases {
        let (_tmp, root) = tempdir();
        let kit = match case.role {
            "server" => project.server("server1").build(&root),
            "admin" => project.admin("admin@nvidia.com").build(&root),
            _ => project.client("site-1").build(&root),
        };
        (case.breakage)(&kit);
        let config = write_file(&root.join("docker.yaml"), CONFIG);
        let message = case.message.replace("{kit}", &kit.dir.display().to_string());
        let message = if case.is_prefix {
            prefix(message)
        } else {
            exact(message)
        };
        kit_case(case.label, &kit.dir, &config, "INVALID_KIT")
            .msg(message, exact(case.hint))
            .check();
    }
}

fn rm(kit: &Kit, rel: &str) {
    let path = kit.path(rel);
    if path.is_dir() {
        fs::remove_dir_all(&path).expect("rm -r");
    } else {
        fs::remove_file(&path).expect("rm");
    }
}

fn put(kit: &Kit, rel: &str, text: &str) {
    kitgen::write(&kit.path(rel), text, 0o644);
}

fn mkdir(kit: &Kit, rel: &str) {
    fs::create_dir(kit.path(rel)).expect("mkdir");
}

fn edit_json(kit: &Kit, rel: &str, edit: impl FnOnce(&mut Value)) {
    let mut doc = kit.read_json(rel);
    edit(&mut doc);
    kitgen::write_json(&kit.path(rel), &doc);
}

#[test]
fn kit_directory_is_missing() {
    let (_tmp, root) = tempdir();
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    let hint = exact("Provide an existing kit directory.");
    let missing = root.join("missing-kit");
    let file = write_file(&root.join("kit-file"), "not a dir");
    for (label, kit) in [("kit missing", missing), ("kit is a file", file)] {
        kit_case(label, &kit, &config, "INVALID_KIT")
            .msg(
                exact(format!("Startup kit directory does not exist: {}", kit.display())),
                hint.clone(),
            )
            .keep(&root)
            .check();
    }
}

#[rustfmt::skip]
#[test]
fn kit_layout_and_role_files() {
    check_broken(&[
        broken("no startup", "client", |k| rm(k, "startup"), "Missing startup directory: {kit}/startup", VALID_KIT),
        broken("startup is a file", "client", |k| { rm(k, "startup"); put(k, "startup", "x") }, "Missing startup directory: {kit}/startup", VALID_KIT),
        broken("no local", "client", |k| rm(k, "local"), "Missing local directory: {kit}/local", VALID_KIT),
        broken("local is a file", "server", |k| { rm(k, "local"); put(k, "local", "x") }, "Missing local directory: {kit}/local", VALID_KIT),
        broken("startup before local", "client", |k| { rm(k, "startup"); rm(k, "local") }, "Missing startup directory: {kit}/startup", VALID_KIT),
        broken("no role file", "client", |k| rm(k, "startup/fed_client.json"), "Expected exactly one role file in startup/, found: none", ROLE_HINT),
        broken("role file is a directory", "client", |k| { rm(k, "startup/fed_client.json"); mkdir(k, "startup/fed_client.json") }, "Expected exactly one role file in startup/, found: none", ROLE_HINT),
        broken("server and client", "client", |k| put(k, "startup/fed_server.json", "{}"), "Expected exactly one role file in startup/, found: ['server', 'client']", ROLE_HINT),
        broken("client and admin", "client", |k| put(k, "startup/fed_admin.json", "{}"), "Expected exactly one role file in startup/, found: ['client', 'admin']", ROLE_HINT),
        broken("server and admin", "server", |k| put(k, "startup/fed_admin.json", "{}"), "Expected exactly one role file in startup/, found: ['server', 'admin']", ROLE_HINT),
        broken("all three", "admin", |k| { put(k, "startup/fed_server.json", "{}"); put(k, "startup/fed_client.json", "{}") }, "Expected exactly one role file in startup/, found: ['server', 'client', 'admin']", ROLE_HINT),
        broken("role before resources", "client", |k| { rm(k, "startup/fed_client.json"); rm(k, "local/resources.json.default") }, "Expected exactly one role file in startup/, found: none", ROLE_HINT),
    ]);
}

#[rustfmt::skip]
#[test]
fn kit_json_files() {
    const RES: &str = "local/resources.json.default";
    const MISSING_RES: &str = "Missing resources.json.default: {kit}/local/resources.json.default";
    const NOT_OBJECT: &str = "resources.json.default must contain a JSON object.";
    check_broken(&[
        broken("resources missing", "client", |k| rm(k, RES), MISSING_RES, VALID_KIT),
        broken("resources is a directory", "server", |k| { rm(k, RES); mkdir(k, RES) }, MISSING_RES, VALID_KIT),
        broken("admin resources missing", "admin", |k| rm(k, RES), MISSING_RES, VALID_KIT),
        broken_prefix("resources invalid", "client", |k| put(k, RES, "{\"components\": [}"), "Failed to parse resources.json.default: ", FIX_JSON),
        broken_prefix("resources empty", "client", |k| put(k, RES, ""), "Failed to parse resources.json.default: ", FIX_JSON),
        broken("resources a list", "client", |k| put(k, RES, "[]"), NOT_OBJECT, FIX_JSON),
        broken("resources a string", "client", |k| put(k, RES, "\"x\""), NOT_OBJECT, FIX_JSON),
        broken("resources null", "server", |k| put(k, RES, "null"), NOT_OBJECT, FIX_JSON),
        broken("resources a number", "client", |k| put(k, RES, "1"), NOT_OBJECT, FIX_JSON),
        broken("resources before role file", "client", |k| { put(k, RES, "[]"); put(k, "startup/fed_client.json", "nope") }, NOT_OBJECT, FIX_JSON),
        broken_prefix("client file invalid", "client", |k| put(k, "startup/fed_client.json", "{client: 1}"), "Failed to parse fed_client.json: ", FIX_JSON),
        broken_prefix("server file invalid", "server", |k| put(k, "startup/fed_server.json", "{\"servers\": [1,]}"), "Failed to parse fed_server.json: ", FIX_JSON),
        broken_prefix("admin file invalid", "admin", |k| put(k, "startup/fed_admin.json", "}"), "Failed to parse fed_admin.json: ", FIX_JSON),
        broken("server file a list", "server", |k| put(k, "startup/fed_server.json", "[{}]"), "fed_server.json must contain a JSON object.", FIX_JSON),
        broken("client file a string", "client", |k| put(k, "startup/fed_client.json", "\"site-1\""), "fed_client.json must contain a JSON object.", FIX_JSON),
        broken("role file before identity", "client", |k| { put(k, "startup/fed_client.json", "[]"); rm(k, "startup/client.key") }, "fed_client.json must contain a JSON object.", FIX_JSON),
    ]);
}

#[rustfmt::skip]
#[test]
fn kit_identity_material() {
    check_broken(&[
        broken("client key", "client", |k| rm(k, "startup/client.key"), "Missing identity material in {kit}/startup: ['client.key']", IDENTITY_HINT),
        broken("all client identity", "client", |k| { rm(k, "startup/client.key"); rm(k, "startup/rootCA.pem"); rm(k, "startup/client.crt") }, "Missing identity material in {kit}/startup: ['rootCA.pem', 'client.crt', 'client.key']", IDENTITY_HINT),
        broken("server cert and key", "server", |k| { rm(k, "startup/server.key"); rm(k, "startup/server.crt") }, "Missing identity material in {kit}/startup: ['server.crt', 'server.key']", IDENTITY_HINT),
        broken("root CA is a directory", "server", |k| { rm(k, "startup/rootCA.pem"); mkdir(k, "startup/rootCA.pem") }, "Missing identity material in {kit}/startup: ['rootCA.pem']", IDENTITY_HINT),
        // A client kit holding server-named files is still missing its own.
        broken("client with server files", "client", |k| {
            fs::rename(k.path("startup/client.crt"), k.path("startup/server.crt")).expect("mv");
            fs::rename(k.path("startup/client.key"), k.path("startup/server.key")).expect("mv");
        }, "Missing identity material in {kit}/startup: ['client.crt', 'client.key']", IDENTITY_HINT),
        broken_prefix("client cert garbage", "client", |k| put(k, "startup/client.crt", "not a certificate\n"), "Failed to parse client.crt: ", CERT_HINT),
        broken_prefix("server cert bad base64", "server", |k| put(k, "startup/server.crt", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"), "Failed to parse server.crt: ", CERT_HINT),
        broken_prefix("server cert is a key", "server", |k| fs::copy(k.path("startup/server.key"), k.path("startup/server.crt")).map(drop).expect("cp"), "Failed to parse server.crt: ", CERT_HINT),
    ]);
}

#[rustfmt::skip]
#[test]
fn kit_role_file_shapes() {
    const SERVERS: &str = "startup/fed_server.json";
    const CLIENT: &str = "startup/fed_client.json";
    check_broken(&[
        broken("servers an object", "server", |k| edit_json(k, SERVERS, |d| d["servers"] = json!({})), "fed_server.json servers must be a list.", FIX_JSON),
        broken("servers a string", "server", |k| edit_json(k, SERVERS, |d| d["servers"] = json!("server1")), "fed_server.json servers must be a list.", FIX_JSON),
        broken("servers[0] a number", "server", |k| edit_json(k, SERVERS, |d| d["servers"] = json!([1])), "fed_server.json servers[0] must be a JSON object.", FIX_JSON),
        broken("servers[0] a list", "server", |k| edit_json(k, SERVERS, |d| d["servers"] = json!([[]])), "fed_server.json servers[0] must be a JSON object.", FIX_JSON),
        broken("client a string", "client", |k| edit_json(k, CLIENT, |d| d["client"] = json!("site-1")), "fed_client.json client must be a JSON object.", FIX_JSON),
        broken("client a list", "client", |k| edit_json(k, CLIENT, |d| d["client"] = json!([])), "fed_client.json client must be a JSON object.", FIX_JSON),
    ]);
}

#[test]
fn kit_certificate_without_organisation() {
    let (_tmp, root) = tempdir();
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    let project = Project::new("proj");
    #[rustfmt::skip]
    let cases = [
        ("client without O", project.client("site-1").org(None).build(&root.join("a")), "client.crt"),
        ("server without O", project.server("server1").org(None).build(&root.join("b")), "server.crt"),
        ("client with empty O", project .client("site-1") .org(Some("")) .build(&root.join("c")), "client.crt"),
        // The organisation is checked before the ports.
        ("org before ports", project .server("server1") .org(None) .admin_port(Some(json!(70000))) .build(&root.join("d")), "server.crt"),
    ];
    for (label, kit, cert) in cases {
        kit_case(label, &kit.dir, &config, "INVALID_KIT")
            .msg(exact(format!("Missing organization in {cert}.")), exact(CERT_HINT))
            .check();
    }
}

#[test]
fn kit_ports_out_of_range() {
    let port_msg = |key: &str, port: &str| {
        format!("fed_server.json servers[0].{key} has port {port}; a port must be between 1 and 65535.")
    };
    #[rustfmt::skip]
    let cases: [(&str, Option<Value>, Option<&str>, String); 7] = [
        ("admin port too big", Some(json!(70000)), None, port_msg("admin_port", "70000")),
        ("admin port 65536", Some(json!(65536)), None, port_msg("admin_port", "65536")),
        ("admin port zero", Some(json!(0)), None, port_msg("admin_port", "0")),
        ("admin port negative", Some(json!(-1)), None, port_msg("admin_port", "-1")),
        ("target port too big", None, Some("server1:70000"), port_msg("service.target", "70000")),
        ("target port zero", Some(json!(8003)), Some("server1:0"), port_msg("service.target", "0")),
        ("target port negative", None, Some("server1:-5"), port_msg("service.target", "-5")),
    ];
    let (_tmp, root) = tempdir();
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    let project = Project::new("proj");
    for (i, (label, admin_port, target, message)) in cases.into_iter().enumerate() {
        let kit = project
            .server("server1")
            .admin_port(admin_port)
            .build(&root.join(format!("k{i}")));
        if let Some(target) = target {
            edit_json(&kit, "startup/fed_server.json", |d| {
                d["servers"][0]["service"]["target"] = json!(target)
            });
        }
        kit_case(label, &kit.dir, &config, "INVALID_KIT")
            .msg(exact(message), exact(FIX_JSON))
            .check();
    }
}

#[test]
fn admin_kit_is_unsupported() {
    // spec 8 case 32
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").admin("admin@nvidia.com").build(&root);
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    let message = exact("Admin startup kits are not supported by 'nvflare deploy prepare'.");
    let hint = exact("Use a server or client startup kit.");
    kit_case("admin kit", &kit.dir, &config, "UNSUPPORTED_KIT")
        .msg(message.clone(), hint.clone())
        .check();
    // Also with the default config and output, and before any output check.
    kit.write_config(CONFIG);
    Case::new("admin kit, defaults", os(&[&"prepare", &kit.dir]), "UNSUPPORTED_KIT")
        .msg(message.clone(), hint.clone())
        .keep(&kit.dir)
        .output(&kit.path("prepared/docker"))
        .check();
    Case::new(
        "admin kit, output is the kit",
        os(&[&"prepare", &kit.dir, &"--output", &kit.dir]),
        "UNSUPPORTED_KIT",
    )
    .msg(message, hint)
    .keep(&kit.dir)
    .check();
}

// ---------------------------------------------------------------------------------------
// errors while patching the staged copy (spec 4.3, 4.4; deviation 2): nothing is left

#[test]
fn malformed_resources_and_comm_config_leave_nothing_behind() {
    let res = "local/resources.json.default";
    let comm = "local/comm_config.json";
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Value, Text, &str)> = vec![
        ("components an object", res, json!({"format_version": 2, "components": {}}), exact("resources.json.default components must be a list."), FIX_RESOURCES),
        ("components null", res, json!({"components": null}), exact("resources.json.default components must be a list."), FIX_RESOURCES),
        ("components a string", res, json!({"components": "x"}), exact("resources.json.default components must be a list."), FIX_RESOURCES),
        ("component a number", res, json!({"components": [{"id": "a"}, 1]}), exact("resources.json.default components must contain only JSON objects."), FIX_RESOURCES),
        ("component a string", res, json!({"components": ["process_launcher"]}), exact("resources.json.default components must contain only JSON objects."), FIX_RESOURCES),
        ("internal a string", comm, json!({"internal": "tcp"}), exact("comm_config.json internal must be a mapping."), FIX_COMM),
        ("internal null", comm, json!({"internal": null}), exact("comm_config.json internal must be a mapping."), FIX_COMM),
        ("internal a list", comm, json!({"internal": []}), exact("comm_config.json internal must be a mapping."), FIX_COMM),
        ("resources a string", comm, json!({"internal": {"scheme": "tcp", "resources": "x"}}), exact("comm_config.json internal.resources must be a mapping."), FIX_COMM),
        ("resources null", comm, json!({"internal": {"resources": null}}), exact("comm_config.json internal.resources must be a mapping."), FIX_COMM),
        ("comm config a list", comm, json!([]), exact("comm_config.json must contain a JSON object."), FIX_JSON),
    ];
    let project = Project::new("proj");
    for role in ["client", "server"] {
        for (label, rel, doc, message, hint) in &cases {
            let (_tmp, root) = tempdir();
            let kit = match role {
                "server" => project.server("server1").build(&root),
                _ => project.client("site-1").build(&root),
            };
            kitgen::write_json(&kit.path(rel), doc);
            let config = write_file(&root.join("docker.yaml"), CONFIG);
            // default output inside the kit: staging under <kit>/prepared, which is removed
            // again with the kit root's times restored
            kit_case(format!("{role}: {label}"), &kit.dir, &config, "INVALID_KIT")
                .msg(message.clone(), exact(*hint))
                .check();
            // explicit output outside the kit, in a directory that does not exist yet
            let output = root.join("outputs").join("site");
            Case::new(
                format!("{role}: {label}, explicit output"),
                os(&[&"prepare", &kit.dir, &"--config", &config, &"--output", &output]),
                "INVALID_KIT",
            )
            .msg(message.clone(), exact(*hint))
            .keep(&kit.dir)
            .output(&output)
            .check();
        }
    }
    // A comm config that is not JSON at all.
    let (_tmp, root) = tempdir();
    let kit = project.client("site-1").build(&root);
    put(&kit, comm, "{\"internal\": ");
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    kit_case("comm config invalid", &kit.dir, &config, "INVALID_KIT")
        .msg(prefix("Failed to parse comm_config.json: "), exact(FIX_JSON))
        .check();
}

#[test]
fn failed_prepare_keeps_the_previous_output() {
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    kit.write_config(CONFIG);
    let explicit = root.join("out");
    for args in [
        os(&[&"prepare", &kit.dir]),
        os(&[&"prepare", &kit.dir, &"--output", &explicit]),
    ] {
        flare_deploy(&args).assert_ok();
    }
    // Break the kit after the first prepare: the copy fails while patching comm config.
    kitgen::write_json(&kit.path("local/comm_config.json"), &json!({"internal": 5}));
    let message = exact("comm_config.json internal must be a mapping.");
    // The earlier default output lives in the kit: the kit snapshot covers it.
    Case::new("default output kept", os(&[&"prepare", &kit.dir]), "INVALID_KIT")
        .msg(message.clone(), exact(FIX_COMM))
        .keep(&kit.dir)
        .mtime_may_change("prepared")
        .check();
    Case::new(
        "explicit output kept",
        os(&[&"prepare", &kit.dir, &"--output", &explicit]),
        "INVALID_KIT",
    )
    .msg(message, exact(FIX_COMM))
    .keep(&kit.dir)
    .keep(&explicit)
    .check();
    let prepared: Vec<String> = fs::read_dir(kit.path("prepared"))
        .expect("prepared")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(prepared, ["docker"], "nothing but the previous output under prepared/");
}

// ---------------------------------------------------------------------------------------
// section 5: the output location

#[test]
fn output_that_is_or_contains_the_kit() {
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    let message = exact("--output must not be the same as --kit or contain it.");
    for (label, output) in [
        ("output is the kit", kit.dir.clone()),
        ("output is the kit's parent", root.clone()),
        ("output is the root", PathBuf::from("/")),
        (
            "output is the kit with a trailing slash",
            PathBuf::from(format!("{}/", kit.dir.display())),
        ),
        ("output is the kit via ..", kit.path("startup/..")),
    ] {
        Case::new(
            label,
            os(&[&"prepare", &kit.dir, &"--config", &config, &"--output", &output]),
            "INVALID_ARGS",
        )
        .msg(message.clone(), exact(OUTPUT_HINT))
        .keep(&kit.dir)
        .check();
    }
    Case::new(
        "relative output .",
        os(&[&"prepare", &".", &"--config", &config, &"--output", &"."]),
        "INVALID_ARGS",
    )
    .msg(message, exact(OUTPUT_HINT))
    .cwd(&kit.dir)
    .keep(&kit.dir)
    .check();
}

#[test]
fn output_inside_the_kit_outside_prepared() {
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    let link = root.join("kit-link");
    std::os::unix::fs::symlink(&kit.dir, &link).expect("symlink");
    let prepared = kit.path("prepared");
    #[rustfmt::skip]
    let cases = [
        ("nested new dir", kit.path("foo/bar"), kit.path("foo/bar")),
        ("startup", kit.path("startup"), kit.path("startup")),
        ("local subdir", kit.path("local/out"), kit.path("local/out")),
        ("prepared itself", prepared.clone(), prepared.clone()),
        ("prepared-like sibling", kit.path("prepared2/docker"), kit.path("prepared2/docker")),
        ("through a symlink", link.join("out"), kit.path("out")),
    ];
    for (label, given, resolved) in cases {
        let mut case = Case::new(
            label,
            os(&[&"prepare", &kit.dir, &"--config", &config, &"--output", &given]),
            "INVALID_ARGS",
        )
        .msg(
            exact(format!(
                "--output must not be inside the input kit, except under {}: {}",
                prepared.display(),
                resolved.display()
            )),
            exact(OUTPUT_HINT),
        )
        .keep(&kit.dir);
        if !resolved.exists() {
            case = case.output(&resolved);
        }
        case.check();
    }
}

#[test]
fn output_that_exists_and_is_not_usable() {
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    let run_with = |label: &str, output: &Path| {
        Case::new(
            label,
            os(&[&"prepare", &kit.dir, &"--config", &config, &"--output", &output]),
            "INVALID_ARGS",
        )
        .keep(&kit.dir)
        .keep(&root)
    };
    // a file
    let file = write_file(&root.join("out-file"), "data");
    run_with("output is a file", &file)
        .msg(
            exact(format!("Output path exists and is not a directory: {}", file.display())),
            exact("Choose a directory path."),
        )
        .check();
    // a file where the default output goes
    let kit2_root = root.join("k2");
    let kit2 = client_kit(&kit2_root);
    kit2.write_config(CONFIG);
    let default_out = kit2.path("prepared/docker");
    write_file(&default_out, "not a dir");
    Case::new("default output is a file", os(&[&"prepare", &kit2.dir]), "INVALID_ARGS")
        .msg(
            exact(format!(
                "Output path exists and is not a directory: {}",
                default_out.display()
            )),
            exact("Choose a directory path."),
        )
        .keep(&kit2.dir)
        .check();
    // non-empty directories that flare-deploy did not write (deviation O4): the message
    // names what is there
    let not_ours = |d: &Path, found: &str| {
        exact(format!(
            "Output directory is not empty and holds no flare-deploy receipt (found {found}): {}",
            d.display()
        ))
    };
    let with_file = root.join("docs");
    write_file(&with_file.join("important.txt"), "keep me");
    run_with("directory with a file", &with_file)
        .msg(not_ours(&with_file, "important.txt"), exact(NOT_OURS_HINT))
        .check();
    let only_startup = root.join("half");
    fs::create_dir_all(only_startup.join("startup")).expect("mkdir");
    run_with("directory with only startup/", &only_startup)
        .msg(not_ours(&only_startup, "startup/"), exact(NOT_OURS_HINT))
        .check();
    let local_file = root.join("half2");
    fs::create_dir_all(local_file.join("startup")).expect("mkdir");
    write_file(&local_file.join("local"), "file, not dir");
    run_with("startup/ and a local file", &local_file)
        .msg(not_ours(&local_file, "local, startup/"), exact(NOT_OURS_HINT))
        .check();
    let hidden = root.join("hidden");
    write_file(&hidden.join(".keep"), "");
    run_with("directory with a hidden file", &hidden)
        .msg(not_ours(&hidden, ".keep"), exact(NOT_OURS_HINT))
        .check();
}

#[test]
fn output_parent_cannot_be_created() {
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    let blocker = write_file(&root.join("blocker"), "a file");
    for (label, output, parent) in [
        ("parent is a file", blocker.join("out"), blocker.clone()),
        ("grandparent is a file", blocker.join("sub/out"), blocker.join("sub")),
    ] {
        Case::new(
            label,
            os(&[&"prepare", &kit.dir, &"--config", &config, &"--output", &output]),
            "INVALID_ARGS",
        )
        .msg(
            exact(format!("Cannot create output parent directory: {}", parent.display())),
            prefix("Check the path: "),
        )
        .keep(&kit.dir)
        .keep(&root)
        .check();
    }
}

#[test]
fn output_parent_is_not_writable() {
    // Root may write anywhere on a normal filesystem, so use ones nobody can write:
    // procfs refuses new entries, sysfs refuses mkdir.
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    for (label, output, message) in [
        (
            "parent on procfs",
            PathBuf::from("/proc/flare-deploy-test-out"),
            "Cannot create the lock file /proc/.flare-deploy-test-out.lock".to_string(),
        ),
        (
            "parent on sysfs",
            PathBuf::from("/sys/kernel/flare-deploy-test/out"),
            "Cannot create output parent directory: /sys/kernel/flare-deploy-test".to_string(),
        ),
    ] {
        Case::new(
            label,
            os(&[&"prepare", &kit.dir, &"--config", &config, &"--output", &output]),
            "INVALID_ARGS",
        )
        .msg(exact(message), prefix("Check the"))
        .keep(&kit.dir)
        .check();
        assert!(!output.exists(), "{label}");
    }
}

#[test]
fn kit_errors_come_before_output_errors() {
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    rm(&kit, "startup/client.key");
    let config = write_file(&root.join("docker.yaml"), CONFIG);
    Case::new(
        "identity before output",
        os(&[&"prepare", &kit.dir, &"--config", &config, &"--output", &kit.dir]),
        "INVALID_KIT",
    )
    .msg(
        exact(format!(
            "Missing identity material in {}: ['client.key']",
            kit.path("startup").display()
        )),
        exact(IDENTITY_HINT),
    )
    .keep(&kit.dir)
    .check();
}

// ---------------------------------------------------------------------------------------
// usage errors (deviation 11)

#[test]
fn usage_errors_exit_4_with_invalid_args() {
    let (_tmp, root) = tempdir();
    let kit = client_kit(&root);
    kit.write_config(CONFIG);
    let before = Snapshot::take(&kit.dir, &[]);
    let k = kit.dir.display().to_string();
    #[rustfmt::skip]
    let cases: Vec<Vec<&str>> = vec![
        vec!["prepare", &k, "--bogus"],
        vec!["prepare", &k, "extra-positional"],
        vec!["prepare", &k, "--output"],
        vec!["bogus-command"],
        // Bare `flare-deploy` prints the help and exits 0 (deviation L6); options without
        // a command stay a usage error.
        vec!["--verbose"],
    ];
    for args in &cases {
        // txt
        let run = flare_deploy(args);
        assert_eq!(run.code, 4, "{args:?}\n{}", run.stderr);
        assert!(
            run.stderr.ends_with("Code: INVALID_ARGS (exit 4)\n"),
            "{args:?}\n{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        // json
        let mut json_args = vec!["--format", "json"];
        json_args.extend(args.iter().copied());
        let run = flare_deploy(&json_args);
        assert_eq!(run.code, 4, "{json_args:?}\n{}", run.stdout);
        assert_eq!(
            run.stdout.matches('\n').count(),
            1,
            "{json_args:?}: one line\n{}",
            run.stdout
        );
        let doc = run.json();
        assert_eq!(doc["status"], "error", "{json_args:?}");
        assert_eq!(doc["exit_code"], 4, "{json_args:?}");
        assert_eq!(doc["error_code"], "INVALID_ARGS", "{json_args:?}");
        assert!(doc["message"].as_str().is_some_and(|m| !m.is_empty()), "{json_args:?}");
    }
    // A bad --format value cannot be honoured: exit 4 and INVALID_ARGS in txt.
    for value in ["xml", "jsonl", ""] {
        let run = flare_deploy(["prepare", &k, "--format", value]);
        assert_eq!(run.code, 4, "--format {value:?}\n{}", run.stderr);
        assert!(
            run.stderr.contains("Code: INVALID_ARGS (exit 4)"),
            "--format {value:?}\n{}",
            run.stderr
        );
    }
    Snapshot::take(&kit.dir, &[]).assert_same_as(&before, "input kit");
    assert!(!kit.path("prepared").exists());
}
