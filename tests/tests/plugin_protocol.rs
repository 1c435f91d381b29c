//! The plugin protocol as a third party meets it (docs/plugin-protocol.md): the engine
//! checks a config against the JSON Schema the plugin declares before the plugin sees
//! it, quotes a line that is not JSON, says that a plugin's error is the plugin's, lets a
//! version 3 plugin keep the kit's resource manager, and the `prepare` exchange the docs
//! show is what the bundled podman plugin really answers. Plugins here are small Python
//! scripts written into each test's own directory; every run uses the built binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flare_deploy_tests::fsutil::{plugins_dir, read, repo, tempdir};
use flare_deploy_tests::harness::prepare_with;
use flare_deploy_tests::kitgen::{self, component, PASSTHROUGH_RESOURCE_MANAGER};
use flare_deploy_tests::{Kit, Project, Run, Snapshot};
use serde_json::{json, Value};

const WARN_RESOURCE_MANAGER: &str = "Warning: deploy prepare replaces component 'resource_manager' with PassthroughResourceManager; existing resource manager path/args will not be used by the prepared runtime.";

/// A provisioned client kit `site-1`, an output path and a plugin directory.
struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    kit: Kit,
    output: PathBuf,
    plugin_dir: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let (tmp, root) = tempdir();
        let kit = Project::new("example_project")
            .client("site-1")
            .build(&root.join("kits"));
        let plugin_dir = root.join("plugins");
        std::fs::create_dir_all(root.join("outs")).expect("mkdir outs");
        std::fs::create_dir_all(&plugin_dir).expect("mkdir plugins");
        Setup {
            _tmp: tmp,
            output: root.join("outs/site-1-out"),
            root,
            kit,
            plugin_dir,
        }
    }

    fn config(&self, yaml: &str) -> PathBuf {
        let path = self.root.join("config.yaml");
        std::fs::write(&path, yaml).expect("write config");
        path
    }

    /// `prepare` with the plugin directory on `FLARE_DEPLOY_PLUGIN_PATH`.
    fn prepare(&self, config: &Path, extra: &[&str]) -> Run {
        let plugin_path = self.plugin_dir.to_str().expect("utf-8 path");
        prepare_with(
            &self.kit.dir,
            config,
            &self.output,
            extra,
            &[("FLARE_DEPLOY_PLUGIN_PATH", plugin_path)],
        )
    }

    /// Exit 4, nothing written: the input kit as it was, no output.
    #[track_caller]
    fn assert_nothing_written(&self, before: &Snapshot) {
        assert_eq!(
            before.diff(&Snapshot::take(&self.kit.dir, &[])),
            Vec::<String>::new(),
            "the input kit is untouched"
        );
        assert!(!self.output.exists(), "no output: {}", self.output.display());
    }
}

/// A plugin speaking `version`, declaring `schema` (JSON text; `null` for none), in
/// `mode`: `strict` refuses to be asked to validate or prepare (so a config that reaches
/// it says so), `garbage` answers `prepare` with the line `garbage`, `raise` answers
/// `prepare` with an error of its own, `keep` / `replace` prepare with a Docker launcher
/// keeping / replacing the kit's resource manager.
const PLUGIN: &str = r#"#!/usr/bin/env python3
import json, sys

NAME = "@NAME@"
VERSION = @VERSION@
MODE = "@MODE@"
SCHEMA = json.loads(r'''@SCHEMA@''')
GARBAGE = r'''@GARBAGE@'''


class Refusal(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def answer(method, params):
    if method == "handshake":
        return {"protocol_version": VERSION, "name": NAME}
    if method == "describe":
        return {"name": NAME, "summary": "a protocol test plugin", "config_schema": SCHEMA}
    if MODE == "strict":
        raise Refusal("STRICT", "the plugin was asked to " + method)
    if method == "validate":
        return {"errors": []}
    if method == "prepare":
        if MODE == "raise":
            raise Refusal("QUOTA_EXCEEDED", "no GPU quota left for " + params["kit"]["name"])
        launcher = {"id": "docker_launcher",
                    "path": "nvflare.app_opt.job_launcher.docker_launcher.ClientDockerJobLauncher",
                    "args": {"network": "n1"}}
        if MODE == "keep":
            launcher["keep_resource_manager"] = True
        return {"result": {"start_command": "run-it"}, "edits": {"launcher": launcher}}
    raise Refusal("UNKNOWN_METHOD", "unknown method " + method)


for line in sys.stdin:
    request = json.loads(line)
    if MODE == "garbage" and request["method"] == "prepare":
        sys.stdout.write(GARBAGE + "\n")
        sys.stdout.flush()
        continue
    response = {"protocol": VERSION, "id": request["id"]}
    try:
        response["result"] = answer(request["method"], request["params"])
    except Refusal as e:
        response["error"] = {"code": e.code, "message": str(e), "hint": "Ask the plugin's author."}
    sys.stdout.write(json.dumps(response) + "\n")
    sys.stdout.flush()
"#;

struct Plugin<'a> {
    name: &'a str,
    version: u32,
    mode: &'a str,
    schema: &'a str,
    garbage: &'a str,
}

impl Plugin<'_> {
    fn install(&self, dir: &Path) -> PathBuf {
        let text = PLUGIN
            .replace("@NAME@", self.name)
            .replace("@VERSION@", &self.version.to_string())
            .replace("@MODE@", self.mode)
            .replace("@SCHEMA@", self.schema)
            .replace("@GARBAGE@", self.garbage);
        let path = dir.join(format!("flare-deploy-target-{}", self.name));
        kitgen::write(&path, &text, 0o755);
        path
    }
}

fn plugin<'a>(name: &'a str, version: u32, mode: &'a str) -> Plugin<'a> {
    Plugin {
        name,
        version,
        mode,
        schema: "null",
        garbage: "",
    }
}

/// The schema of the `strict` plugin: `parent.image` a required string, no other keys.
const STRICT_SCHEMA: &str = r#"{
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "additionalProperties": false, "required": ["runtime", "parent"],
    "properties": {
        "runtime": {"const": "strict"},
        "parent": {"type": "object", "additionalProperties": false, "required": ["image"],
                   "properties": {"image": {"type": "string", "minLength": 1},
                                  "gpus": {"type": "integer", "minimum": 0}}}
    }
}"#;

/// The JSON envelope of an error run.
#[track_caller]
fn json_error(run: &Run) -> Value {
    assert_eq!(run.code, 4, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let doc = run.json();
    assert_eq!(doc["status"], "error", "{doc}");
    doc
}

#[test]
fn a_config_that_breaks_the_declared_schema_never_reaches_the_plugin() {
    let setup = Setup::new();
    Plugin {
        schema: STRICT_SCHEMA,
        ..plugin("strict", 2, "strict")
    }
    .install(&setup.plugin_dir);
    let hint = "The config does not match the schema the plugin 'strict' declares (flare-deploy targets show strict); fix that key.";
    // (config, the key named, the start of the schema's complaint, its JSON pointer)
    let cases = [
        (
            "runtime: strict\nparent:\n  image: 5\n",
            "parent.image",
            "5 is not of type \"string\"",
            "/parent/image",
        ),
        (
            "runtime: strict\nparent:\n  image: i\n  gpus: many\n",
            "parent.gpus",
            "\"many\" is not of type \"integer\"",
            "/parent/gpus",
        ),
        (
            "runtime: strict\nparent:\n  image: i\n  imgae: j\n",
            "parent.imgae",
            "Additional properties are not allowed",
            "/parent/imgae",
        ),
        (
            "runtime: strict\nparent:\n  gpus: 1\n",
            "parent.image",
            "\"image\" is a required property",
            "/parent/image",
        ),
        (
            "runtime: strict\n",
            "parent",
            "\"parent\" is a required property",
            "/parent",
        ),
    ];
    let before = Snapshot::take(&setup.kit.dir, &[]);
    for (yaml, key, complaint, pointer) in cases {
        let config = setup.config(yaml);
        let run = setup.prepare(&config, &[]);
        run.assert_error_code("INVALID_CONFIG", &format!("{key}: {complaint}"));
        assert!(
            run.stderr.contains(&format!("(JSON pointer {pointer})")),
            "{yaml}: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .ends_with(&format!("Hint: {hint}\nCode: INVALID_CONFIG (exit 4)\n")),
            "{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("asked to"),
            "the plugin was asked about {yaml:?}: {}",
            run.stderr
        );
        setup.assert_nothing_written(&before);

        let doc = json_error(&setup.prepare(&config, &["--format", "json"]));
        assert_eq!(doc["error_code"], "INVALID_CONFIG");
        let message = doc["message"].as_str().expect("message");
        assert!(message.starts_with(&format!("{key}: {complaint}")), "{message}");
        assert_eq!(doc["hint"], hint);
        setup.assert_nothing_written(&before);
    }

    // A config that matches goes on to the plugin (which, being strict, refuses it): the
    // cases above failed before the plugin, not for want of one.
    let run = setup.prepare(&setup.config("runtime: strict\nparent:\n  image: i\n  gpus: 2\n"), &[]);
    run.assert_error_code(
        "PLUGIN_FAILED",
        "The plugin 'strict' reported: the plugin was asked to validate",
    );
    setup.assert_nothing_written(&before);
}

#[test]
fn a_config_schema_that_is_not_a_json_schema_is_the_plugins_error() {
    let setup = Setup::new();
    let path = Plugin {
        schema: r#"{"type": "object", "properties": {"parent": {"type": 12}}}"#,
        ..plugin("broken", 2, "strict")
    }
    .install(&setup.plugin_dir);
    let before = Snapshot::take(&setup.kit.dir, &[]);
    let run = setup.prepare(&setup.config("runtime: broken\nparent: {}\n"), &[]);
    run.assert_error_code(
        "PLUGIN_PROTOCOL_ERROR",
        &format!(
            "Plugin {}: its config_schema is not a valid JSON Schema: ",
            path.display()
        ),
    );
    assert!(!run.stderr.contains("asked to"), "{}", run.stderr);
    setup.assert_nothing_written(&before);
}

#[test]
fn a_line_that_is_not_json_is_quoted_in_the_error() {
    let setup = Setup::new();
    let config = setup.config("runtime: chatty\n");
    let before = Snapshot::take(&setup.kit.dir, &[]);

    let path = Plugin {
        garbage: "Loading model weights... 42% \"done\"",
        ..plugin("chatty", 2, "garbage")
    }
    .install(&setup.plugin_dir);
    let run = setup.prepare(&config, &[]);
    run.assert_error_code(
        "PLUGIN_PROTOCOL_ERROR",
        &format!(
            "Plugin {}: answered 'prepare' with a line that is not JSON (",
            path.display()
        ),
    );
    assert!(
        run.stderr.contains(r#"): "Loading model weights... 42% \"done\"""#),
        "the line is quoted as a JSON string: {}",
        run.stderr
    );
    setup.assert_nothing_written(&before);
    let doc = json_error(&setup.prepare(&config, &["--format", "json"]));
    assert_eq!(doc["error_code"], "PLUGIN_PROTOCOL_ERROR");
    let message = doc["message"].as_str().expect("message");
    assert!(
        message.ends_with(r#"): "Loading model weights... 42% \"done\"""#),
        "{message}"
    );

    // A long line is cut, saying how long it was.
    let long = "x".repeat(5000);
    Plugin {
        garbage: &long,
        ..plugin("chatty", 2, "garbage")
    }
    .install(&setup.plugin_dir);
    let run = setup.prepare(&config, &[]);
    run.assert_error_code("PLUGIN_PROTOCOL_ERROR", &format!("Plugin {}", path.display()));
    let kept = format!("\"{}\"... (5000 characters in all)", "x".repeat(200));
    assert!(run.stderr.contains(&kept), "{}", run.stderr);
    assert!(!run.stderr.contains(&"x".repeat(201)), "cut after 200 characters");
    setup.assert_nothing_written(&before);
}

#[test]
fn an_error_the_plugin_raises_is_reported_as_the_plugins() {
    let setup = Setup::new();
    plugin("raiser", 2, "raise").install(&setup.plugin_dir);
    let config = setup.config("runtime: raiser\n");
    let before = Snapshot::take(&setup.kit.dir, &[]);
    // An unknown code is PLUGIN_FAILED; the message and hint are the plugin's.
    let message = "The plugin 'raiser' reported: no GPU quota left for site-1";
    setup
        .prepare(&config, &[])
        .assert_txt_error("PLUGIN_FAILED", message, "Ask the plugin's author.");
    setup.assert_nothing_written(&before);
    let doc = json_error(&setup.prepare(&config, &["--format", "json"]));
    assert_eq!(doc["error_code"], "PLUGIN_FAILED");
    assert_eq!(doc["message"], message);
    assert_eq!(doc["hint"], "Ask the plugin's author.");
    setup.assert_nothing_written(&before);
}

#[test]
fn a_version_3_plugin_can_keep_the_kits_resource_manager() {
    let setup = Setup::new();
    let config = setup.config("runtime: keeper\n");
    let provisioned = setup.kit.read_json("local/resources.json.default");
    let manager = component(&provisioned, "resource_manager").expect("the kit has a resource manager");
    let consumer = component(&provisioned, "resource_consumer").expect("the kit has a resource consumer");
    assert_ne!(manager["path"], PASSTHROUGH_RESOURCE_MANAGER, "the kit's own manager");

    plugin("keeper", 3, "keep").install(&setup.plugin_dir);
    let run = setup.prepare(&config, &["--format", "json"]);
    run.assert_ok();
    let prepared = kitgen::read_json(&setup.output.join("local/resources.json.default"));
    assert_eq!(
        component(&prepared, "resource_manager"),
        Some(manager),
        "kept as provisioned"
    );
    assert_eq!(
        component(&prepared, "resource_consumer"),
        Some(consumer),
        "kept as provisioned"
    );
    assert_eq!(
        component(&prepared, "docker_launcher"),
        Some(&json!({"id": "docker_launcher",
                     "path": "nvflare.app_opt.job_launcher.docker_launcher.ClientDockerJobLauncher",
                     "args": {"network": "n1"}}))
    );
    assert!(
        component(&prepared, "process_launcher").is_none(),
        "the launcher is replaced"
    );
    assert!(!run.stderr.contains(WARN_RESOURCE_MANAGER), "{}", run.stderr);

    // Without the request the passthrough manager replaces it, as for every runtime.
    plugin("keeper", 3, "replace").install(&setup.plugin_dir);
    let run = setup.prepare(&config, &["--format", "json"]);
    run.assert_ok();
    let prepared = kitgen::read_json(&setup.output.join("local/resources.json.default"));
    assert_eq!(
        component(&prepared, "resource_manager").map(|c| &c["path"]),
        Some(&json!(PASSTHROUGH_RESOURCE_MANAGER))
    );
    assert!(component(&prepared, "resource_consumer").is_none());
    assert!(run.stderr.contains(WARN_RESOURCE_MANAGER), "{}", run.stderr);

    // A version 2 plugin cannot ask: it could not know an older engine would ignore it.
    plugin("keeper", 2, "keep").install(&setup.plugin_dir);
    let previous = Snapshot::take(&setup.output, &[]);
    let before = Snapshot::take(&setup.kit.dir, &[]);
    let run = setup.prepare(&config, &[]);
    run.assert_error_code("PLUGIN_PROTOCOL_ERROR", "Plugin edits are malformed: launcher.keep_resource_manager needs protocol version 3; the plugin speaks version 2");
    assert_eq!(before.diff(&Snapshot::take(&setup.kit.dir, &[])), Vec::<String>::new());
    assert_eq!(
        previous.diff(&Snapshot::take(&setup.output, &[])),
        Vec::<String>::new(),
        "the previous output is kept as it was"
    );
}

/// The JSON block that follows `marker` in docs/plugin-protocol.md.
fn documented(marker: &str) -> Value {
    let docs = read(&repo().join("docs/plugin-protocol.md"));
    let after = docs
        .split_once(marker)
        .unwrap_or_else(|| panic!("{marker} in docs/plugin-protocol.md"))
        .1;
    let block = after
        .split_once("```json\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .unwrap_or_else(|| panic!("a json block after {marker}"))
        .0;
    serde_json::from_str(block).unwrap_or_else(|e| panic!("the block after {marker} is JSON: {e}\n{block}"))
}

/// `value` with the documented paths replaced by this test's.
fn relocated(value: &Value, places: &[(&str, &Path)]) -> Value {
    let mut text = value.to_string();
    for (documented, real) in places {
        text = text.replace(documented, real.to_str().expect("utf-8 path"));
    }
    serde_json::from_str(&text).expect("json")
}

#[test]
fn the_documented_prepare_exchange_is_what_the_example_plugin_answers() {
    let (_tmp, root) = tempdir();
    let staging = root.join(".site-1-podman.prepare-staging");
    std::fs::create_dir_all(staging.join("startup")).expect("mkdir staging");
    let places: [(&str, &Path); 3] = [
        ("/work/outs/.site-1-podman.prepare-staging", &staging),
        ("/work/outs/site-1-podman", &root.join("site-1-podman")),
        ("/work/kits/site-1", &root.join("kits/site-1")),
    ];
    let request = relocated(&documented("<!-- prepare-request -->"), &places);
    let expected = relocated(&documented("<!-- prepare-response -->"), &places);
    assert_eq!(
        request["params"]["kit"]["fed_learn_port"],
        Value::Null,
        "a client kit has null ports"
    );
    assert_eq!(
        request["params"]["kit"]["admin_port"],
        Value::Null,
        "a client kit has null ports"
    );

    // The plugin alone, spoken to as the engine would: handshake, then the request.
    let mut child = Command::new(plugins_dir().join("flare-deploy-target-podman"))
        .current_dir(&staging)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example plugin");
    let handshake = json!({"protocol": 1, "id": 1, "method": "handshake",
                           "params": {"protocol_versions": [1, 2, 3], "engine": "flare-deploy test"}});
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{handshake}\n{request}").expect("write requests");
    drop(stdin);
    let out = child.wait_with_output().expect("plugin output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2, "one answer per request: {lines:?}");
    assert_eq!(lines[0]["result"], json!({"protocol_version": 2, "name": "podman"}));
    assert_eq!(
        lines[1], expected,
        "docs/plugin-protocol.md shows the plugin's exact answer"
    );
    assert!(
        staging.join("startup/start_podman.sh").is_file(),
        "and it wrote its start script"
    );
}

#[test]
fn the_prepare_result_is_printed_after_the_engines_fields_in_both_formats() {
    let setup = Setup::new();
    std::fs::copy(
        plugins_dir().join("flare-deploy-target-podman"),
        setup.plugin_dir.join("flare-deploy-target-podman"),
    )
    .expect("copy the example plugin");
    let config = setup.config(&read(&plugins_dir().join("podman.yaml")));
    let places: [(&str, &Path); 1] = [("/work/outs/site-1-podman", &setup.output)];
    let result = relocated(&documented("<!-- prepare-response -->")["result"]["result"], &places);
    let result = result.as_object().expect("the documented result");
    let output = setup.output.to_str().expect("utf-8 path");

    let run = setup.prepare(&config, &["--format", "json"]);
    run.assert_ok();
    let mut data = json!({"runtime": "podman", "role": "client", "name": "site-1", "output": output});
    for (key, value) in result {
        data[key] = value.clone();
    }
    assert_eq!(run.json()["data"], data);

    let run = setup.prepare(&config, &[]);
    run.assert_ok();
    let mut lines = vec![
        "runtime: podman".to_string(),
        "role: client".to_string(),
        "name: site-1".to_string(),
        format!("output: {output}"),
    ];
    lines.extend(
        result
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().expect("text"))),
    );
    let printed: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with("Warning: ")).collect();
    assert_eq!(printed, lines);
}
