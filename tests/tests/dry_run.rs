//! `prepare --dry-run`: every check of a real prepare and a plan of what it would write,
//! with nothing written at all (the input kit, the output's parent and an existing
//! output stay byte- and mtime-identical; no lock, staging directory or output root).
//! The plan is checked against what a real prepare then changes, computed here from the
//! two trees on disk.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use flare_deploy_tests::fsutil::{tempdir, write_file};
use flare_deploy_tests::harness::prepare_all_argv;
use flare_deploy_tests::kitgen::{
    self, CLIENT_PROCESS_LAUNCHER, DOCKER_CLIENT_LAUNCHER, GPU_RESOURCE_MANAGER, PASSTHROUGH_RESOURCE_MANAGER,
};
use flare_deploy_tests::{flare_deploy, Kit, Project, Run, Snapshot};
use serde_json::{json, Value};

const DOCKER: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";
const DOCKER_OTHER_IMAGE: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.2\n";
const K8S: &str = "runtime: k8s\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";
const K8S_CLIENT_LAUNCHER: &str = "nvflare.app_opt.job_launcher.k8s_launcher.ClientK8sJobLauncher";

fn client(root: &Path, name: &str) -> Kit {
    Project::new("p").client(name).build(root)
}

/// What changed from the kit to the output, computed from the two trees: path ->
/// `added`, `removed` or `changed` (content, link target, type or mode differ; times do
/// not count). `prepared/` of the kit is not part of it.
fn real_changes(kit: &Path, output: &Path) -> BTreeMap<String, String> {
    let before = Snapshot::take(kit, &["prepared"]);
    let after = Snapshot::take(output, &[]);
    let key = |p: &PathBuf| p.to_string_lossy().into_owned();
    let mut out = BTreeMap::new();
    for (path, old) in &before.0 {
        if path.as_os_str().is_empty() {
            continue;
        }
        match after.0.get(path) {
            None => {
                out.insert(key(path), "removed".to_string());
            }
            Some(new) if new.content != old.content || new.link != old.link || new.mode != old.mode => {
                out.insert(key(path), "changed".to_string());
            }
            Some(_) => {}
        }
    }
    for path in after.0.keys().filter(|p| !p.as_os_str().is_empty()) {
        if !before.0.contains_key(path) {
            out.insert(key(path), "added".to_string());
        }
    }
    out
}

/// The plan's changes as path -> change.
fn plan_changes(plan: &Value) -> BTreeMap<String, String> {
    plan["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes list in {plan}"))
        .iter()
        .map(|c| {
            (
                c["path"].as_str().expect("path").to_string(),
                c["change"].as_str().expect("change").to_string(),
            )
        })
        .collect()
}

/// The key change of `path`'s JSON diff named `key`.
fn key_change<'a>(plan: &'a Value, path: &str, key: &str) -> &'a Value {
    let change = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in the plan: {plan}"));
    change["json_changes"]
        .as_array()
        .unwrap_or_else(|| panic!("{path} has no json_changes: {change}"))
        .iter()
        .find(|k| k["key"] == key)
        .unwrap_or_else(|| panic!("{key} not among the changes of {path}: {change}"))
}

#[track_caller]
fn ok_json(run: &Run) -> Value {
    run.assert_ok();
    let doc = run.json();
    assert_eq!(doc["status"], "ok", "{doc}");
    doc["data"].clone()
}

/// The argv of `[--format <format>] prepare <kit> --config <config> [--output <output>]
/// [--dry-run]`.
fn prepare_argv(
    format: Option<&str>,
    kit: &Path,
    config: &Path,
    output: Option<&Path>,
    dry_run: bool,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = Vec::new();
    if let Some(format) = format {
        argv.extend(["--format".into(), format.into()]);
    }
    argv.extend(["prepare".into(), kit.into(), "--config".into(), config.into()]);
    if let Some(output) = output {
        argv.extend(["--output".into(), output.into()]);
    }
    if dry_run {
        argv.push("--dry-run".into());
    }
    argv
}

/// Runs the `prepare` of [`prepare_argv`].
fn prepare(format: Option<&str>, kit: &Path, config: &Path, output: Option<&Path>, dry_run: bool) -> Run {
    flare_deploy(prepare_argv(format, kit, config, output, dry_run))
}

/// The data of a `--format json` dry run of `kit` (into `output`, if given), which must
/// succeed.
#[track_caller]
fn dry_run_json(kit: &Path, config: &Path, output: Option<&Path>) -> Value {
    ok_json(&prepare(Some("json"), kit, config, output, true))
}

/// Runs `[--format json] prepare --all <dir> --config <config> --output-root <out_root>
/// [--dry-run]`.
fn prepare_all(json: bool, dir: &Path, config: &Path, out_root: &Path, dry_run: bool) -> Run {
    let mut argv: Vec<OsString> = Vec::new();
    if json {
        argv.extend(["--format".into(), "json".into()]);
    }
    argv.extend(prepare_all_argv(dir, config, out_root));
    if dry_run {
        argv.push("--dry-run".into());
    }
    flare_deploy(argv)
}

// ---------------------------------------------------------------------------------------
// single kit

#[test]
fn docker_dry_run_writes_nothing_and_plans_what_prepare_then_changes() {
    let (_tmp, root) = tempdir();
    let kit = client(&root, "site-1");
    let config = write_file(&root.join("docker.yaml"), DOCKER);
    let before = Snapshot::take(&root, &[]);

    let data = dry_run_json(&kit.dir, &config, None);
    // Nothing at all: not the kit, not prepared/, no lock or staging, nothing beside.
    Snapshot::take(&root, &[]).assert_same_as(&before, "the kit's folder after a dry run");
    assert!(!kit.path("prepared").exists());

    let output = kit.path("prepared/docker");
    assert_eq!(data["dry_run"], true);
    assert_eq!(data["runtime"], "docker");
    assert_eq!(data["output"], output.to_string_lossy().as_ref());
    assert!(
        data["start_command"]
            .as_str()
            .is_some_and(|c| c.ends_with("./startup/start_docker.sh")),
        "{data}"
    );
    let plan = &data["plan"];
    assert_eq!(plan["output"], output.to_string_lossy().as_ref());
    assert_eq!(plan["replaces_existing_output"], false);

    // The JSON edits, key by key (values from the kit generator and the reference).
    let rm = key_change(
        plan,
        "local/resources.json.default",
        "components[id=resource_manager].path",
    );
    assert_eq!(
        (&rm["old"], &rm["new"]),
        (&json!(GPU_RESOURCE_MANAGER), &json!(PASSTHROUGH_RESOURCE_MANAGER))
    );
    let old_launcher = key_change(
        plan,
        "local/resources.json.default",
        "components[id=process_launcher].path",
    );
    assert_eq!(
        (&old_launcher["old"], &old_launcher["new"]),
        (&json!(CLIENT_PROCESS_LAUNCHER), &Value::Null)
    );
    let launcher = key_change(
        plan,
        "local/resources.json.default",
        "components[id=docker_launcher].path",
    );
    assert_eq!(
        (&launcher["old"], &launcher["new"]),
        (&Value::Null, &json!(DOCKER_CLIENT_LAUNCHER))
    );
    // The generated kit has no comm_config.json: it is added, every key a `+`.
    let host = key_change(plan, "local/comm_config.json", "internal.resources.host");
    assert_eq!(host["old"], Value::Null);

    // The real run changes exactly what the plan listed.
    prepare(None, &kit.dir, &config, None, false).assert_ok();
    let real = real_changes(&kit.dir, &output);
    assert_eq!(plan_changes(plan), real, "plan vs real difference");
    for removed in [
        "startup/start.sh",
        "startup/sub_start.sh",
        "startup/stop_fl.sh",
        "local/resources.json",
    ] {
        assert_eq!(
            real.get(removed).map(String::as_str),
            Some("removed"),
            "{removed}: {real:?}"
        );
    }
    let written = kitgen::read_json(&output.join("local/comm_config.json"));
    assert_eq!(
        host["new"], written["internal"]["resources"]["host"],
        "the planned value is the written one"
    );
    let summary = &plan["summary"];
    let count = |what: &str| real.values().filter(|c| *c == what).count();
    assert_eq!(summary["added"], count("added"));
    assert_eq!(summary["changed"], count("changed"));
    assert_eq!(summary["removed"], count("removed"));
}

#[test]
fn txt_plan_lists_each_entry_and_the_json_edits_as_key_lines() {
    let (_tmp, root) = tempdir();
    let kit = client(&root, "site-1");
    let config = write_file(&root.join("docker.yaml"), DOCKER);
    let out = root.join("out/site-1");
    let before = Snapshot::take(&root, &[]);
    let txt = prepare(None, &kit.dir, &config, Some(&out), true);
    txt.assert_ok();
    Snapshot::take(&root, &[]).assert_same_as(&before, "the tree after a txt dry run");
    assert!(!root.join("out").exists(), "the output's parent is not created");

    let lines: Vec<&str> = txt.stdout.lines().collect();
    assert!(lines.contains(&"dry_run: true"), "{}", txt.stdout);
    assert!(
        lines.contains(&format!("output: {}", out.display()).as_str()),
        "{}",
        txt.stdout
    );
    assert!(
        lines.contains(&format!("Plan (nothing was written): {} (would be created)", out.display()).as_str()),
        "{}",
        txt.stdout
    );
    for line in [
        "  + local/comm_config.json",
        "  ~ local/resources.json.default",
        "  - startup/start.sh",
        "  + startup/start_docker.sh",
        "  + .flare-deploy.json",
    ] {
        assert!(lines.contains(&line), "missing {line:?}:\n{}", txt.stdout);
    }
    let old = format!("      - components[id=resource_manager].path: \"{GPU_RESOURCE_MANAGER}\"");
    let new = format!("      + components[id=resource_manager].path: \"{PASSTHROUGH_RESOURCE_MANAGER}\"");
    let at = |l: &str| {
        lines
            .iter()
            .position(|x| *x == l)
            .unwrap_or_else(|| panic!("missing {l:?}:\n{}", txt.stdout))
    };
    assert_eq!(at(&new), at(&old) + 1, "old value, then new value");
    assert!(at(&old) > at("  ~ local/resources.json.default"));
    // The warning a real run prints, printed here too.
    assert!(txt.stdout.starts_with("Warning: "), "{}", txt.stdout);

    // The counts line agrees with the JSON form and with the real run.
    let plan = dry_run_json(&kit.dir, &config, Some(&out))["plan"].clone();
    let s = &plan["summary"];
    let counts = format!(
        "{} added, {} changed, {} removed",
        s["added"], s["changed"], s["removed"]
    );
    assert_eq!(lines.last().copied(), Some(counts.as_str()), "{}", txt.stdout);
    prepare(None, &kit.dir, &config, Some(&out), false).assert_ok();
    assert_eq!(plan_changes(&plan), real_changes(&kit.dir, &out));
}

#[test]
fn a_dry_run_over_an_existing_output_leaves_it_and_its_parent_as_they_are() {
    let (_tmp, root) = tempdir();
    let kit = client(&root, "site-1");
    let config = write_file(&root.join("docker.yaml"), DOCKER);
    let out = root.join("out/site-1");
    prepare(None, &kit.dir, &config, Some(&out), false).assert_ok();
    // An old mtime on the output and its parent, so that any write shows.
    for dir in [&out, &root.join("out")] {
        let file = std::fs::File::open(dir).expect("open");
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        file.set_times(std::fs::FileTimes::new().set_modified(old))
            .expect("set times");
    }
    let other = write_file(&root.join("other.yaml"), DOCKER_OTHER_IMAGE);
    let before = Snapshot::take(&root, &[]);
    let data = dry_run_json(&kit.dir, &other, Some(&out));
    Snapshot::take(&root, &[]).assert_same_as(&before, "kit, output parent and existing output");
    assert_eq!(data["plan"]["replaces_existing_output"], true);
    let txt = prepare(None, &kit.dir, &other, Some(&out), true);
    txt.assert_ok();
    assert!(
        txt.stdout.contains(&format!(
            "Plan (nothing was written): {} (the existing output would be replaced)",
            out.display()
        )),
        "{}",
        txt.stdout
    );
    Snapshot::take(&root, &[]).assert_same_as(&before, "after the txt dry run");
    // The new image is in the planned start script; the real run agrees.
    prepare(None, &kit.dir, &other, Some(&out), false).assert_ok();
    assert_eq!(plan_changes(&data["plan"]), real_changes(&kit.dir, &out));
    assert!(std::fs::read_to_string(out.join("startup/start_docker.sh"))
        .expect("script")
        .contains("nvflare/nvflare:2.8.2"));
}

#[test]
fn k8s_dry_run_plans_the_chart() {
    let (_tmp, root) = tempdir();
    let kit = client(&root, "site-1");
    let config = write_file(&root.join("k8s.yaml"), K8S);
    let out = root.join("site-1-k8s");
    let before = Snapshot::take(&root, &[]);
    let data = dry_run_json(&kit.dir, &config, Some(&out));
    Snapshot::take(&root, &[]).assert_same_as(&before, "the tree after a k8s dry run");
    assert_eq!(data["runtime"], "k8s");
    assert!(
        data["helm_command"]
            .as_str()
            .is_some_and(|c| c.starts_with("helm upgrade --install site-1 ")),
        "{data}"
    );
    let plan = &data["plan"];
    let planned = plan_changes(plan);
    for added in [
        "helm_chart",
        "helm_chart/Chart.yaml",
        "helm_chart/values.yaml",
        "helm_chart/templates",
    ] {
        assert_eq!(
            planned.get(added).map(String::as_str),
            Some("added"),
            "{added}: {planned:?}"
        );
    }
    let launcher = key_change(plan, "local/resources.json.default", "components[id=k8s_launcher].path");
    assert_eq!(launcher["new"], K8S_CLIENT_LAUNCHER);
    prepare(None, &kit.dir, &config, Some(&out), false).assert_ok();
    assert_eq!(planned, real_changes(&kit.dir, &out));
}

#[test]
fn the_scratch_directory_is_never_the_outputs_parent_or_inside_the_kit() {
    let (_tmp, root) = tempdir();
    let kit = client(&root, "site-1");
    let config = write_file(&root.join("docker.yaml"), DOCKER);
    std::fs::create_dir_all(root.join("out")).expect("mkdir out");
    std::fs::create_dir_all(kit.path("local/tmp")).expect("mkdir tmp in kit");
    // $TMPDIR pointing where a dry run must not write: the output's parent, the first
    // existing ancestor of a new output's parent, a folder inside the kit.
    let cases = [
        (root.join("out"), root.join("out/site-1")),
        (root.clone(), root.join("new/deeper/site-1")),
        (kit.path("local/tmp"), root.join("out/site-1")),
    ];
    for (tmpdir, output) in cases {
        let before = Snapshot::take(&root, &[]);
        let dry = flare_deploy_tests::harness::run_in(
            None,
            prepare_argv(None, &kit.dir, &config, Some(&output), true),
            &[("TMPDIR", tmpdir.to_str().expect("utf-8"))],
        );
        dry.assert_ok();
        Snapshot::take(&root, &[]).assert_same_as(&before, &format!("TMPDIR={}", tmpdir.display()));
    }
}

// ---------------------------------------------------------------------------------------
// errors: the same as prepare's

#[test]
fn a_bad_config_fails_the_dry_run_with_the_error_of_prepare() {
    let (_tmp, root) = tempdir();
    let kit = client(&root, "site-1");
    let cases = [
        ("no-parent.yaml", "runtime: docker\n"),
        ("unknown-runtime.yaml", "runtime: nomad\n"),
        (
            "bad-key.yaml",
            "runtime: docker\nparent:\n  docker_image: x:1\n  dockr_image: y\n",
        ),
        ("not-yaml.yaml", "runtime: [docker\n"),
    ];
    for (file, text) in cases {
        let config = write_file(&root.join(file), text);
        let before = Snapshot::take(&root, &[]);
        for format in ["txt", "json"] {
            let real = prepare(Some(format), &kit.dir, &config, None, false);
            let dry = prepare(Some(format), &kit.dir, &config, None, true);
            assert_eq!(real.code, 4, "{file}: {real:?}");
            assert_eq!(
                (dry.code, &dry.stdout, &dry.stderr),
                (real.code, &real.stdout, &real.stderr),
                "{file} ({format})"
            );
        }
        Snapshot::take(&root, &[]).assert_same_as(&before, file);
    }
    // A missing kit and an output inside the kit, too.
    let config = write_file(&root.join("docker.yaml"), DOCKER);
    let inside = kit.path("local/out");
    for extra in [
        vec![root.join("no-such-kit").into_os_string()],
        vec![
            kit.dir.clone().into_os_string(),
            "--output".into(),
            inside.into_os_string(),
        ],
    ] {
        let mut args: Vec<std::ffi::OsString> = vec!["prepare".into()];
        args.extend(extra);
        args.extend(["--config".into(), config.clone().into_os_string()]);
        let real = flare_deploy(&args);
        args.push("--dry-run".into());
        let dry = flare_deploy(&args);
        assert_eq!(real.code, 4, "{real:?}");
        assert_eq!((dry.code, &dry.stderr), (real.code, &real.stderr));
    }
}

// ---------------------------------------------------------------------------------------
// --all

#[test]
fn all_dry_run_writes_nothing_and_plans_each_kit() {
    let (_tmp, root) = tempdir();
    let dir = kitgen::federation(&root, &["site-1", "site-2"], true);
    let config = write_file(&root.join("docker.yaml"), DOCKER);
    let out_root = root.join("outputs");
    let before = Snapshot::take(&root, &[]);
    let data = ok_json(&prepare_all(true, &dir, &config, &out_root, true));
    Snapshot::take(&root, &[]).assert_same_as(&before, "the federation after a dry run");
    assert!(!out_root.exists(), "no output root");
    assert_eq!(data["summary"]["planned"], 3);
    assert_eq!(data["summary"]["dry_run"], true);

    let txt = prepare_all(false, &dir, &config, &out_root, true);
    txt.assert_ok();
    Snapshot::take(&root, &[]).assert_same_as(&before, "after the txt dry run");
    assert!(
        txt.stdout.contains("\n3 planned, 0 failed, 1 skipped\n"),
        "{}",
        txt.stdout
    );
    for kit in ["server1", "site-1", "site-2"] {
        let out = out_root.join(kit);
        let plan_line = format!(
            "{kit}: Plan (nothing was written): {} (would be created)",
            out.display()
        );
        assert!(txt.stdout.contains(&plan_line), "{plan_line}\n{}", txt.stdout);
        assert!(
            txt.stdout.contains(&format!("{kit}:   + startup/start_docker.sh\n")),
            "{}",
            txt.stdout
        );
    }

    prepare_all(false, &dir, &config, &out_root, false).assert_ok();
    for item in data["kits"].as_array().expect("kits") {
        let kit = item["kit"].as_str().expect("kit");
        if item["status"] == "skipped" {
            assert_eq!(kit, "admin@x.com");
            continue;
        }
        assert_eq!(item["result"]["dry_run"], true, "{item}");
        let planned = plan_changes(&item["result"]["plan"]);
        assert_eq!(planned, real_changes(&dir.join(kit), &out_root.join(kit)), "{kit}");
    }
}

// ---------------------------------------------------------------------------------------
// plugins: the scratch directory is their staging directory, confinement holds

const PLUGIN: &str = r##"#!/usr/bin/env python3
import json, os, sys

MODE = "@MODE@"


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    request = json.loads(line)
    method, rid, params = request["method"], request["id"], request["params"]
    result = {}
    if method == "handshake":
        result = {"protocol_version": 1, "name": "drytest"}
    elif method == "describe":
        result = {"name": "drytest", "summary": "dry-run test plugin", "config_schema": {"type": "object"}}
    elif method == "validate":
        result = {"errors": []}
    elif method == "prepare":
        with open(os.path.join(params["staging_dir"], "startup", "start_drytest.sh"), "w") as f:
            f.write("#!/bin/sh\necho start\n")
        if MODE == "chmod":
            os.chmod(os.path.join(params["staging_dir"], "readme.txt"), 0o600)
        if MODE == "touch_kit":
            with open(os.path.join(params["kit"]["input_dir"], "local", "resources.json.default"), "a") as f:
                f.write(" ")
        result = {"result": {"start_command": "start-drytest"}, "warnings": [], "edits": {}}
    send({"protocol": 1, "id": rid, "result": result})
"##;

fn plugin_setup(mode: &str) -> (tempfile::TempDir, PathBuf, Kit, PathBuf, PathBuf) {
    let (tmp, root) = tempdir();
    let kit = client(&root, "site-1");
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    kitgen::write(
        &plugins.join("flare-deploy-target-drytest"),
        &PLUGIN.replace("@MODE@", mode),
        0o755,
    );
    let config = write_file(&root.join("plugin.yaml"), "runtime: drytest\n");
    (tmp, root, kit, plugins, config)
}

#[test]
fn a_plugin_dry_run_plans_what_its_real_run_writes() {
    let (_tmp, root, kit, plugins, config) = plugin_setup("good");
    let out = root.join("out");
    let env = [("FLARE_DEPLOY_PLUGIN_PATH", plugins.to_str().expect("utf-8"))];
    let args = |dry: bool| prepare_argv(Some("json"), &kit.dir, &config, Some(&out), dry);
    let before = Snapshot::take(&root, &[]);
    let dry = flare_deploy_tests::harness::run_in(None, args(true), &env);
    let data = ok_json(&dry);
    Snapshot::take(&root, &[]).assert_same_as(&before, "after a plugin dry run");
    assert_eq!(data["start_command"], "start-drytest");
    let planned = plan_changes(&data["plan"]);
    assert_eq!(
        planned.get("startup/start_drytest.sh").map(String::as_str),
        Some("added"),
        "{planned:?}"
    );
    ok_json(&flare_deploy_tests::harness::run_in(None, args(false), &env));
    assert_eq!(planned, real_changes(&kit.dir, &out));
}

#[test]
fn a_plugin_that_writes_into_the_kit_during_a_dry_run_is_stopped() {
    let (_tmp, root, kit, plugins, config) = plugin_setup("touch_kit");
    let env = [("FLARE_DEPLOY_PLUGIN_PATH", plugins.to_str().expect("utf-8"))];
    let before = Snapshot::take(&root, &[]);
    let dry = flare_deploy_tests::harness::run_in(None, prepare_argv(None, &kit.dir, &config, None, true), &env);
    assert_eq!(dry.code, 4, "{dry:?}");
    assert!(
        dry.stderr.contains("Code: PLUGIN_WROTE_OUTSIDE (exit 4)"),
        "{}",
        dry.stderr
    );
    // Refused by the kernel, or undone from the copy taken before: either way the kit is
    // as it was.
    Snapshot::take(&root, &[]).assert_same_as(&before, "the kit after a hostile dry run");
}

#[test]
fn a_mode_change_is_planned_with_both_modes() {
    // No built-in target changes a kit file's mode; this plugin does (readme.txt 0644 -> 0600).
    let (_tmp, root, kit, plugins, config) = plugin_setup("chmod");
    let out = root.join("out");
    let env = [("FLARE_DEPLOY_PLUGIN_PATH", plugins.to_str().expect("utf-8"))];
    let prepare = |dry_run: bool, format: &str| {
        let args = prepare_argv(Some(format), &kit.dir, &config, Some(&out), dry_run);
        flare_deploy_tests::harness::run_in(None, args, &env)
    };
    let data = ok_json(&prepare(true, "json"));
    let change = data["plan"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["path"] == "readme.txt")
        .unwrap_or_else(|| panic!("readme.txt not planned: {data}"))
        .clone();
    assert_eq!(
        change,
        json!({"path": "readme.txt", "change": "changed", "type": "file", "content_changed": false,
               "mode": {"from": "0644", "to": "0600"}})
    );
    let txt = prepare(true, "txt");
    txt.assert_ok();
    assert!(
        txt.stdout.contains("\n  ~ readme.txt (mode 0644 -> 0600)\n"),
        "{}",
        txt.stdout
    );
    ok_json(&prepare(false, "json"));
    let real = real_changes(&kit.dir, &out);
    assert_eq!(real.get("readme.txt").map(String::as_str), Some("changed"));
    assert_eq!(plan_changes(&data["plan"]), real);
}
