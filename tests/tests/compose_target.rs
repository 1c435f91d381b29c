//! The example third-party target `examples/compose-target` (`runtime: compose`), linked
//! into its own binary `flare-deploy-compose`: it is listed as a linked crate, it prepares
//! real client and server kits, its `compose.yaml` is valid under the Compose
//! specification, and it starts the same container as the Docker target's
//! `start_docker.sh` (compared with the argv of the script's `docker run`).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use flare_deploy_tests::fsutil::tempdir;
use flare_deploy_tests::harness::{run_program, workspace_binary};
use flare_deploy_tests::kitgen::{DOCKER_CLIENT_LAUNCHER, DOCKER_SERVER_LAUNCHER};
use flare_deploy_tests::stub_docker::run_script;
use flare_deploy_tests::{flare_deploy, tools, Kit, Project, Run, Snapshot};
use serde_json::{json, Value};

const WORKSPACE: &str = "/var/tmp/nvflare/workspace";
const DOCKER_SOCKET: &str = "/var/run/docker.sock";
const COMPOSE_SUMMARY: &str = "Docker Compose: compose.yaml runs the parent container; jobs run as sibling containers";

fn compose_bin() -> PathBuf {
    workspace_binary("flare-deploy-compose", "flare-deploy-compose")
}

/// A YAML config file; values are written as JSON strings (valid YAML scalars).
fn write_config(path: &Path, runtime: &str, image: &str, network: &str) -> PathBuf {
    let text = format!(
        "runtime: {runtime}\nparent:\n  docker_image: {}\n  network: {}\n",
        serde_json::to_string(image).expect("json"),
        serde_json::to_string(network).expect("json"),
    );
    std::fs::write(path, text).expect("write config");
    path.to_path_buf()
}

fn compose(args: &[&std::ffi::OsStr]) -> Run {
    // This suite compares with the 2.8 Docker start script, like the harness's suites.
    let mut args: Vec<&std::ffi::OsStr> = args.to_vec();
    if args.first().is_some_and(|a| *a == "prepare") {
        args.push(std::ffi::OsStr::new("--nvflare-version"));
        args.push(std::ffi::OsStr::new(flare_deploy_tests::harness::SUITE_RELEASE));
    }
    // No executable plugins: an empty plugin path (PATH is the machine's).
    run_program(&compose_bin(), None, &args, &[("FLARE_DEPLOY_PLUGIN_PATH", "")])
}

// ---------------------------------------------------------------------------------------
// the two sides of the comparison

/// What `start_docker.sh` passes to `docker run`, option by option.
#[derive(Debug, Default)]
struct DockerRun {
    name: Option<String>,
    user: Option<String>,
    group_add: Vec<String>,
    network: Option<String>,
    aliases: Vec<String>,
    volumes: Vec<(String, String)>,
    env: BTreeMap<String, String>,
    ports: Vec<String>,
    rm: bool,
    image: String,
    command: Vec<String>,
}

fn parse_docker_run(argv: &[String]) -> DockerRun {
    assert_eq!(argv.first().map(String::as_str), Some("run"), "{argv:?}");
    let mut run = DockerRun::default();
    let mut i = 1;
    let value = |i: usize| -> String {
        argv.get(i + 1)
            .unwrap_or_else(|| panic!("{} without a value in {argv:?}", argv[i]))
            .clone()
    };
    while let Some(arg) = argv.get(i) {
        match arg.as_str() {
            "--name" => run.name = Some(value(i)),
            "--user" => run.user = Some(value(i)),
            "--group-add" => run.group_add.push(value(i)),
            "--network" => run.network = Some(value(i)),
            "--network-alias" => run.aliases.push(value(i)),
            "-v" => {
                let spec = value(i);
                let (source, target) = spec
                    .rsplit_once(':')
                    .unwrap_or_else(|| panic!("-v {spec} is not source:target"));
                run.volumes.push((source.to_string(), target.to_string()));
            }
            "-e" => {
                let spec = value(i);
                let (k, v) = spec
                    .split_once('=')
                    .unwrap_or_else(|| panic!("-e {spec} is not NAME=value"));
                run.env.insert(k.to_string(), v.to_string());
            }
            "-p" => run.ports.push(value(i)),
            "--rm" => {
                run.rm = true;
                i += 1;
                continue;
            }
            other if other.starts_with('-') => {
                panic!("docker run option {other} is not compared with compose.yaml: {argv:?}")
            }
            _ => break,
        }
        i += 2;
    }
    run.image = argv.get(i).unwrap_or_else(|| panic!("no image in {argv:?}")).clone();
    run.command = argv[i + 1..].to_vec();
    run
}

/// Compose interpolation: `$$` is a literal `$`. Panics on a `$` that Compose would
/// interpolate (every `$` of the input must be escaped).
fn compose_literal(value: &Value, what: &str) -> String {
    let raw = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    assert!(
        !raw.replace("$$", "").contains('$'),
        "{what} has an unescaped $ that Compose would interpolate: {raw:?}"
    );
    raw.replace("$$", "$")
}

fn load_compose(output: &Path) -> Value {
    let file = output.join("compose.yaml");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}\n{text}", file.display()))
}

// ---------------------------------------------------------------------------------------
// Compose specification

const VALIDATE_PY: &str = r##"
import json, sys
from jsonschema import validators

schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))

def norm(uri):
    return uri.split("://", 1)[-1].rstrip("#")

declared = norm(schema.get("$schema", ""))
classes = [validators.Draft202012Validator, validators.Draft201909Validator,
           validators.Draft7Validator, validators.Draft6Validator, validators.Draft4Validator]
cls = next((c for c in classes
            if norm(c.META_SCHEMA.get("$id", c.META_SCHEMA.get("id", ""))) == declared), None)
if cls is None:
    print("the schema declares an unknown $schema: %r" % schema.get("$schema"))
    sys.exit(2)
cls.check_schema(schema)
errors = sorted(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(doc), key=str)
for e in errors:
    print("/" + "/".join(map(str, e.absolute_path)) + ": " + e.message)
sys.exit(1 if errors else 0)
"##;

/// The Compose specification check: the tools venv's Python `jsonschema` and the
/// specification's schema, both installed by `.ci/install-tools.sh`.
struct ComposeSpec {
    python: PathBuf,
    schema: PathBuf,
}

impl ComposeSpec {
    /// `None` when a tool is missing: a recorded skip (`tools::require_path`), a failure
    /// under `CI=true`. Callers run every check that needs no tool before asking.
    fn find() -> Option<ComposeSpec> {
        let dir = tools::tools_dir();
        let python = tools::require_path(&dir.join("venv/bin/python"), "tools venv python");
        let schema = tools::require_path(&dir.join("compose-spec.json"), "Compose spec schema");
        Some(ComposeSpec {
            python: python?,
            schema: schema?,
        })
    }

    /// The validator's exit code and output for `doc`.
    fn check(&self, doc: &Value) -> (i32, String) {
        let tmp = tempfile::tempdir().expect("tmp");
        let doc_file = tmp.path().join("compose.json");
        std::fs::write(&doc_file, serde_json::to_string(doc).expect("json")).expect("write doc");
        let out = std::process::Command::new(&self.python)
            .args(["-c", VALIDATE_PY])
            .arg(&self.schema)
            .arg(&doc_file)
            .output()
            .expect("run the schema validator");
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

/// Asserts `doc` is valid under the Compose specification (a recorded skip without the
/// tools; the caller's own checks have run by then).
fn assert_valid_compose(doc: &Value) {
    let Some(spec) = ComposeSpec::find() else { return };
    let (code, output) = spec.check(doc);
    assert_eq!(
        code, 0,
        "compose.yaml is not valid under the Compose specification:\n{output}\n{doc:#}"
    );
}

#[test]
fn the_compose_spec_check_rejects_an_invalid_document() {
    // The validation is only worth something if it can fail. The documents: a real
    // compose.yaml (prepared and parsed without any tool), and the same with an unknown
    // key and a bind mount without source or target.
    let (_tmp, root) = tempdir();
    let kit = Project::new("example_project")
        .client("site-1")
        .build(&root.join("kits"));
    let good = load_compose(&prepare_compose(&root, &kit, "nvflare/nvflare:2.8.1"));
    let parent = good["services"]["parent"].as_object().expect("services.parent");
    assert!(!parent.contains_key("bogus_key"), "{good:#}");
    assert!(
        parent["volumes"].as_array().is_some_and(|v| !v.is_empty()),
        "the parent mounts its workspace: {good:#}"
    );
    let mut bad = good.clone();
    bad["services"]["parent"]["bogus_key"] = json!(1);
    bad["services"]["parent"]["volumes"] = json!([{"type": "bind"}]);

    // Only the validator needs the tools.
    let Some(spec) = ComposeSpec::find() else { return };
    let (code, output) = spec.check(&bad);
    assert_eq!(code, 1, "expected schema errors:\n{output}");
    assert!(output.contains("bogus_key"), "{output}");
    let (code, output) = spec.check(&good);
    assert_eq!(code, 0, "{output}");
}

// ---------------------------------------------------------------------------------------
// listing

#[test]
fn the_compose_binary_lists_compose_as_a_linked_crate_with_the_builtins() {
    let run = compose(&["targets".as_ref()]);
    run.assert_ok();
    assert_eq!(
        run.stdout
            .lines()
            .next()
            .map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["NAME", "ORIGIN", "ACTIONS", "SUMMARY"])
    );
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{}", run.stdout))
            .to_string()
    };
    let compose_line = line("compose");
    let origin_at = run.stdout.find("ORIGIN").expect("ORIGIN column");
    assert!(
        compose_line[origin_at..].starts_with("crate flare-deploy-compose  "),
        "{compose_line:?}"
    );
    assert!(compose_line.ends_with(COMPOSE_SUMMARY), "{compose_line:?}");
    assert!(line("docker")[origin_at..].starts_with("built-in  "));
    assert!(line("k8s")[origin_at..].starts_with("built-in  "));
    assert!(line("slurm")[origin_at..].starts_with("built-in  "));
    assert_eq!(run.stdout.lines().count(), 5, "header and four rows:\n{}", run.stdout);

    let run = compose(&["targets".as_ref(), "--format".as_ref(), "json".as_ref()]);
    run.assert_ok();
    let listed: Vec<Value> = run.json()["data"]["targets"].as_array().expect("targets").clone();
    let names: Vec<&str> = listed.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["compose", "docker", "k8s", "slurm"], "sorted by name");
    assert_eq!(
        listed[0],
        json!({"name": "compose", "origin": "crate", "summary": COMPOSE_SUMMARY, "crate": "flare-deploy-compose",
               "actions": []})
    );
    assert_eq!(listed[1]["origin"], "built-in");
    assert_eq!(listed[1]["crate"], "flare-deploy-docker");
    assert_eq!(listed[2]["origin"], "built-in");
    assert_eq!(listed[2]["crate"], "flare-deploy-k8s");
}

// ---------------------------------------------------------------------------------------
// compose.yaml == start_docker.sh

struct Case {
    kit: Kit,
    image: &'static str,
    network: &'static str,
    server: bool,
}

/// Prepares `case.kit` for Docker and runs the script under the stub, then prepares the
/// same kit for Compose into the same output, and compares the two containers.
fn check_equivalence(root: &Path, case: &Case) {
    let kit = &case.kit.dir;
    let before = Snapshot::take(kit, &[]);
    let output = root.join("prepared").join("parent");

    let docker_config = write_config(&root.join("docker.yaml"), "docker", case.image, case.network);
    flare_deploy([
        "prepare".as_ref(),
        kit.as_os_str(),
        "--config".as_ref(),
        docker_config.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ])
    .assert_ok();
    let script = run_script(&output.join("startup/start_docker.sh"), &[]);
    assert_eq!(script.status, 0, "start_docker.sh failed: {}", script.stdout);
    let docker = parse_docker_run(script.run_call());

    let compose_config = write_config(&root.join("compose.yaml"), "compose", case.image, case.network);
    let run = compose(&[
        "prepare".as_ref(),
        kit.as_os_str(),
        "--config".as_ref(),
        compose_config.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    run.assert_ok();
    let out = output.to_str().expect("utf-8 path");
    let data = run.json()["data"].clone();
    let role = if case.server { "server" } else { "client" };
    let keys: Vec<&str> = data.as_object().expect("data").keys().map(String::as_str).collect();
    assert_eq!(
        keys[..4],
        ["runtime", "role", "name", "output"],
        "engine fields first: {data}"
    );
    assert_eq!(data["runtime"], "compose");
    assert_eq!(data["role"], role);
    assert_eq!(data["output"], out);
    assert_eq!(data["compose_file"], format!("{out}/compose.yaml"));
    assert_eq!(
        data["start_command"],
        format!("docker compose -f {out}/compose.yaml up")
    );

    // The compose output replaced the Docker one as a whole.
    assert!(!output.join("startup/start_docker.sh").exists());
    for script in ["start.sh", "sub_start.sh", "stop_fl.sh", "docker.sh"] {
        assert!(!output.join("startup").join(script).exists(), "{script} removed");
    }
    let resources = flare_deploy_tests::kitgen::read_json(&output.join("local/resources.json.default"));
    let launcher = resources["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["id"] == "docker_launcher")
        .expect("docker_launcher component");
    assert_eq!(
        launcher["path"],
        if case.server {
            DOCKER_SERVER_LAUNCHER
        } else {
            DOCKER_CLIENT_LAUNCHER
        }
    );
    assert_eq!(launcher["args"]["network"], case.network);

    let doc = load_compose(&output);
    let services = doc["services"].as_object().expect("services");
    assert_eq!(services.len(), 1, "one service: {doc:#}");
    let service = &doc["services"]["parent"];

    // image ($ escaped as $$)
    assert_eq!(
        service["image"],
        case.image.replace('$', "$$"),
        "the image is escaped for Compose"
    );
    assert_eq!(compose_literal(&service["image"], "image"), docker.image);
    assert_eq!(docker.image, case.image);
    assert!(docker.rm, "docker run --rm");

    // container name
    assert_eq!(
        Some(compose_literal(&service["container_name"], "container_name")),
        docker.name
    );

    // user: the owner of the prepared kit (the script uses whoever runs it: here the same)
    let meta = std::fs::metadata(&output).expect("stat output");
    let owner = format!("{}:{}", meta.uid(), meta.gid());
    assert_eq!(service["user"], owner.as_str());
    assert_eq!(docker.user.as_deref(), Some(owner.as_str()));

    // the Docker socket's group, when it is not root's
    let group_add: Vec<String> = service["group_add"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| g.as_str().map_or_else(|| g.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(group_add, docker.group_add);

    // network name and the alias `server` (server kits only)
    let networks = service["networks"].as_object().expect("service networks");
    assert_eq!(networks.keys().collect::<Vec<_>>(), ["nvflare"], "{doc:#}");
    assert_eq!(
        Some(compose_literal(&doc["networks"]["nvflare"]["name"], "network name")),
        docker.network
    );
    assert_eq!(doc["networks"]["nvflare"]["name"], case.network.replace('$', "$$"));
    let aliases: Vec<String> = networks["nvflare"]["aliases"]
        .as_array()
        .map(|a| a.iter().map(|v| compose_literal(v, "network alias")).collect())
        .unwrap_or_default();
    assert_eq!(aliases, docker.aliases);
    if case.server {
        assert_eq!(docker.aliases, ["server"]);
    } else {
        assert!(docker.aliases.is_empty());
    }

    // volumes: the workspace bind mount and the Docker socket
    let volumes: Vec<(String, String)> = service["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| {
            assert_eq!(v["type"], "bind", "{v}");
            (
                compose_literal(&v["source"], "volume source"),
                compose_literal(&v["target"], "volume target"),
            )
        })
        .collect();
    assert_eq!(volumes, docker.volumes);
    assert!(volumes.contains(&(out.to_string(), WORKSPACE.to_string())));
    assert!(volumes.contains(&(DOCKER_SOCKET.to_string(), DOCKER_SOCKET.to_string())));

    // environment
    let environment: BTreeMap<String, String> = service["environment"]
        .as_object()
        .expect("environment mapping")
        .iter()
        .map(|(k, v)| (k.clone(), compose_literal(v, "environment value")))
        .collect();
    assert_eq!(environment, docker.env);
    assert_eq!(environment.get("NVFL_DOCKER_WORKSPACE").map(String::as_str), Some(out));

    // published ports
    let ports: Vec<String> = service["ports"]
        .as_array()
        .map(|a| a.iter().map(|p| compose_literal(p, "port")).collect())
        .unwrap_or_default();
    assert_eq!(ports, docker.ports);

    // the parent command
    let command: Vec<String> = service["command"]
        .as_array()
        .expect("command list")
        .iter()
        .map(|a| compose_literal(a, "command word"))
        .collect();
    assert_eq!(command, docker.command);
    assert_eq!(command[0], "/usr/local/bin/python3");

    assert_unchanged(&before, &Snapshot::take(kit, &[]));
}

/// Panics with the paths that differ unless the two pictures of the kit are equal.
fn assert_unchanged(before: &Snapshot, after: &Snapshot) {
    let changed: Vec<String> = before
        .0
        .keys()
        .chain(after.0.keys())
        .filter(|p| before.0.get(*p) != after.0.get(*p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(changed.is_empty(), "the input kit changed: {changed:?}");
}

#[test]
fn client_compose_file_starts_the_same_container_as_start_docker() {
    let (_tmp, root) = tempdir();
    let project = Project::new("example_project");
    let kit = project.client("site-1").build(&root.join("kits"));
    check_equivalence(
        &root,
        &Case {
            kit,
            // `$` must reach Docker literally: Compose needs it as `$$`.
            image: "registry.example.com:5000/nvflare/nvflare:2.8.1-$BUILD",
            network: "fl-net-$NET",
            server: false,
        },
    );
}

#[test]
fn server_compose_file_starts_the_same_container_as_start_docker() {
    let (_tmp, root) = tempdir();
    let project = Project::new("example_project");
    let kit = project
        .server("server1")
        .fed_port(8102)
        .admin_port(Some(json!(8103)))
        .build(&root.join("kits"));
    check_equivalence(
        &root,
        &Case {
            kit,
            image: "nvflare/nvflare:2.8.1",
            network: "nvflare-network",
            server: true,
        },
    );
}

/// Prepares `kit` with `runtime: compose` into `<root>/out`.
fn prepare_compose(root: &Path, kit: &Kit, image: &str) -> PathBuf {
    let config = write_config(&root.join("compose.yaml"), "compose", image, "nvflare-network");
    let output = root.join("out");
    compose(&[
        "prepare".as_ref(),
        kit.dir.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ])
    .assert_ok();
    output
}

#[test]
fn client_compose_file_is_valid_under_the_compose_spec() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("example_project")
        .client("site-1")
        .build(&root.join("kits"));
    let output = prepare_compose(&root, &kit, "nvflare/nvflare:2.8.1-$BUILD");
    assert_valid_compose(&load_compose(&output));
}

#[test]
fn server_compose_file_is_valid_under_the_compose_spec() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("example_project")
        .server("server1")
        .fed_port(8102)
        .admin_port(Some(json!(8103)))
        .build(&root.join("kits"));
    let output = prepare_compose(&root, &kit, "nvflare/nvflare:2.8.1");
    assert_valid_compose(&load_compose(&output));
}

#[test]
fn server_compose_file_publishes_the_fed_and_admin_ports() {
    let (_tmp, root) = tempdir();
    let project = Project::new("example_project");
    let kit = project
        .server("server1")
        .fed_port(8102)
        .admin_port(Some(json!(8103)))
        .build(&root.join("kits"));
    let output = prepare_compose(&root, &kit, "nvflare/nvflare:2.8.1");
    let doc = load_compose(&output);
    assert_eq!(doc["services"]["parent"]["ports"], json!(["8102:8102", "8103:8103"]));
    assert_eq!(
        doc["services"]["parent"]["networks"]["nvflare"]["aliases"],
        json!(["server"])
    );
    let resources = flare_deploy_tests::kitgen::read_json(&output.join("local/resources.json.default"));
    let job_manager = resources["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["id"] == "job_manager")
        .expect("job_manager");
    assert_eq!(job_manager["args"]["uri_root"], format!("{WORKSPACE}/jobs-storage"));
    let comm = flare_deploy_tests::kitgen::read_json(&output.join("local/comm_config.json"));
    assert_eq!(comm["internal"]["resources"]["host"], "0.0.0.0");
    assert!(output.join("local/study_data.yaml").is_file());
}
