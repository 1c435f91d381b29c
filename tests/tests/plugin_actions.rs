//! Actions of executable plugins (docs/plugin-protocol.md, protocol version 2): the
//! example podman plugin's `systemd-unit` listed and run; what the engine sends; the
//! confinement an action runs under (only an action that writes the kit may write, and
//! only below the kit); a version-1 plugin has no actions; malformed action lists.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use flare_deploy_tests::fsutil::{plugins_dir, tempdir};
use flare_deploy_tests::harness::run_exact;
use flare_deploy_tests::kitgen::{self, write};
use flare_deploy_tests::{Project, Run};
use serde_json::{json, Value};

/// A client kit prepared by the example podman plugin, and a plugin directory.
struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    plugins: PathBuf,
    out: PathBuf,
}

fn setup() -> Setup {
    let (tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root.join("kits"));
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    // A copy of its own: tests run in parallel.
    std::fs::copy(
        plugins_dir().join("flare-deploy-target-podman"),
        plugins.join("flare-deploy-target-podman"),
    )
    .expect("copy the example plugin");
    let out = root.join("out/site-1-podman");
    let setup = Setup {
        _tmp: tmp,
        root,
        plugins,
        out,
    };
    setup
        .run(&[
            &"prepare",
            &kit.dir,
            &"--config",
            &plugins_dir().join("podman.yaml"),
            &"--output",
            &setup.out,
            &"--nvflare-version",
            &"2.9",
        ])
        .assert_ok();
    setup
}

impl Setup {
    fn run(&self, args: &[&dyn AsRef<OsStr>]) -> Run {
        let argv: Vec<&OsStr> = args.iter().map(|a| a.as_ref()).collect();
        run_exact(
            None,
            argv,
            &[("FLARE_DEPLOY_PLUGIN_PATH", self.plugins.to_str().expect("utf-8"))],
        )
    }
}

#[test]
fn the_example_plugin_lists_and_runs_its_action() {
    let setup = setup();
    let run = setup.run(&[&"targets"]);
    run.assert_ok();
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("podman"))
        .expect("podman row");
    assert!(row.contains("systemd-unit"), "{}", run.stdout);
    let run = setup.run(&[&"targets", &"--format", &"json"]);
    let podman = run.json()["data"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["name"] == "podman")
        .expect("podman")
        .clone();
    assert_eq!(
        podman["actions"],
        json!([{"name": "systemd-unit", "summary": "write a systemd unit that runs startup/start_podman.sh"}])
    );
    let run = setup.run(&[&"targets", &"show", &"podman"]);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("\nActions (flare-deploy podman <action> [KIT] [options]):\n  systemd-unit  ")
            && run
                .stdout
                .contains("      --restart <POLICY>  When systemd restarts the parent"),
        "{}",
        run.stdout
    );
    let help = setup.run(&[&"podman", &"systemd-unit", &"--help"]);
    help.assert_ok();
    assert!(help.stdout.contains("--restart <POLICY>") && help.stdout.contains("[choices: on-failure, always, no]"));
    let schema: Value =
        serde_json::from_str(&setup.run(&[&"podman", &"systemd-unit", &"--schema"]).stdout).expect("schema");
    assert_eq!(schema["command"], "flare-deploy podman systemd-unit");
    assert_eq!(schema["args"][2]["name"], "--restart");

    // Run it: the unit is written into the output, the receipt records it.
    let run = setup.run(&[
        &"podman",
        &"systemd-unit",
        &setup.out,
        &"--restart",
        &"always",
        &"--format",
        &"json",
    ]);
    run.assert_ok();
    let unit = setup.out.join("startup/nvflare-site-1.service");
    assert_eq!(
        run.json()["data"],
        json!({"unit_file": unit.to_str(), "install_command": format!(
            "systemctl --user link {} && systemctl --user enable --now nvflare-site-1.service", unit.display())})
    );
    let text = std::fs::read_to_string(&unit).expect("unit file");
    assert!(text.contains("Restart=always\n"), "{text}");
    assert!(text.contains(&format!("ExecStart={}/startup/start_podman.sh\n", setup.out.display())));
    let receipt = kitgen::read_json(&setup.out.join(".flare-deploy.json"));
    assert!(
        receipt["files"]
            .as_array()
            .expect("files")
            .iter()
            .any(|f| f["path"] == "startup/nvflare-site-1.service"),
        "the receipt records what the action wrote"
    );

    // Its errors come through with their codes.
    let run = setup.run(&[&"podman", &"systemd-unit", &setup.out, &"--restart", &"sometimes"]);
    run.assert_txt_error(
        "INVALID_ARGS",
        "The plugin 'podman' reported: --restart must be one of ['on-failure', 'always', 'no'].",
        "Pass --restart on-failure, always or no.",
    );
    let other = setup.root.join("kits/site-1");
    let run = setup.run(&[&"podman", &"systemd-unit", &other]);
    run.assert_error_code(
        "INVALID_KIT",
        "The plugin 'podman' reported: Not a prepared podman output (no startup/start_podman.sh): ",
    );
    let run = setup.run(&[&"podman", &"restart", &setup.out]);
    assert!(
        run.stderr
            .contains("Invalid arguments. \u{2014} unrecognized subcommand 'restart'"),
        "{}",
        run.stderr
    );
}

/// A version-2 plugin with three actions: `record` (reads only; writes its transcript
/// to `$RECORD_TO` unless confined), `touch` (writes the kit), `sneak` (declares no
/// writes, then writes into the kit). With `VERSION=1` it speaks version 1 and lists
/// the same actions, which the engine must ignore.
const ACTION_PLUGIN: &str = r#"#!/usr/bin/env python3
import json, os, sys

VERSION = int("@VERSION@")
ACTIONS = @ACTIONS@
version = 1
seen = []

def handle(method, params):
    global version
    if method == "handshake":
        version = VERSION
        return {"protocol_version": VERSION, "name": "acts"}
    if method == "describe":
        return {"name": "acts", "summary": "actions", "config_schema": {}, "actions": ACTIONS}
    if method == "action":
        name, kit = params["action"], params["kit"]
        if name == "record":
            return {"result": {"requests": seen, "cwd": os.getcwd()}, "warnings": ["recorded"]}
        target = os.path.join(kit, "local", "action-was-here.txt")
        with open(target, "w") as f:
            f.write(name)
        return {"result": {"wrote": target}}
    raise ValueError(method)

for line in sys.stdin:
    request = json.loads(line)
    seen.append(request)
    try:
        answer = {"id": request["id"], "protocol": version, "result": handle(request["method"], request["params"])}
    except OSError as e:
        sys.stderr.write(f"PermissionError: {e}\n")
        sys.exit(1)
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
"#;

const ACTIONS: &str = r#"[
    {"name": "record", "summary": "say what the engine sent",
     "options": [{"name": "flavour", "value_name": "F"}, {"name": "loud", "switch": True}]},
    {"name": "touch", "summary": "write into the kit", "writes_kit": True},
    {"name": "sneak", "summary": "write without saying so"}
]"#;

fn action_plugin(dir: &Path, version: u32, actions: &str) -> PathBuf {
    let text = ACTION_PLUGIN
        .replace("@VERSION@", &version.to_string())
        .replace("@ACTIONS@", actions);
    let path = dir.join("flare-deploy-target-acts");
    write(&path, &text, 0o755);
    path
}

#[test]
fn the_engine_sends_the_action_the_kit_and_the_options() {
    let setup = setup();
    action_plugin(&setup.plugins, 2, ACTIONS);
    let run = setup.run(&[
        &"acts",
        &"record",
        &setup.out,
        &"--flavour",
        &"mint",
        &"--loud",
        &"--format",
        &"json",
    ]);
    run.assert_ok();
    assert_eq!(run.stderr, "Warning: recorded\n");
    let data = run.json()["data"].clone();
    assert_eq!(data["cwd"], json!(setup.out.to_str()), "the plugin runs in the kit");
    let requests = data["requests"].as_array().expect("requests");
    let methods: Vec<&str> = requests.iter().filter_map(|r| r["method"].as_str()).collect();
    assert_eq!(methods, ["handshake", "action"]);
    assert_eq!(requests[0]["protocol"], 1, "the handshake is sent as version 1");
    assert_eq!(requests[1]["protocol"], 2, "later requests use the agreed version");
    assert_eq!(
        requests[1]["params"],
        json!({"action": "record", "kit": setup.out.to_str(), "options": {"flavour": "mint", "loud": true}})
    );
    // Options not given are absent.
    let run = setup.run(&[&"acts", &"record", &setup.out, &"--format", &"json"]);
    assert_eq!(run.json()["data"]["requests"][1]["params"]["options"], json!({}));
}

#[test]
fn only_an_action_that_writes_the_kit_may_write_and_only_there() {
    let setup = setup();
    let plugin = action_plugin(&setup.plugins, 2, ACTIONS);
    let marker = setup.out.join("local/action-was-here.txt");
    let run = setup.run(&[&"acts", &"touch", &setup.out]);
    run.assert_ok();
    assert_eq!(std::fs::read_to_string(&marker).expect("written"), "touch");
    std::fs::remove_file(&marker).expect("rm");
    // Confined, an action that declared no writes cannot write into the kit.
    if landlock_available() {
        let run = setup.run(&[&"acts", &"sneak", &setup.out]);
        run.assert_error_code(
            "PLUGIN_WROTE_OUTSIDE",
            &format!(
                "Plugin {} tried to write outside its staging directory: {}",
                plugin.display(),
                marker.display()
            ),
        );
        assert!(!marker.exists());
    }
}

/// Whether this kernel confines plugins fully (else the engine falls back and the
/// confinement test has nothing to show).
fn landlock_available() -> bool {
    let available = flare_deploy_core::plugin::fully_confined();
    if !available {
        flare_deploy_tests::tools::skipped("this kernel cannot confine plugins (Landlock)");
    }
    available
}

#[test]
fn a_version_1_plugin_has_no_actions_and_bad_lists_are_protocol_errors() {
    let setup = setup();
    action_plugin(&setup.plugins, 1, ACTIONS);
    let run = setup.run(&[&"acts", &"record", &setup.out]);
    assert!(run.stderr.contains("runtime 'acts' has no actions"), "{}", run.stderr);
    let run = setup.run(&[&"targets", &"--format", &"json"]);
    let acts = run.json()["data"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["name"] == "acts")
        .expect("acts")
        .clone();
    assert_eq!(acts["actions"], json!([]));

    for (actions, what) in [
        (
            r#"[{"name": "Bad Name"}]"#,
            "action name \"Bad Name\" is not a lower-case word",
        ),
        (
            r#"[{"name": "a", "options": [{"name": "kit"}]}]"#,
            "option --kit of action 'a' is reserved or repeated",
        ),
        (r#"[{"name": "a"}, {"name": "a"}]"#, "action 'a' is listed twice"),
        (r#"{"name": "a"}"#, "'actions' of 'describe' must be a list"),
    ] {
        let plugin = action_plugin(&setup.plugins, 2, actions);
        let run = setup.run(&[&"acts", &"a", &setup.out]);
        run.assert_error_code("PLUGIN_PROTOCOL_ERROR", &format!("Plugin {}: {what}", plugin.display()));
        // `targets show` says so too; the listing still shows the target.
        let run = setup.run(&[&"targets", &"show", &"acts"]);
        assert!(run.stderr.contains("PLUGIN_PROTOCOL_ERROR"), "{}", run.stderr);
        setup.run(&[&"targets"]).assert_ok();
    }
}
