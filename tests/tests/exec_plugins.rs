//! Executable runtime plugins (docs/plugin-protocol.md): the example Python plugin
//! `examples/plugins/flare-deploy-target-podman` through the whole protocol, how plugins
//! are found, what the engine sends, and every failure of the protocol's table with small
//! misbehaving plugins written into a temporary directory. After each failure: exit 4,
//! the documented code, the input kit untouched, no output, no staging directory left
//! behind, and no plugin process left running.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flare_deploy_tests::fsutil::{plugins_dir, tempdir};
use flare_deploy_tests::harness::{prepare_all_argv, prepare_with, run_in};
use flare_deploy_tests::kitgen::{
    self, component, DOCKER_CLIENT_LAUNCHER, DOCKER_SERVER_LAUNCHER, PASSTHROUGH_RESOURCE_MANAGER,
};
use flare_deploy_tests::{Kit, Project, Run, Snapshot};
use serde_json::{json, Value};

const WORKSPACE: &str = "/var/tmp/nvflare/workspace";
const WARN_RESOURCE_MANAGER: &str = "Warning: deploy prepare replaces component 'resource_manager' with PassthroughResourceManager; existing resource manager path/args will not be used by the prepared runtime.";

fn podman_config() -> PathBuf {
    plugins_dir().join("podman.yaml")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A kit in `<root>/kits/<name>`, the output `<root>/outs/out` (its parent exists and is
/// empty) and a directory for plugins `<root>/plugins`.
struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    kit: Kit,
    out_parent: PathBuf,
    output: PathBuf,
    plugin_dir: PathBuf,
}

impl Setup {
    fn client() -> Setup {
        Setup::new(|p, dir| p.client("site-1").build(dir))
    }

    fn server() -> Setup {
        Setup::new(|p, dir| {
            p.server("server1")
                .fed_port(8102)
                .admin_port(Some(json!(8103)))
                .build(dir)
        })
    }

    fn new(build: impl FnOnce(&Project, &Path) -> Kit) -> Setup {
        let (tmp, root) = tempdir();
        let kit = build(&Project::new("example_project"), &root.join("kits"));
        let out_parent = root.join("outs");
        let plugin_dir = root.join("plugins");
        std::fs::create_dir_all(&out_parent).expect("mkdir outs");
        std::fs::create_dir_all(&plugin_dir).expect("mkdir plugins");
        Setup {
            _tmp: tmp,
            output: out_parent.join("out"),
            root,
            kit,
            out_parent,
            plugin_dir,
        }
    }

    /// Writes `<root>/<file>` with `runtime: <runtime>` and a `parent:` section.
    fn config(&self, file: &str, runtime: &str) -> PathBuf {
        let path = self.root.join(file);
        std::fs::write(
            &path,
            format!("runtime: {runtime}\nparent:\n  image: example/image:1\n"),
        )
        .expect("write config");
        path
    }

    /// `prepare <kit> --config <config> --output <output> [extra]` with `env`.
    fn prepare(&self, config: &Path, env: &[(&str, &str)], extra: &[&str]) -> Run {
        prepare_with(&self.kit.dir, config, &self.output, extra, env)
    }

    /// Entries of the output's parent, except `allowed`.
    fn out_parent_entries(&self, allowed: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.out_parent)
            .expect("read outs")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| !allowed.contains(&n.as_str()))
            .collect();
        names.sort();
        names
    }
}

/// Panics with the paths that differ unless the two pictures are equal.
#[track_caller]
fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    let changed: Vec<String> = before
        .0
        .keys()
        .chain(after.0.keys())
        .filter(|p| before.0.get(*p) != after.0.get(*p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(changed.is_empty(), "{what} changed: {changed:?}");
}

/// PIDs of running processes whose command line mentions `plugin`.
fn plugin_processes(plugin: &Path) -> Vec<String> {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg("--")
        .arg(plugin)
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Asserts that no process of `plugin` runs; kills any that does, by PID, before
/// failing. flare-deploy has exited, so nothing can start one any more: the loop waits
/// for a SIGKILLed process to disappear, and its bound is only when to give up (generous,
/// for a loaded machine; a healthy run leaves the loop at the first look).
#[track_caller]
fn assert_no_plugin_process(plugin: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left = plugin_processes(plugin);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = plugin_processes(plugin);
    }
    for pid in &left {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
    assert!(
        left.is_empty(),
        "plugin processes left running after flare-deploy exited: {left:?} ({})",
        plugin.display()
    );
}

/// Everything the failure table promises besides the code: the input kit as it was, no
/// output, no staging directory in the output's parent, no plugin process.
#[track_caller]
fn assert_failed_cleanly(setup: &Setup, before: Option<&Snapshot>, plugin: &Path, allowed: &[&str]) {
    if let Some(before) = before {
        assert_unchanged(before, &Snapshot::take(&setup.kit.dir, &[]), "the input kit");
    }
    assert!(
        !setup.output.exists(),
        "no output may be written: {}",
        setup.output.display()
    );
    let left = setup.out_parent_entries(allowed);
    assert!(
        left.is_empty(),
        "left behind in the output's parent (staging directories are .out.prepare-*): {left:?}"
    );
    assert!(
        !setup.kit.dir.join("prepared").exists(),
        "nothing written under the kit's prepared/"
    );
    assert_no_plugin_process(plugin);
}

// ---------------------------------------------------------------------------------------
// misbehaving plugins

/// A plugin that follows the protocol except for `MODE` at the request `STAGE`.
const TEST_PLUGIN: &str = r#"#!/usr/bin/env python3
import json, os, sys, time

NAME = "@NAME@"
MODE = "@MODE@"
STAGE = "@STAGE@"
seen = []


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def result_for(method, params):
    if method == "handshake":
        return {"protocol_version": 99 if MODE == "bad_version" else 1,
                "name": "someone-else" if MODE == "bad_name" else NAME}
    if method == "describe":
        answer = {"name": NAME, "summary": "a test plugin (" + MODE + ")",
                  "config_schema": {"type": "object"}}
        if MODE == "only_2_8":
            answer["nvflare_releases"] = ["2.8"]
        return answer
    if method == "validate":
        if MODE == "record" and os.environ.get("RECORDER_LOG"):
            write(os.environ["RECORDER_LOG"], json.dumps({"requests": seen, "cwd": os.getcwd()}))
        if MODE == "only_2_8" and params.get("nvflare_release") != "2.8":
            pass  # the engine refuses before prepare; validate itself accepts
        if MODE == "validate_errors":
            return {"errors": [{"path": "parent.size", "message": "must be positive"},
                               {"path": "parent.other", "message": "is also wrong"}]}
        if MODE == "validate_errors_hint":
            return {"errors": [{"path": "parent.size", "message": "parent.size must be positive",
                                "hint": "Use a size above zero."}]}
        return {"errors": []}
    if method == "prepare":
        staging, output = params["staging_dir"], params["output"]
        write(os.path.join(staging, "plugin-was-here.txt"), staging)
        if MODE == "record":
            write(os.path.join(staging, "transcript.json"),
                  json.dumps({"requests": seen, "cwd": os.getcwd(), "argv": sys.argv}))
        if MODE == "write_parent":
            write(os.path.join(os.path.dirname(output), "intruder.txt"), "outside")
        if MODE == "touch_kit":
            with open(os.path.join(params["kit"]["input_dir"], "local", "resources.json.default"), "a") as f:
                f.write(" ")
        if MODE == "write_previous_output":
            write(os.path.join(output, "local", "intruder.txt"), "outside")
        edits = {}
        if MODE == "bad_edits":
            edits = {"launcher": "docker_launcher"}
        if MODE == "unknown_edit":
            edits = {"frobnicate": True}
        if MODE == "empty_launcher_path":
            edits = {"launcher": {"id": "docker_launcher", "path": ""}}
        return {"result": {"start_command": "start-it", "plugin_field": 7},
                "warnings": ["the test plugin warns"] if MODE == "record" else [],
                "edits": edits}
    raise ValueError("unknown method " + repr(method))


for line in sys.stdin:
    request = json.loads(line)
    seen.append(request)
    method, rid = request["method"], request["id"]
    if method == STAGE:
        if MODE == "invalid_json":
            sys.stdout.write("this is not JSON\n")
            sys.stdout.flush()
            continue
        if MODE == "missing_id":
            send({"protocol": 1, "result": result_for(method, request["params"])})
            continue
        if MODE == "wrong_id":
            send({"protocol": 1, "id": rid + 100, "result": result_for(method, request["params"])})
            continue
        if MODE == "no_result":
            send({"protocol": 1, "id": rid})
            continue
        if MODE == "exit_before":
            sys.stderr.write("kaboom: the test plugin gives up\n")
            sys.exit(3)
        if MODE.startswith("error_"):
            code = MODE[len("error_"):].upper()
            send({"protocol": 1, "id": rid, "error": {"code": code, "message": "the test plugin refuses (" + code + ")",
                                                     "hint": "Ask the plugin's author."}})
            continue
        if MODE == "hang":
            time.sleep(120)
    send({"protocol": 1, "id": rid, "result": result_for(method, request["params"])})

if MODE == "exit_nonzero_end":
    sys.stderr.write("kaboom at the end\n")
    sys.exit(7)
if MODE == "hang_end":
    time.sleep(120)
"#;

/// Writes `flare-deploy-target-<name>` into `dir` with `text` and `mode`.
fn write_plugin(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(format!("flare-deploy-target-{name}"));
    kitgen::write(&path, text, mode);
    path
}

fn test_plugin(dir: &Path, name: &str, mode: &str, stage: &str) -> PathBuf {
    let text = TEST_PLUGIN
        .replace("@NAME@", name)
        .replace("@MODE@", mode)
        .replace("@STAGE@", stage);
    write_plugin(dir, name, &text, 0o755)
}

/// Runs prepare with the plugin `mode` at `stage` (runtime `<name>`, found through
/// `FLARE_DEPLOY_PLUGIN_PATH`) and checks the code and the clean failure.
/// Runs prepare for runtime `name`, whose plugin is already in the setup's plugin
/// directory; returns the run and a snapshot of the kit taken just before it.
fn prepare_with_plugin(setup: &Setup, name: &str, extra_env: &[(&str, &str)]) -> (Run, Snapshot) {
    let config = setup.config("plugin.yaml", name);
    let before = Snapshot::take(&setup.kit.dir, &[]);
    let mut env = vec![("FLARE_DEPLOY_PLUGIN_PATH", path_str(&setup.plugin_dir))];
    env.extend_from_slice(extra_env);
    (setup.prepare(&config, &env, &[]), before)
}

fn check_failure(mode: &str, stage: &str, code: &str, message_prefix: &str) -> Run {
    let setup = Setup::client();
    let name = "misfit";
    let plugin = test_plugin(&setup.plugin_dir, name, mode, stage);
    let (run, before) = prepare_with_plugin(&setup, name, &[]);
    run.assert_error_code(code, &message_prefix.replace("{plugin}", path_str(&plugin)));
    assert_eq!(run.stdout, "", "{mode}: nothing on stdout");
    assert_failed_cleanly(&setup, Some(&before), &plugin, &[]);
    run
}

// ---------------------------------------------------------------------------------------
// the example plugin

/// The example plugin, copied into this test's own plugin directory: tests run in
/// parallel and look for leftover plugin processes by path.
fn podman_env(setup: &Setup) -> [(&'static str, String); 1] {
    let copy = setup.plugin_dir.join("flare-deploy-target-podman");
    std::fs::copy(plugins_dir().join("flare-deploy-target-podman"), &copy).expect("copy the example plugin");
    [(
        "FLARE_DEPLOY_PLUGIN_PATH",
        setup.plugin_dir.to_string_lossy().into_owned(),
    )]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `bash -n` of a script.
fn assert_bash_syntax(script: &Path) {
    let out = Command::new("bash")
        .arg("-n")
        .arg(script)
        .output()
        .expect("run bash -n");
    assert!(
        out.status.success(),
        "bash -n {}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks a kit prepared by the podman plugin.
fn check_podman_output(setup: &Setup, run: &Run, role: &str, name: &str) {
    let out = path_str(&setup.output);
    let data = &run.json()["data"];
    let keys: Vec<&str> = data.as_object().expect("data").keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["runtime", "role", "name", "output", "start_command", "start_script"],
        "the engine's fields, then the plugin's: {data}"
    );
    assert_eq!(data["runtime"], "podman");
    assert_eq!(data["role"], role);
    assert_eq!(data["name"], name);
    assert_eq!(data["output"], out);
    assert_eq!(data["start_command"], format!("{out}/startup/start_podman.sh"));
    assert_eq!(data["start_script"], format!("{out}/startup/start_podman.sh"));

    let script = setup.output.join("startup/start_podman.sh");
    let mode = std::fs::metadata(&script)
        .expect("start_podman.sh exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "start_podman.sh is executable: {mode:o}");
    assert_bash_syntax(&script);

    let resources = kitgen::read_json(&setup.output.join("local/resources.json.default"));
    let launcher = component(&resources, "docker_launcher").expect("docker_launcher");
    assert_eq!(
        launcher["path"],
        if role == "server" {
            DOCKER_SERVER_LAUNCHER
        } else {
            DOCKER_CLIENT_LAUNCHER
        }
    );
    assert_eq!(launcher["args"]["network"], "nvflare-network");
    assert_eq!(
        component(&resources, "resource_manager").expect("resource_manager")["path"],
        PASSTHROUGH_RESOURCE_MANAGER
    );
    assert!(component(&resources, "process_launcher").is_none());
    assert!(component(&resources, "resource_consumer").is_none());
    assert!(
        !setup.output.join("local/resources.json").exists(),
        "the stale resources.json is removed"
    );

    let comm = kitgen::read_json(&setup.output.join("local/comm_config.json"));
    assert_eq!(comm["internal"]["scheme"], "tcp");
    assert_eq!(comm["internal"]["resources"]["host"], "0.0.0.0");
    assert!(setup.output.join("local/study_data.yaml").is_file());
    for legacy in ["start.sh", "sub_start.sh", "stop_fl.sh", "docker.sh"] {
        assert!(
            !setup.output.join("startup").join(legacy).exists(),
            "{legacy} is removed"
        );
    }
    assert_eq!(
        setup.out_parent_entries(&["out"]),
        Vec::<String>::new(),
        "no staging directory left"
    );
}

#[test]
fn podman_plugin_prepares_a_client_kit() {
    let setup = Setup::client();
    let before = Snapshot::take(&setup.kit.dir, &[]);
    let env = podman_env(&setup);
    let run = setup.prepare(&podman_config(), &env_refs(&env), &["--format", "json"]);
    run.assert_ok();
    assert!(
        run.stderr.contains(WARN_RESOURCE_MANAGER),
        "the reference's launcher warnings: {}",
        run.stderr
    );
    check_podman_output(&setup, &run, "client", "site-1");
    let script = std::fs::read_to_string(setup.output.join("startup/start_podman.sh")).expect("read script");
    assert!(script.contains("nvflare/nvflare:2.8.1"), "{script}");
    assert!(script.contains("uid=site-1"), "{script}");
    assert!(
        !script.split_whitespace().any(|w| w == "-p"),
        "a client publishes no ports: {script}"
    );
    assert_unchanged(&before, &Snapshot::take(&setup.kit.dir, &[]), "the input kit");
    assert_no_plugin_process(&setup.plugin_dir.join("flare-deploy-target-podman"));
}

#[test]
fn podman_plugin_prepares_a_server_kit() {
    let setup = Setup::server();
    let before = Snapshot::take(&setup.kit.dir, &[]);
    let env = podman_env(&setup);
    let run = setup.prepare(&podman_config(), &env_refs(&env), &["--format", "json"]);
    run.assert_ok();
    check_podman_output(&setup, &run, "server", "server1");
    let script = std::fs::read_to_string(setup.output.join("startup/start_podman.sh")).expect("read script");
    let words: Vec<&str> = script.split_whitespace().filter(|w| *w != "\\").collect();
    let published: Vec<&str> = words.windows(2).filter(|w| w[0] == "-p").map(|w| w[1]).collect();
    assert_eq!(published, ["8102:8102", "8103:8103"], "{script}");
    let resources = kitgen::read_json(&setup.output.join("local/resources.json.default"));
    assert_eq!(
        component(&resources, "job_manager").expect("job_manager")["args"]["uri_root"],
        format!("{WORKSPACE}/jobs-storage"),
        "server_storage edit"
    );
    assert_eq!(
        resources["snapshot_persistor"]["args"]["storage"]["args"]["root_dir"],
        format!("{WORKSPACE}/snapshot-storage")
    );
    assert_unchanged(&before, &Snapshot::take(&setup.kit.dir, &[]), "the input kit");
}

#[test]
fn podman_plugin_prints_txt_results_after_the_engine_fields() {
    let setup = Setup::client();
    let env = podman_env(&setup);
    let run = setup.prepare(&podman_config(), &env_refs(&env), &[]);
    run.assert_ok();
    let out = path_str(&setup.output);
    let result: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with("Warning: ")).collect();
    assert_eq!(
        result,
        [
            "runtime: podman".to_string(),
            "role: client".to_string(),
            "name: site-1".to_string(),
            format!("output: {out}"),
            format!("start_command: {out}/startup/start_podman.sh"),
            format!("start_script: {out}/startup/start_podman.sh"),
        ]
    );
}

#[test]
fn podman_config_errors_name_the_key() {
    // The plugin declares `parent.image` required in its config_schema: the engine's
    // schema check refuses the config before the plugin's own validate runs.
    let setup = Setup::client();
    let before = Snapshot::take(&setup.kit.dir, &[]);
    let config = setup.root.join("podman-noimage.yaml");
    std::fs::write(&config, "runtime: podman\nparent:\n  network: n1\n").expect("write config");
    let env = podman_env(&setup);
    let run = setup.prepare(&config, &env_refs(&env), &[]);
    run.assert_txt_error(
        "INVALID_CONFIG",
        "parent.image: \"image\" is a required property (JSON pointer /parent/image)",
        "The config does not match the schema the plugin 'podman' declares (flare-deploy targets show podman); fix that key.",
    );
    assert_failed_cleanly(
        &setup,
        Some(&before),
        &setup.plugin_dir.join("flare-deploy-target-podman"),
        &[],
    );
}

#[test]
fn podman_plugin_is_found_on_path_too() {
    let setup = Setup::client();
    let path = format!(
        "{}:{}",
        plugins_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [("FLARE_DEPLOY_PLUGIN_PATH", ""), ("PATH", path.as_str())];
    let run = setup.prepare(&podman_config(), &env, &["--format", "json"]);
    run.assert_ok();
    check_podman_output(&setup, &run, "client", "site-1");

    let run = run_in(None, ["targets", "--format", "json"], &env);
    run.assert_ok();
    let podman = run.json()["data"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["name"] == "podman")
        .cloned()
        .expect("podman listed");
    assert_eq!(podman["origin"], "executable");
    assert_eq!(
        podman["path"],
        path_str(&plugins_dir().join("flare-deploy-target-podman"))
    );
}

/// Asserts the unknown-runtime error: `message` exactly, and a hint that begins as the
/// reference's (the rest of the hint, which names the value given and the plugin path,
/// is pinned in errors.rs).
#[track_caller]
fn assert_unknown_runtime(run: &Run, message: &str) {
    run.assert_error_code("INVALID_CONFIG", message);
    assert!(
        run.stderr
            .starts_with(&format!("{message}\nHint: Set a supported runtime")),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_runtime_is_invalid_config_listing_the_known_runtimes() {
    let setup = Setup::client();
    let config = setup.config("nosuch.yaml", "nosuch");
    let empty = setup.root.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let before = Snapshot::take(&setup.kit.dir, &[]);

    // Only the built-in targets (an empty plugin path and PATH). The expected lists are
    // written out literally (the reference's "a, b, or c" wording), not built from the
    // binary's own `targets` output.
    let bare = [
        ("FLARE_DEPLOY_PLUGIN_PATH", path_str(&empty)),
        ("PATH", path_str(&empty)),
    ];
    let run = setup.prepare(&config, &bare, &[]);
    assert_unknown_runtime(
        &run,
        "Config must contain runtime: docker, runtime: k8s, or runtime: slurm.",
    );
    assert_failed_cleanly(&setup, Some(&before), &empty.join("none"), &[]);

    // With the example plugin the list grows, in name order.
    let env = podman_env(&setup);
    let run = setup.prepare(&config, &env_refs(&env), &[]);
    assert_unknown_runtime(
        &run,
        "Config must contain runtime: docker, runtime: k8s, runtime: podman, or runtime: slurm.",
    );
    assert_failed_cleanly(&setup, Some(&before), &empty.join("none"), &[]);
}

// ---------------------------------------------------------------------------------------
// discovery

#[test]
fn a_linked_target_wins_over_a_plugin_of_the_same_name() {
    let setup = Setup::client();
    let marker = setup.root.join("docker-plugin-ran");
    let plugin = write_plugin(
        &setup.plugin_dir,
        "docker",
        &format!("#!/usr/bin/env bash\ntouch '{}'\nexit 1\n", marker.display()),
        0o755,
    );
    let env = [("FLARE_DEPLOY_PLUGIN_PATH", path_str(&setup.plugin_dir))];
    let run = run_in(None, ["targets", "--format", "json"], &env);
    run.assert_ok();
    let docker: Vec<Value> = run.json()["data"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| t["name"] == "docker")
        .cloned()
        .collect();
    assert_eq!(docker.len(), 1, "{docker:?}");
    assert_eq!(docker[0]["origin"], "built-in");

    let config = setup.root.join("docker.yaml");
    std::fs::write(
        &config,
        "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n",
    )
    .expect("write config");
    setup.prepare(&config, &env, &[]).assert_ok();
    assert!(setup.output.join("startup/start_docker.sh").is_file());
    assert!(!marker.exists(), "the plugin {} was run", plugin.display());
}

#[test]
fn the_first_plugin_on_the_search_path_is_used() {
    let setup = Setup::client();
    let first = setup.root.join("first");
    let second = setup.root.join("second");
    let third = setup.root.join("third");
    for dir in [&first, &second, &third] {
        std::fs::create_dir_all(dir).expect("mkdir");
        test_plugin(dir, "twin", "record", "");
    }
    let listed_path = |env: &[(&str, &str)]| -> Value {
        let run = run_in(None, ["targets", "--format", "json"], env);
        run.assert_ok();
        run.json()["data"]["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .find(|t| t["name"] == "twin")
            .map(|t| t["path"].clone())
            .unwrap_or(Value::Null)
    };
    let plugin_path = format!("{}:{}", second.display(), third.display());
    let path = format!("{}:{}", first.display(), std::env::var("PATH").unwrap_or_default());
    // FLARE_DEPLOY_PLUGIN_PATH comes before PATH; within a list, the first directory wins.
    let env = [
        ("FLARE_DEPLOY_PLUGIN_PATH", plugin_path.as_str()),
        ("PATH", path.as_str()),
    ];
    assert_eq!(listed_path(&env), path_str(&second.join("flare-deploy-target-twin")));
    let config = setup.config("twin.yaml", "twin");
    let run = setup.prepare(&config, &env, &["--format", "json"]);
    run.assert_ok();
    let staging =
        std::fs::read_to_string(setup.output.join("plugin-was-here.txt")).expect("the plugin wrote its marker");
    assert!(!staging.is_empty());
    let transcript = kitgen::read_json(&setup.output.join("transcript.json"));
    assert_eq!(
        transcript["argv"][0],
        path_str(&second.join("flare-deploy-target-twin"))
    );
    // Names that are not letters, digits, - and _ are not plugins.
    let odd = setup.root.join("odd");
    std::fs::create_dir_all(&odd).expect("mkdir");
    test_plugin(&odd, "bad.name", "record", "");
    let env = [("FLARE_DEPLOY_PLUGIN_PATH", path_str(&odd))];
    let run = run_in(None, ["targets", "--format", "json"], &env);
    run.assert_ok();
    assert!(
        !run.stdout.contains("bad.name"),
        "an invalid plugin name is listed: {}",
        run.stdout
    );
}

// ---------------------------------------------------------------------------------------
// what the engine sends

/// Runs a recording plugin: returns the run, the transcript of the `prepare`
/// conversation, the transcript of the `validate` conversation and the plugin path.
fn recorded_prepare(setup: &Setup) -> (Run, Value, Value, PathBuf) {
    let plugin = test_plugin(&setup.plugin_dir, "recorder", "record", "");
    let config = setup.config("recorder.yaml", "recorder");
    let validate_log = setup.plugin_dir.join("validate-transcript.json");
    // The recorder writes its validate transcript beside itself, which confinement
    // forbids (tested below); this test is about the protocol, so it runs unconfined.
    let env = [
        ("FLARE_DEPLOY_PLUGIN_PATH", path_str(&setup.plugin_dir)),
        ("RECORDER_LOG", path_str(&validate_log)),
        ("FLARE_DEPLOY_PLUGIN_CONFINEMENT", "off"),
    ];
    let run = setup.prepare(&config, &env, &["--format", "json"]);
    run.assert_ok();
    let transcript = kitgen::read_json(&setup.output.join("transcript.json"));
    (run, transcript, kitgen::read_json(&validate_log), plugin)
}

#[test]
fn the_engine_speaks_the_documented_protocol() {
    let setup = Setup::server();
    let (run, transcript, validated, plugin) = recorded_prepare(&setup);
    // Two conversations (docs/plugin-protocol.md): handshake + validate, then
    // handshake + prepare, each in its own process.
    // The engine offers every version it speaks (2 adds actions, 3 keeping the kit's
    // resource manager); this plugin picks 1.
    let handshake =
        json!({"protocol_versions": [1, 2, 3], "engine": format!("flare-deploy {}", env!("CARGO_PKG_VERSION"))});
    let config = json!({"runtime": "recorder", "parent": {"image": "example/image:1"}});
    let first = validated["requests"].as_array().expect("validate requests");
    let first_methods: Vec<&str> = first.iter().filter_map(|r| r["method"].as_str()).collect();
    assert_eq!(first_methods, ["handshake", "validate"]);
    assert_eq!(first[0]["params"], handshake);
    // The release rides along (the harness runs prepare with --nvflare-version 2.8).
    assert_eq!(first[1]["params"], json!({"config": config, "nvflare_release": "2.8"}));
    let requests = transcript["requests"].as_array().expect("requests");
    let methods: Vec<&str> = requests.iter().filter_map(|r| r["method"].as_str()).collect();
    assert_eq!(methods, ["handshake", "prepare"]);
    for conversation in [first, requests] {
        let mut ids: Vec<u64> = conversation.iter().filter_map(|r| r["id"].as_u64()).collect();
        assert_eq!(ids.len(), 2, "every request has an id: {conversation:?}");
        ids.dedup();
        assert_eq!(ids.len(), 2, "ids are distinct: {conversation:?}");
        for request in conversation {
            assert_eq!(request["protocol"], 1, "{request}");
        }
    }
    assert_eq!(requests[0]["params"], handshake);
    let params = &requests[1]["params"];
    assert_eq!(
        params["kit"],
        json!({"role": "server", "name": "server1", "org": "nvidia", "fed_learn_port": 8102,
               "admin_port": 8103, "input_dir": path_str(&setup.kit.dir)})
    );
    assert_eq!(params["config"], config);
    assert_eq!(params["output"], path_str(&setup.output));
    assert_eq!(params["nvflare_release"], "2.8");
    let staging = PathBuf::from(params["staging_dir"].as_str().expect("staging_dir"));
    assert_eq!(staging.parent(), Some(setup.out_parent.as_path()));
    assert!(
        staging
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".out.prepare-")),
        "{}",
        staging.display()
    );
    assert_eq!(
        transcript["argv"],
        json!([path_str(&plugin)]),
        "the plugin is started without arguments"
    );

    // result after the engine's fields; warnings as `Warning: text`
    let data = &run.json()["data"];
    let keys: Vec<&str> = data.as_object().expect("data").keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["runtime", "role", "name", "output", "start_command", "plugin_field"]
    );
    assert_eq!(data["runtime"], "recorder");
    assert_eq!(data["plugin_field"], 7);
    assert!(
        run.stderr.lines().any(|l| l == "Warning: the test plugin warns"),
        "{}",
        run.stderr
    );
    assert!(setup.output.join("plugin-was-here.txt").is_file());
    assert_no_plugin_process(&plugin);
}

#[test]
fn the_plugin_works_in_the_staging_directory_for_prepare() {
    let setup = Setup::client();
    let (_, transcript, _, _) = recorded_prepare(&setup);
    let staging = transcript["requests"][1]["params"]["staging_dir"].clone();
    assert_eq!(
        transcript["cwd"], staging,
        "docs/plugin-protocol.md: the working directory of a `prepare` plugin is the staging directory"
    );
}

#[test]
fn validate_errors_are_reported_as_invalid_config() {
    // `<path>: <message>` and the default hint, from the first error.
    let run = check_failure("validate_errors", "validate", "INVALID_CONFIG", "");
    run.assert_txt_error(
        "INVALID_CONFIG",
        "parent.size: must be positive",
        "Fix the runtime config.",
    );
    // A message that starts with its path is kept; the plugin's hint is used.
    let run = check_failure("validate_errors_hint", "validate", "INVALID_CONFIG", "");
    run.assert_txt_error(
        "INVALID_CONFIG",
        "parent.size must be positive",
        "Use a size above zero.",
    );
}

// ---------------------------------------------------------------------------------------
// the failure table

#[test]
fn not_executable_plugin() {
    let setup = Setup::client();
    let text = TEST_PLUGIN
        .replace("@NAME@", "misfit")
        .replace("@MODE@", "ok")
        .replace("@STAGE@", "");
    let plugin = write_plugin(&setup.plugin_dir, "misfit", &text, 0o644);
    let config = setup.config("plugin.yaml", "misfit");
    let before = Snapshot::take(&setup.kit.dir, &[]);
    let env = [("FLARE_DEPLOY_PLUGIN_PATH", path_str(&setup.plugin_dir))];
    let run = setup.prepare(&config, &env, &[]);
    run.assert_error_code("PLUGIN_NOT_EXECUTABLE", &format!("Plugin {}", plugin.display()));
    assert_failed_cleanly(&setup, Some(&before), &plugin, &[]);

    // `targets show` reports it too.
    let run = run_in(None, ["targets", "show", "misfit"], &env);
    run.assert_error_code("PLUGIN_NOT_EXECUTABLE", &format!("Plugin {}", plugin.display()));
}

#[test]
fn plugin_that_cannot_be_started() {
    let setup = Setup::client();
    let plugin = write_plugin(
        &setup.plugin_dir,
        "misfit",
        "#!/nonexistent/interpreter/for/this/test\n",
        0o755,
    );
    let (run, before) = prepare_with_plugin(&setup, "misfit", &[]);
    run.assert_error_code("PLUGIN_NOT_EXECUTABLE", &format!("Plugin {}", plugin.display()));
    assert_failed_cleanly(&setup, Some(&before), &plugin, &[]);
}

#[test]
fn wrong_protocol_version_in_handshake() {
    let run = check_failure("bad_version", "", "PLUGIN_PROTOCOL_ERROR", "Plugin {plugin}");
    assert!(
        run.stderr
            .contains("speaks protocol version 99; this flare-deploy speaks versions 1, 2 and 3"),
        "{}",
        run.stderr
    );
}

#[test]
fn name_mismatch_in_handshake() {
    let run = check_failure("bad_name", "", "PLUGIN_PROTOCOL_ERROR", "Plugin {plugin}");
    assert!(run.stderr.contains("someone-else"), "{}", run.stderr);
}

#[test]
fn handshake_failure_in_targets_show() {
    let setup = Setup::client();
    let plugin = test_plugin(&setup.plugin_dir, "misfit", "bad_name", "");
    let env = [("FLARE_DEPLOY_PLUGIN_PATH", path_str(&setup.plugin_dir))];
    let run = run_in(None, ["targets", "show", "misfit"], &env);
    run.assert_error_code("PLUGIN_PROTOCOL_ERROR", &format!("Plugin {}", plugin.display()));
    assert_no_plugin_process(&plugin);
}

#[test]
fn invalid_json_response() {
    check_failure("invalid_json", "handshake", "PLUGIN_PROTOCOL_ERROR", "Plugin {plugin}");
    check_failure("invalid_json", "prepare", "PLUGIN_PROTOCOL_ERROR", "Plugin {plugin}");
}

#[test]
fn response_without_the_request_id() {
    check_failure("missing_id", "validate", "PLUGIN_PROTOCOL_ERROR", "Plugin {plugin}");
    check_failure("missing_id", "prepare", "PLUGIN_PROTOCOL_ERROR", "Plugin {plugin}");
    check_failure("wrong_id", "handshake", "PLUGIN_PROTOCOL_ERROR", "Plugin {plugin}");
}

#[test]
fn response_with_neither_result_nor_error() {
    check_failure("no_result", "prepare", "PLUGIN_PROTOCOL_ERROR", "Plugin {plugin}");
}

#[test]
fn plugin_exits_before_answering() {
    let run = check_failure("exit_before", "prepare", "PLUGIN_FAILED", "Plugin {plugin}");
    assert!(
        run.stderr.contains("kaboom: the test plugin gives up"),
        "the plugin's stderr is shown: {}",
        run.stderr
    );
    check_failure("exit_before", "handshake", "PLUGIN_FAILED", "Plugin {plugin}");

    // A bash plugin that exits at once, without reading its stdin. Its stderr must be in
    // the message every time (repeated: the plugin exits faster than a lazy reader).
    for _ in 0..8 {
        let setup = Setup::client();
        let plugin = write_plugin(
            &setup.plugin_dir,
            "misfit",
            "#!/usr/bin/env bash\necho 'kaboom from bash' >&2\nexit 3\n",
            0o755,
        );
        let (run, before) = prepare_with_plugin(&setup, "misfit", &[]);
        run.assert_error_code("PLUGIN_FAILED", &format!("Plugin {}", plugin.display()));
        assert_failed_cleanly(&setup, Some(&before), &plugin, &[]);
        assert!(
            run.stderr.contains("kaboom from bash"),
            "the plugin's stderr is not shown:\n{}",
            run.stderr
        );
    }
}

#[test]
fn plugin_answers_with_an_error() {
    // The plugin's message is kept and said to be the plugin's.
    let reported = |code: &str| format!("The plugin 'misfit' reported: the test plugin refuses ({code})");
    // Codes other than INVALID_CONFIG, INVALID_KIT and UNSUPPORTED_KIT are PLUGIN_FAILED.
    check_failure("error_boom", "prepare", "PLUGIN_FAILED", &reported("BOOM"));
    check_failure(
        "error_plugin_failed",
        "validate",
        "PLUGIN_FAILED",
        &reported("PLUGIN_FAILED"),
    );
    // The three user-facing codes are reported under their own code, exit 4.
    let run = check_failure("error_invalid_kit", "prepare", "INVALID_KIT", &reported("INVALID_KIT"));
    run.assert_txt_error("INVALID_KIT", &reported("INVALID_KIT"), "Ask the plugin's author.");
    check_failure(
        "error_unsupported_kit",
        "prepare",
        "UNSUPPORTED_KIT",
        &reported("UNSUPPORTED_KIT"),
    );
    check_failure(
        "error_invalid_config",
        "validate",
        "INVALID_CONFIG",
        &reported("INVALID_CONFIG"),
    );
}

#[test]
fn plugin_exits_non_zero_after_the_last_request() {
    let run = check_failure("exit_nonzero_end", "", "PLUGIN_FAILED", "Plugin {plugin}");
    assert!(run.stderr.contains("kaboom at the end"), "{}", run.stderr);
}

/// A failure under `FLARE_DEPLOY_PLUGIN_TIMEOUT=1`. The plugin would hang for 120 s; the
/// bound checks that the timeout, not the plugin, ended the run (the point of the test),
/// and is far above the 1 s timeout so that a loaded machine does not fail it.
fn check_timeout(mode: &str, stage: &str) {
    let setup = Setup::client();
    let plugin = test_plugin(&setup.plugin_dir, "sleeper", mode, stage);
    let started = Instant::now();
    let (run, before) = prepare_with_plugin(&setup, "sleeper", &[("FLARE_DEPLOY_PLUGIN_TIMEOUT", "1")]);
    let took = started.elapsed();
    run.assert_error_code("PLUGIN_TIMEOUT", &format!("Plugin {}", plugin.display()));
    assert!(
        took < Duration::from_secs(60),
        "{mode} at {stage:?}: took {took:?} with a 1 s timeout"
    );
    assert_failed_cleanly(&setup, Some(&before), &plugin, &[]);
}

#[test]
fn plugin_hangs_in_handshake() {
    check_timeout("hang", "handshake");
}

#[test]
fn plugin_hangs_in_prepare() {
    check_timeout("hang", "prepare");
}

#[test]
fn plugin_does_not_exit_after_stdin_closes() {
    check_timeout("hang_end", "");
}

#[test]
fn a_wrapper_plugin_whose_worker_hangs_is_killed_as_a_whole() {
    // A common shape: a shell script that runs the real plugin as a child process. On
    // timeout "the plugin is killed": its worker must not outlive flare-deploy.
    let setup = Setup::client();
    let plugin = write_plugin(
        &setup.plugin_dir,
        "wrapper",
        "#!/usr/bin/env bash\nread -r line\npython3 -c 'import time; time.sleep(600)' \"$0\"\n",
        0o755,
    );
    let started = Instant::now();
    let (run, before) = prepare_with_plugin(&setup, "wrapper", &[("FLARE_DEPLOY_PLUGIN_TIMEOUT", "1")]);
    // The worker would sleep 600 s: ending well before proves the timeout killed the
    // group (bound generous for a loaded machine, as in check_timeout).
    assert!(started.elapsed() < Duration::from_secs(60));
    run.assert_error_code("PLUGIN_TIMEOUT", &format!("Plugin {}", plugin.display()));
    assert_failed_cleanly(&setup, Some(&before), &plugin, &[]);
}

const TRIED_OUTSIDE: &str = "tried to write outside its staging directory";

#[test]
fn plugin_writes_into_the_outputs_parent() {
    let setup = Setup::client();
    let plugin = test_plugin(&setup.plugin_dir, "misfit", "write_parent", "");
    let (run, before) = prepare_with_plugin(&setup, "misfit", &[]);
    let intruder = setup.out_parent.join("intruder.txt");
    run.assert_error_code(
        "PLUGIN_WROTE_OUTSIDE",
        &format!("Plugin {} {TRIED_OUTSIDE}: {}", plugin.display(), intruder.display()),
    );
    // Confined: the kernel refused the write.
    assert!(!intruder.exists());
    assert_failed_cleanly(&setup, Some(&before), &plugin, &[]);
}

#[test]
fn plugin_changes_the_input_kit() {
    let setup = Setup::client();
    let plugin = test_plugin(&setup.plugin_dir, "misfit", "touch_kit", "");
    let (run, before) = prepare_with_plugin(&setup, "misfit", &[]);
    run.assert_error_code(
        "PLUGIN_WROTE_OUTSIDE",
        &format!(
            "Plugin {} {TRIED_OUTSIDE}: {}",
            plugin.display(),
            setup.kit.path("local/resources.json.default").display()
        ),
    );
    assert_failed_cleanly(&setup, Some(&before), &plugin, &[]);
}

#[test]
fn unconfined_plugin_that_changes_the_input_kit_is_reported_and_undone() {
    // Where the kernel cannot confine plugins (simulated by turning it off), the engine
    // checks afterwards, says what changed and puts the kit back.
    let setup = Setup::client();
    let plugin = test_plugin(&setup.plugin_dir, "misfit", "touch_kit", "");
    let (run, before) = prepare_with_plugin(&setup, "misfit", &[("FLARE_DEPLOY_PLUGIN_CONFINEMENT", "off")]);
    run.assert_error_code(
        "PLUGIN_WROTE_OUTSIDE",
        &format!(
            "Plugin {} wrote outside its staging directory: it modified the input kit {} (local/resources.json.default); every change was undone from a copy taken before the plugin ran",
            plugin.display(),
            setup.kit.dir.display()
        ),
    );
    assert_failed_cleanly(&setup, Some(&before), &plugin, &[]);
}

#[test]
fn plugin_changes_a_previous_output() {
    for confinement in ["on", "off"] {
        let setup = Setup::client();
        let env = [
            ("FLARE_DEPLOY_PLUGIN_PATH", path_str(&setup.plugin_dir)),
            ("FLARE_DEPLOY_PLUGIN_CONFINEMENT", confinement),
        ];
        let config = setup.config("plugin.yaml", "misfit");
        test_plugin(&setup.plugin_dir, "misfit", "ok", "");
        setup.prepare(&config, &env, &[]).assert_ok();
        let previous = Snapshot::take(&setup.output, &[]);

        let plugin = test_plugin(&setup.plugin_dir, "misfit", "write_previous_output", "");
        let before = Snapshot::take(&setup.kit.dir, &[]);
        let run = setup.prepare(&config, &env, &[]);
        let intruder = setup.output.join("local/intruder.txt");
        let expected = if confinement == "on" {
            format!("Plugin {} {TRIED_OUTSIDE}: {}", plugin.display(), intruder.display())
        } else {
            format!(
                "Plugin {} wrote outside its staging directory: it modified the previous output {} (local, local/intruder.txt), which was not replaced",
                plugin.display(),
                setup.output.display()
            )
        };
        run.assert_error_code("PLUGIN_WROTE_OUTSIDE", &expected);
        assert_unchanged(&before, &Snapshot::take(&setup.kit.dir, &[]), "the input kit");
        if confinement == "on" {
            assert_unchanged(&previous, &Snapshot::take(&setup.output, &[]), "the previous output");
        } else {
            // Not replaced: the previous output is there, with only the plugin's change.
            std::fs::remove_file(&intruder).expect("the plugin's file");
            let after = Snapshot::take(&setup.output, &[]);
            assert_eq!(
                previous.0.keys().collect::<Vec<_>>(),
                after.0.keys().collect::<Vec<_>>(),
                "the previous output"
            );
        }
        assert_eq!(setup.out_parent_entries(&["out"]), Vec::<String>::new());
        assert_no_plugin_process(&plugin);
    }
}

// ---------------------------------------------------------------------------------------
// a hostile plugin: confinement and the fallback

/// Tries to write into the input kit, the output's parent, $HOME and /tmp, to delete a
/// file of the input kit and to move a file into it. With CATCH it records what
/// happened in `<staging>/attempts.json` and answers normally; without, the first
/// refusal ends it with a traceback.
const HOSTILE_PLUGIN: &str = r#"#!/usr/bin/env python3
import json, os, sys, tempfile

NAME = "@NAME@"
CATCH = "@CATCH@" == "yes"
MARKER = "@MARKER@"


def write(path, text, mode="w"):
    with open(path, mode, encoding="utf-8") as f:
        f.write(text)


def attack(params):
    kit, output, staging = params["kit"]["input_dir"], params["output"], params["staging_dir"]
    write(os.path.join(staging, "to-move.txt"), "x")
    tries = [
        ("write into the input kit", lambda: write(os.path.join(kit, "local", "hostile.txt"), "x")),
        ("append to a kit file", lambda: write(os.path.join(kit, "local", "resources.json.default"), " ", "a")),
        ("delete a kit file", lambda: os.remove(os.path.join(kit, "startup", "rootCA.pem"))),
        ("move a file into the kit", lambda: os.rename(os.path.join(staging, "to-move.txt"), os.path.join(kit, "moved.txt"))),
        ("write into the output's parent", lambda: write(os.path.join(os.path.dirname(output), MARKER), "x")),
        ("write into $HOME", lambda: write(os.path.join(os.environ["HOME"], MARKER), "x")),
        ("write into /tmp", lambda: write(os.path.join("/tmp", MARKER), "x")),
    ]
    results = {}
    for label, act in tries:
        try:
            act()
            results[label] = "done"
        except OSError as e:
            if not CATCH:
                raise
            results[label] = "refused: " + str(e)
    # Its own temporary directory works.
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"scratch")
        f.flush()
    results["tmpdir"] = tempfile.gettempdir()
    write(os.path.join(staging, "attempts.json"), json.dumps(results))


for line in sys.stdin:
    request = json.loads(line)
    method, params = request["method"], request["params"]
    if method == "handshake":
        result = {"protocol_version": 1, "name": NAME}
    elif method == "validate":
        result = {"errors": []}
    elif method == "prepare":
        attack(params)
        result = {"result": {}, "warnings": [], "edits": {}}
    else:
        result = {}
    sys.stdout.write(json.dumps({"protocol": 1, "id": request["id"], "result": result}) + "\n")
    sys.stdout.flush()
"#;

const ATTEMPTS: [&str; 7] = [
    "write into the input kit",
    "append to a kit file",
    "delete a kit file",
    "move a file into the kit",
    "write into the output's parent",
    "write into $HOME",
    "write into /tmp",
];

/// A unique file name for the hostile plugin's writes outside.
fn marker(setup: &Setup) -> String {
    format!(
        "flare-deploy-hostile-{}-{}",
        std::process::id(),
        setup
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}

fn hostile_plugin(setup: &Setup, catch: bool) -> PathBuf {
    let text = HOSTILE_PLUGIN
        .replace("@NAME@", "hostile")
        .replace("@CATCH@", if catch { "yes" } else { "no" })
        .replace("@MARKER@", &marker(setup));
    write_plugin(&setup.plugin_dir, "hostile", &text, 0o755)
}

/// The places outside the kit that the hostile plugin writes to.
fn hostile_targets(setup: &Setup, home: &Path) -> Vec<PathBuf> {
    let marker = marker(setup);
    vec![
        setup.out_parent.join(&marker),
        home.join(&marker),
        Path::new("/tmp").join(&marker),
    ]
}

#[test]
fn a_confined_plugin_cannot_write_anywhere_but_its_staging_directory() {
    let setup = Setup::client();
    let home = setup.root.join("home");
    std::fs::create_dir_all(&home).expect("mkdir home");
    let plugin = hostile_plugin(&setup, true);
    let (run, before) = prepare_with_plugin(&setup, "hostile", &[("HOME", path_str(&home))]);
    run.assert_ok();
    let attempts = kitgen::read_json(&setup.output.join("attempts.json"));
    for label in ATTEMPTS {
        let outcome = attempts[label].as_str().unwrap_or_default();
        assert!(outcome.starts_with("refused: "), "{label}: {outcome}");
    }
    assert_unchanged(&before, &Snapshot::take(&setup.kit.dir, &[]), "the input kit");
    for target in hostile_targets(&setup, &home) {
        assert!(!target.exists(), "written outside: {}", target.display());
    }
    // A private temporary directory, removed with the plugin.
    let tmpdir = PathBuf::from(attempts["tmpdir"].as_str().expect("tmpdir"));
    assert_ne!(tmpdir, Path::new("/tmp"));
    assert!(
        !tmpdir.exists(),
        "the plugin's temporary directory is removed: {}",
        tmpdir.display()
    );
    assert_no_plugin_process(&plugin);
}

#[test]
fn a_confined_plugin_that_gives_up_on_a_refused_write_is_plugin_wrote_outside() {
    let setup = Setup::client();
    let home = setup.root.join("home");
    std::fs::create_dir_all(&home).expect("mkdir home");
    let plugin = hostile_plugin(&setup, false);
    let config = setup.config("plugin.yaml", "hostile");
    let before = Snapshot::take(&setup.kit.dir, &[]);
    let env = [
        ("FLARE_DEPLOY_PLUGIN_PATH", path_str(&setup.plugin_dir)),
        ("HOME", path_str(&home)),
    ];
    let message = format!(
        "Plugin {} {TRIED_OUTSIDE}: {} (the kernel refused it; nothing outside the staging directory changed)",
        plugin.display(),
        setup.kit.path("local/hostile.txt").display()
    );
    let hint = "A plugin may only write below the staging_dir it is given and its $TMPDIR; fix the plugin.";
    setup
        .prepare(&config, &env, &[])
        .assert_txt_error("PLUGIN_WROTE_OUTSIDE", &message, hint);
    let run = setup.prepare(&config, &env, &["--format", "json"]);
    assert_eq!(run.code, 4);
    let doc = run.json();
    assert_eq!(doc["error_code"], "PLUGIN_WROTE_OUTSIDE");
    assert_eq!(doc["message"], message);
    assert_eq!(doc["hint"], hint);
    assert_failed_cleanly(&setup, Some(&before), &plugin, &[]);
}

#[test]
fn an_unconfined_hostile_plugin_is_reported_and_the_input_kit_restored() {
    let setup = Setup::client();
    let home = setup.root.join("home");
    std::fs::create_dir_all(&home).expect("mkdir home");
    let plugin = hostile_plugin(&setup, true);
    let (run, before) = prepare_with_plugin(
        &setup,
        "hostile",
        &[("HOME", path_str(&home)), ("FLARE_DEPLOY_PLUGIN_CONFINEMENT", "off")],
    );
    run.assert_error_code(
        "PLUGIN_WROTE_OUTSIDE",
        &format!(
            "Plugin {} wrote outside its staging directory: it modified the input kit {} (local/hostile.txt, local/resources.json.default, moved.txt, startup/rootCA.pem); every change was undone from a copy taken before the plugin ran",
            plugin.display(),
            setup.kit.dir.display()
        ),
    );
    // Byte-, mode- and mtime-identical again.
    assert_unchanged(&before, &Snapshot::take(&setup.kit.dir, &[]), "the input kit");
    // Outside the kit nothing is watched (exactly what docs/plugin-protocol.md says);
    // remove what the plugin left.
    for target in hostile_targets(&setup, &home) {
        let _ = std::fs::remove_file(target);
    }
    assert_failed_cleanly(&setup, None, &plugin, &[]);
}

/// A federation of a server and `clients` clients (`site-1`...) under `<root>/prod_00`.
fn federation(setup: &Setup, clients: usize) -> PathBuf {
    let names: Vec<String> = (1..=clients).map(|i| format!("site-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    kitgen::federation(&setup.root, &names, false)
}

fn batch_with_plugin(setup: &Setup, dir: &Path, config: &Path, env: &[(&str, &str)], extra: &[&str]) -> Run {
    let mut argv = prepare_all_argv(dir, config, &setup.out_parent);
    argv.extend(["--jobs".into(), "4".into()]);
    argv.extend(extra.iter().map(OsString::from));
    run_in(None, &argv, env)
}

#[test]
fn hostile_plugins_in_a_parallel_batch_leave_every_kit_untouched() {
    let setup = Setup::client();
    let home = setup.root.join("home");
    std::fs::create_dir_all(&home).expect("mkdir home");
    let dir = federation(&setup, 5);
    let config = setup.config("hostile.yaml", "hostile");
    for (catch, confinement) in [(true, "on"), (false, "on"), (true, "off")] {
        let plugin = hostile_plugin(&setup, catch);
        let before = Snapshot::take(&dir, &[]);
        let env = [
            ("FLARE_DEPLOY_PLUGIN_PATH", path_str(&setup.plugin_dir)),
            ("HOME", path_str(&home)),
            ("FLARE_DEPLOY_PLUGIN_CONFINEMENT", confinement),
        ];
        let run = batch_with_plugin(&setup, &dir, &config, &env, &["--format", "json"]);
        let doc = run.json();
        let kits = doc["data"]["kits"].as_array().expect("kits");
        assert_eq!(kits.len(), 6, "{doc}");
        for kit in kits {
            if catch && confinement == "on" {
                assert_eq!(kit["status"], "ok", "{kit}");
            } else {
                assert_eq!(kit["error_code"], "PLUGIN_WROTE_OUTSIDE", "{kit}");
            }
        }
        assert_unchanged(&before, &Snapshot::take(&dir, &[]), "the federation's kits");
        if confinement == "on" {
            for target in hostile_targets(&setup, &home) {
                assert!(!target.exists(), "written outside: {}", target.display());
            }
        }
        for target in hostile_targets(&setup, &home) {
            let _ = std::fs::remove_file(target);
        }
        assert_no_plugin_process(&plugin);
        // Start the next round from an empty output root.
        for entry in std::fs::read_dir(&setup.out_parent).expect("outs") {
            std::fs::remove_dir_all(entry.expect("entry").path()).expect("clear outs");
        }
    }
}

#[test]
fn the_example_plugin_prepares_a_30_kit_federation_in_parallel() {
    // Each worker's lock and staging directory sit beside the others' outputs: none may
    // be taken for a plugin's write, confined or not.
    let setup = Setup::client();
    let env_owned = podman_env(&setup);
    let dir = federation(&setup, 29);
    let config = podman_config();
    for (round, (format, confinement)) in [
        ("txt", "on"),
        ("json", "on"),
        ("txt", "on"),
        ("json", "off"),
        ("txt", "off"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut env = env_refs(&env_owned);
        env.push(("FLARE_DEPLOY_PLUGIN_CONFINEMENT", confinement));
        let run = batch_with_plugin(&setup, &dir, &config, &env, &["--format", format]);
        assert_eq!(
            run.code, 0,
            "round {round}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        if format == "json" {
            let doc = run.json();
            assert_eq!(
                doc["data"]["summary"],
                json!({"prepared": 30, "failed": 0, "skipped": 0})
            );
        }
        let outputs = setup.out_parent_entries(&[]);
        assert_eq!(outputs.len(), 30, "round {round}: {outputs:?}");
        for name in outputs {
            let out = setup.out_parent.join(&name);
            assert!(out.join(".flare-deploy.json").is_file(), "{name}");
            assert!(out.join("startup/start_podman.sh").is_file(), "{name}");
        }
    }
}

#[test]
fn a_plugin_that_supports_only_2_8_refuses_2_9() {
    let setup = Setup::client();
    let plugin = test_plugin(&setup.plugin_dir, "old", "only_2_8", "");
    let config = setup.config("old.yaml", "old");
    let env = [("FLARE_DEPLOY_PLUGIN_PATH", path_str(&setup.plugin_dir))];
    setup.prepare(&config, &env, &[]).assert_ok();
    std::fs::remove_dir_all(&setup.output).expect("clear the output");
    let before = Snapshot::take(&setup.kit.dir, &[]);
    setup
        .prepare(&config, &env, &["--nvflare-version", "2.9"])
        .assert_txt_error(
            "INVALID_CONFIG",
            "Runtime 'old' does not support NVFlare 2.9; it supports 2.8.",
            "Set nvflare_version in the config (or --nvflare-version) to a release the runtime supports.",
        );
    assert_failed_cleanly(&setup, Some(&before), &plugin, &[]);
}

#[test]
fn malformed_edits() {
    check_failure("bad_edits", "", "PLUGIN_PROTOCOL_ERROR", "Plugin edits are malformed");
    check_failure(
        "unknown_edit",
        "",
        "PLUGIN_PROTOCOL_ERROR",
        "Plugin edits are malformed",
    );
    check_failure(
        "empty_launcher_path",
        "",
        "PLUGIN_PROTOCOL_ERROR",
        "Plugin edits are malformed",
    );
}
