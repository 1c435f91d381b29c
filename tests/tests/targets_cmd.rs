//! `flare-deploy targets` and `targets show`: the listing (txt table and JSON envelope,
//! with each target's actions), executable plugins found on the plugin path, the documented keys of the built-in
//! targets, the committed JSON Schemas in docs/schemas (the drift test), and a binary
//! that links two targets of one name (docs/plugin-protocol.md).

use std::path::{Path, PathBuf};

use flare_deploy_tests::fsutil::{plugins_dir, repo};
use flare_deploy_tests::harness::{run_in, run_program, workspace_binary};
use flare_deploy_tests::Run;
use serde_json::{json, Value};

const DOCKER_SUMMARY: &str =
    "Docker: startup/start_docker.sh runs the parent container; jobs run as sibling containers";
const K8S_SUMMARY: &str = "Kubernetes: a Helm chart runs the parent Deployment; jobs run as pods";
const SLURM_SUMMARY: &str = "Slurm (NVFlare 2.9 or later): startup/start_slurm.sh or an sbatch of startup/parent.slurm runs the parent; jobs run as Slurm jobs";
const PODMAN_SUMMARY: &str = "Podman: startup/start_podman.sh runs the parent container";
const HEADER: [&str; 4] = ["NAME", "ORIGIN", "ACTIONS", "SUMMARY"];

fn compose_bin() -> PathBuf {
    workspace_binary("flare-deploy-compose", "flare-deploy-compose")
}

/// An environment with no executable plugins: an empty plugin path and an empty `PATH`
/// (so that a `flare-deploy-target-*` installed on the machine cannot show up).
struct NoPlugins {
    _dir: tempfile::TempDir,
    path: String,
}

impl NoPlugins {
    fn new() -> NoPlugins {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().display().to_string();
        NoPlugins { _dir: dir, path }
    }

    fn env(&self) -> [(&str, &str); 2] {
        [
            ("FLARE_DEPLOY_PLUGIN_PATH", self.path.as_str()),
            ("PATH", self.path.as_str()),
        ]
    }
}

fn targets(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_in(None, args, env)
}

/// The rows of a `targets` table, split at its column starts (which the header gives).
fn table_rows(stdout: &str) -> Vec<Vec<String>> {
    let mut lines = stdout.lines();
    let header = lines.next().expect("table header");
    let starts: Vec<usize> = HEADER
        .iter()
        .map(|h| header.find(h).unwrap_or_else(|| panic!("header {header:?} lacks {h}")))
        .collect();
    assert_eq!(starts[0], 0, "NAME is the first column: {header:?}");
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "header columns out of order: {header:?}"
    );
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        HEADER,
        "header: {header:?}"
    );
    lines
        .map(|line| {
            assert!(line.len() > starts[3], "row shorter than the table: {line:?}\n{stdout}");
            let cell = |from: usize, to: usize| line[from..to].trim_end().to_string();
            // Every column but the last is padded: the cell before a column start ends
            // in at least two spaces (or is the padding itself).
            for start in &starts[1..] {
                assert!(
                    line[..*start].ends_with("  "),
                    "column not aligned at {start}: {line:?}\n{stdout}"
                );
                assert!(
                    !line[*start..].starts_with(' '),
                    "column not aligned at {start}: {line:?}\n{stdout}"
                );
            }
            vec![
                cell(starts[0], starts[1]),
                cell(starts[1], starts[2]),
                cell(starts[2], starts[3]),
                line[starts[3]..].to_string(),
            ]
        })
        .collect()
}

fn row(name: &str, origin: &str, actions: &str, summary: &str) -> Vec<String> {
    vec![
        name.to_string(),
        origin.to_string(),
        actions.to_string(),
        summary.to_string(),
    ]
}

fn k8s_actions() -> Value {
    json!([
        {"name": "stage", "summary": "stage local/startup as Kubernetes ConfigMap/Secret"},
        {"name": "unstage", "summary": "delete staged Kubernetes ConfigMap/Secret resources"},
    ])
}

// ---------------------------------------------------------------------------------------
// listing

#[test]
fn targets_txt_lists_the_builtin_targets_sorted_by_name() {
    let none = NoPlugins::new();
    let run = targets(&["targets"], &none.env());
    run.assert_ok();
    assert_eq!(run.stderr, "", "nothing on stderr");
    assert!(run.stdout.starts_with("NAME"), "{}", run.stdout);
    assert_eq!(
        table_rows(&run.stdout),
        vec![
            row("docker", "built-in", "-", DOCKER_SUMMARY),
            row("k8s", "built-in", "stage, unstage", K8S_SUMMARY),
            row("slurm", "built-in", "-", SLURM_SUMMARY),
        ],
        "{}",
        run.stdout
    );
}

#[test]
fn targets_json_is_an_envelope_with_name_origin_summary_and_crate() {
    let none = NoPlugins::new();
    let run = targets(&["targets", "--format", "json"], &none.env());
    run.assert_ok();
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.json(),
        json!({
            "schema_version": "1",
            "status": "ok",
            "exit_code": 0,
            "data": {"targets": [
                {"name": "docker", "origin": "built-in", "summary": DOCKER_SUMMARY, "crate": "flare-deploy-docker",
                 "actions": []},
                {"name": "k8s", "origin": "built-in", "summary": K8S_SUMMARY, "crate": "flare-deploy-k8s",
                 "actions": k8s_actions()},
                {"name": "slurm", "origin": "built-in", "summary": SLURM_SUMMARY, "crate": "flare-deploy-slurm",
                 "actions": []},
            ]}
        })
    );
}

#[test]
fn targets_lists_an_executable_plugin_from_the_plugin_path() {
    let dir = plugins_dir();
    let plugin = dir.join("flare-deploy-target-podman");
    // The example plugin runs under `/usr/bin/env python3`, which needs the PATH.
    let env_with_python = [("FLARE_DEPLOY_PLUGIN_PATH", dir.to_str().expect("utf-8 path"))];

    let run = targets(&["targets"], &env_with_python);
    run.assert_ok();
    assert_eq!(
        table_rows(&run.stdout),
        vec![
            row("docker", "built-in", "-", DOCKER_SUMMARY),
            row("k8s", "built-in", "stage, unstage", K8S_SUMMARY),
            row(
                "podman",
                &format!("executable {}", plugin.display()),
                "systemd-unit",
                PODMAN_SUMMARY
            ),
            row("slurm", "built-in", "-", SLURM_SUMMARY),
        ],
        "{}",
        run.stdout
    );

    let run = targets(&["targets", "--format", "json"], &env_with_python);
    run.assert_ok();
    let listed = run.json()["data"]["targets"].clone();
    assert_eq!(
        listed,
        json!([
            {"name": "docker", "origin": "built-in", "summary": DOCKER_SUMMARY, "crate": "flare-deploy-docker",
                 "actions": []},
            {"name": "k8s", "origin": "built-in", "summary": K8S_SUMMARY, "crate": "flare-deploy-k8s",
                 "actions": k8s_actions()},
            {"name": "podman", "origin": "executable", "summary": PODMAN_SUMMARY, "path": plugin.to_str(),
             "actions": [{"name": "systemd-unit", "summary": "write a systemd unit that runs startup/start_podman.sh"}]},
            {"name": "slurm", "origin": "built-in", "summary": SLURM_SUMMARY, "crate": "flare-deploy-slurm",
                 "actions": []},
        ])
    );

    // `targets show` of the plugin asks it to describe itself.
    let run = targets(&["targets", "show", "podman"], &env_with_python);
    run.assert_ok();
    let first = run.stdout.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("podman (executable {}): {PODMAN_SUMMARY}", plugin.display())
    );
    assert!(
        run.stdout.lines().any(|l| l == "parent.image  string  required"),
        "{}",
        run.stdout
    );
}

// ---------------------------------------------------------------------------------------
// targets show

/// The key lines (`key  types[  required][  default: ...]`) of `targets show`.
fn key_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().skip(2).filter(|l| !l.starts_with(' ')).collect()
}

fn assert_has_lines(stdout: &str, expected: &[&str]) {
    let keys = key_lines(stdout);
    for line in expected {
        assert!(
            keys.contains(line),
            "missing key line {line:?}; key lines:\n{}",
            keys.join("\n")
        );
    }
}

#[test]
fn targets_show_docker_lists_its_keys_with_types_and_defaults() {
    let none = NoPlugins::new();
    let run = targets(&["targets", "show", "docker"], &none.env());
    run.assert_ok();
    let mut lines = run.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("docker (built-in): {DOCKER_SUMMARY}").as_str())
    );
    assert_eq!(lines.next(), Some(""));
    assert_has_lines(
        &run.stdout,
        &[
            "runtime  string  required",
            "parent  object  required",
            "parent.docker_image  string  required",
            "parent.network  string | null  default: \"nvflare-network\"",
            "job_launcher  object | null",
            "job_launcher.default_python_path  string | null  default: \"/usr/local/bin/python\"",
            "job_launcher.default_job_env  object | null  default: {}",
            "job_launcher.default_job_container_kwargs  object | null  default: {}",
        ],
    );
    // Each key's description (from the config type's doc comments) follows it.
    assert!(
        run.stdout
            .contains("parent.docker_image  string  required\n    length >= 1\n    Image of the parent container"),
        "{}",
        run.stdout
    );

    // The JSON form carries the same keys.
    let run = targets(&["targets", "show", "docker", "--format", "json"], &none.env());
    run.assert_ok();
    let doc = run.json();
    assert_eq!(doc["data"]["name"], "docker");
    assert_eq!(doc["data"]["origin"], "built-in");
    let image = doc["data"]["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["key"] == "parent.docker_image")
        .expect("parent.docker_image listed");
    assert_eq!(image["type"], "string");
    assert_eq!(image["required"], true);
    let network = doc["data"]["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["key"] == "parent.network")
        .expect("parent.network listed");
    assert_eq!(network["default"], "nvflare-network");
    assert_eq!(network["required"], false);
}

#[test]
fn targets_show_k8s_lists_its_keys_with_types_and_defaults() {
    let none = NoPlugins::new();
    let run = targets(&["targets", "show", "k8s"], &none.env());
    run.assert_ok();
    assert_eq!(
        run.stdout.lines().next(),
        Some(format!("k8s (built-in): {K8S_SUMMARY}").as_str())
    );
    assert_has_lines(
        &run.stdout,
        &[
            "runtime  string  required",
            "namespace  string  default: \"default\"",
            "server_service_name  string  default: \"nvflare-server\"",
            "parent  object  required",
            "parent.docker_image  string  required",
            "parent.parent_port  integer | null  default: 8102",
            "parent.workspace_pvc  string | null  default: \"nvflws\"",
            "parent.workspace_mount_path  string | null  default: \"/var/tmp/nvflare/workspace\"",
            "parent.python_path  string | null  default: \"/usr/local/bin/python3\"",
            "job_launcher  object | null",
            "job_launcher.default_python_path  string | null  default: \"/usr/local/bin/python3\"",
        ],
    );
    assert!(
        run.stdout.contains("    1..65535\n"),
        "the port range is shown: {}",
        run.stdout
    );
    // Its actions follow the keys, each with its options.
    let actions = run
        .stdout
        .split("\nActions (flare-deploy k8s <action> [KIT] [options]):\n")
        .nth(1);
    let actions = actions.unwrap_or_else(|| panic!("no actions section:\n{}", run.stdout));
    let heads: Vec<&str> = actions.lines().filter(|l| !l.starts_with("    ")).collect();
    assert_eq!(
        heads,
        [
            "  stage  stage local/startup as Kubernetes ConfigMap/Secret",
            "  unstage  delete staged Kubernetes ConfigMap/Secret resources"
        ]
    );
    assert!(actions.contains("\n      --manifests <DIR>  Write the ConfigMap and Secret manifests"));
    let run = targets(&["targets", "show", "k8s", "--format", "json"], &none.env());
    let listed = run.json()["data"]["actions"].clone();
    assert_eq!(listed[0]["name"], "stage");
    assert_eq!(listed[0]["writes_kit"], true);
    let options: Vec<&str> = listed[0]["options"]
        .as_array()
        .expect("options")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(
        options,
        ["namespace", "local-configmap", "startup-secret", "kubectl", "manifests"]
    );
    assert_eq!(listed[1]["name"], "unstage");
}

#[test]
fn targets_show_of_an_unknown_target_is_invalid_args() {
    let none = NoPlugins::new();
    let run = targets(&["targets", "show", "nosuch"], &none.env());
    run.assert_error_code("INVALID_ARGS", "Unknown runtime target: nosuch");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("Known targets: docker, k8s, slurm."),
        "{}",
        run.stderr
    );

    let run = targets(&["targets", "show", "nosuch", "--format", "json"], &none.env());
    assert_eq!(run.code, 4);
    let doc = run.json();
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["exit_code"], 4);
    assert_eq!(doc["error_code"], "INVALID_ARGS");
    assert_eq!(doc["message"], "Unknown runtime target: nosuch");

    let run = targets(&["targets", "show", "nosuch", "--schema"], &none.env());
    run.assert_error_code("INVALID_ARGS", "Unknown runtime target: nosuch");
}

// ---------------------------------------------------------------------------------------
// the drift test: committed schemas equal what the code prints

/// JSON pointers where `a` and `b` differ (for the failure message).
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => differences(v, w, &format!("{at}/{k}"), out),
                    None => out.push(format!("{at}/{k}: only in the code's schema")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{at}/{k}: only in the committed file"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                differences(v, w, &format!("{at}/{i}"), out);
            }
        }
        _ if a != b => out.push(format!("{at}: code {a} vs committed {b}")),
        _ => {}
    }
}

/// The schema `program` prints for target `name`, and where it differs from `file`.
fn schema_drift(program: &Path, env: &[(&str, &str)], name: &str, file: &Path) -> (Value, Value, Vec<String>) {
    let run = run_program(program, None, ["targets", "show", name, "--schema"], env);
    run.assert_ok();
    let printed: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("`targets show {name} --schema` is not JSON ({e}):\n{}", run.stdout));
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    let committed: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
    let mut diff = Vec::new();
    differences(&printed, &committed, "", &mut diff);
    (printed, committed, diff)
}

fn assert_schema_matches_committed(program: &Path, env: &[(&str, &str)], name: &str) {
    let file = repo().join("docs/schemas").join(format!("{name}.json"));
    let (printed, committed, diff) = schema_drift(program, env, name, &file);
    assert!(
        printed == committed && diff.is_empty(),
        "docs/schemas/{name}.json is out of date with the code ({} differences):\n{}\n\
         Regenerate it with: flare-deploy targets show {name} --schema > docs/schemas/{name}.json{}",
        diff.len(),
        diff.join("\n"),
        if name == "compose" {
            " (using the flare-deploy-compose binary)"
        } else {
            ""
        }
    );
    assert_eq!(
        printed["title"],
        format!("flare-deploy runtime config: {name}"),
        "the schema is the config schema of {name}"
    );
}

#[test]
fn committed_docker_schema_matches_the_code() {
    let none = NoPlugins::new();
    assert_schema_matches_committed(flare_deploy_tests::harness::binary(), &none.env(), "docker");
}

#[test]
fn committed_k8s_schema_matches_the_code() {
    let none = NoPlugins::new();
    assert_schema_matches_committed(flare_deploy_tests::harness::binary(), &none.env(), "k8s");
}

#[test]
fn committed_slurm_schema_matches_the_code() {
    let none = NoPlugins::new();
    assert_schema_matches_committed(flare_deploy_tests::harness::binary(), &none.env(), "slurm");
}

#[test]
fn committed_compose_schema_matches_the_compose_example() {
    let none = NoPlugins::new();
    assert_schema_matches_committed(&compose_bin(), &none.env(), "compose");
}

/// The drift check against the binary: a committed file with one value changed and one
/// key removed is reported at exactly those two places.
#[test]
fn drift_check_reports_a_changed_schema() {
    let none = NoPlugins::new();
    let binary = flare_deploy_tests::harness::binary();
    let committed = repo().join("docs/schemas/docker.json");
    let mut edited: Value = serde_json::from_str(&std::fs::read_to_string(&committed).expect("read schema"))
        .expect("committed schema is JSON");
    let parent = &mut edited["$defs"]["DockerParent"]["properties"];
    assert_eq!(parent["network"]["default"], "nvflare-network", "the committed default");
    parent["network"]["default"] = json!("other");
    parent["docker_image"]
        .as_object_mut()
        .expect("docker_image")
        .shift_remove("minLength")
        .expect("the committed docker_image has minLength");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("docker.json");
    std::fs::write(&file, serde_json::to_string_pretty(&edited).expect("json")).expect("write");
    let (printed, _, diff) = schema_drift(binary, &none.env(), "docker", &file);
    assert_eq!(
        diff,
        vec![
            "/$defs/DockerParent/properties/docker_image/minLength: only in the code's schema",
            "/$defs/DockerParent/properties/network/default: code \"nvflare-network\" vs committed \"other\"",
        ]
    );
    assert_ne!(printed, edited);
}

// ---------------------------------------------------------------------------------------
// two linked targets of one name

#[test]
fn a_binary_linking_two_docker_targets_fails_with_duplicate_target() {
    let dup = Path::new(env!("CARGO_BIN_EXE_dup-docker-target"));
    let none = NoPlugins::new();
    let expected = "Runtime 'docker' is registered twice, by crates 'flare-deploy-docker' and 'flare-deploy-tests'.";

    let run = run_program(dup, None, ["targets"], &none.env());
    assert_eq!(run.code, 5, "exit 5\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.starts_with(expected),
        "message names both crates:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.ends_with("Code: DUPLICATE_TARGET (exit 5)\n"),
        "{}",
        run.stderr
    );

    let run = run_program(dup, None, ["targets", "--format", "json"], &none.env());
    assert_eq!(run.code, 5);
    let doc = run.json();
    assert_eq!(doc["error_code"], "DUPLICATE_TARGET");
    assert_eq!(doc["exit_code"], 5);
    assert_eq!(doc["message"], expected);

    // Every command fails, not only the listing.
    for args in [
        vec!["targets", "show", "k8s"],
        vec!["prepare", "/nonexistent/kit", "--config", "/nonexistent/c.yaml"],
    ] {
        let run = run_program(dup, None, &args, &none.env());
        assert_eq!(run.code, 5, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("Code: DUPLICATE_TARGET (exit 5)"),
            "{args:?}: {}",
            run.stderr
        );
    }
}
