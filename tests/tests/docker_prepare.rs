//! Successful `flare-deploy prepare` runs with `runtime: docker` on generated kits: what the
//! prepared copy contains, file by file, what is printed, and that the input kit is left
//! exactly as it was (reference spec sections 4, 5, 6 and 8; our deviations where noted).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flare_deploy_tests::fsutil::{read, tempdir, write_file};
use flare_deploy_tests::harness::run_in;
use flare_deploy_tests::kitgen::{
    self, CLIENT_PROCESS_LAUNCHER, DOCKER_CLIENT_LAUNCHER, DOCKER_SERVER_LAUNCHER, GPU_RESOURCE_CONSUMER,
    GPU_RESOURCE_MANAGER, PASSTHROUGH_RESOURCE_MANAGER, SERVER_PROCESS_LAUNCHER,
};
use flare_deploy_tests::{flare_deploy, oracle, Kit, Project, Run, Snapshot};
use serde_json::{json, Value};

const WORKSPACE: &str = "/var/tmp/nvflare/workspace";
const IMAGE: &str = "nvflare/nvflare:2.8.1";
const MINIMAL_CONFIG: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";

const WARN_RESOURCE_MANAGER: &str = "Warning: deploy prepare replaces component 'resource_manager' with PassthroughResourceManager; existing resource manager path/args will not be used by the prepared runtime.";
const WARN_RESOURCE_CONSUMER: &str = "Warning: deploy prepare removes component 'resource_consumer' from resources.json.default; existing resource consumer configuration will not be used by the prepared runtime.";
const STUDY_DATA_YAML: &str = "# Study data mapping used by Docker and Kubernetes job launchers.
# Example:
# default:
#   training:
#     source: /data/training    # Docker: host path; K8s: PVC claim name
#     mode: ro                  # ro or rw
{}
";

fn warn_launcher(id: &str) -> String {
    format!(
        "Warning: deploy prepare replaces component '{id}' with generated 'docker_launcher' configuration; existing launcher path/args will not be used by the prepared runtime."
    )
}

// ---------------------------------------------------------------------------------------
// helpers

fn args(list: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    list.iter().map(|a| a.as_ref().to_os_string()).collect()
}

/// `prepare <kit> --output <out> --config <config> [extra...]`, checked for success.
fn prepare_ok(kit: &Path, output: &Path, config: &Path, extra: &[&str]) -> Run {
    let mut argv = args(&[&"prepare", &kit, &"--output", &output, &"--config", &config]);
    argv.extend(extra.iter().map(OsString::from));
    let run = flare_deploy(&argv);
    run.assert_ok();
    run
}

/// Generates a client kit and prepares it with `config_yaml` into `<root>/out`.
fn prepare_client(root: &Path, kit: &Kit, config_yaml: &str) -> (PathBuf, Run) {
    let config = write_file(&root.join("docker.yaml"), config_yaml);
    let output = root.join("out");
    let run = prepare_ok(&kit.dir, &output, &config, &[]);
    (output, run)
}

/// JSON files the reference writes with `json.dumps(data, indent=4) + "\n"`. Each file is
/// checked at once for its content and key order and its layout (4-space steps, ASCII,
/// one final newline); [`PythonJson::finish`] then compares every file of the test byte
/// for byte with what the installed NVFlare's own `_write_json` writes (one process).
#[derive(Default)]
struct PythonJson {
    files: Vec<(String, String, Value)>,
}

impl PythonJson {
    #[track_caller]
    fn check(&mut self, path: &Path, expected: Value, context: &str) {
        let label = format!("{} {context}", path.display());
        let text = read(path);
        let parsed: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{label} is not JSON ({e}):\n{text}"));
        // Compact texts compare key order too (map equality ignores it).
        assert_eq!(
            serde_json::to_string(&parsed).expect("json"),
            serde_json::to_string(&expected).expect("json"),
            "{label}"
        );
        assert!(text.is_ascii() && text.ends_with("}\n"), "{label}:\n{text}");
        for line in text.lines() {
            let body = line.trim_start_matches(' ');
            assert_eq!((line.len() - body.len()) % 4, 0, "{label}: indentation of {line:?}");
            assert!(!body.is_empty() && !body.ends_with(' '), "{label}: {line:?}");
        }
        self.files.push((label, text, expected));
    }

    /// The byte-for-byte comparison with NVFlare 2.8.1's writer (reported as skipped when
    /// its venv is missing).
    fn finish(self) {
        let Some(reference) = oracle::nvflare_2_8() else {
            return;
        };
        let documents: Vec<Value> = self.files.iter().map(|(_, _, doc)| doc.clone()).collect();
        let written = reference.write_json(&documents);
        assert_eq!(written.len(), self.files.len());
        for ((label, text, _), want) in self.files.iter().zip(&written) {
            assert_eq!(text, want, "{label} differs from what NVFlare's _write_json writes");
        }
    }
}

/// Every path under `dir`, relative, directories with a trailing `/`.
fn tree(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.insert(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Entries of `dir` whose name starts with `prefix` (left-over staging directories).
fn entries_starting_with(dir: &Path, prefix: &str) -> Vec<String> {
    fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn passthrough() -> Value {
    json!({"id": "resource_manager", "path": PASSTHROUGH_RESOURCE_MANAGER, "args": {}})
}

fn default_launcher_args() -> Value {
    json!({
        "network": "nvflare-network",
        "default_python_path": "/usr/local/bin/python",
        "default_job_container_kwargs": {},
        "default_job_env": {}
    })
}

fn docker_launcher(path: &str, args: Value) -> Value {
    json!({"id": "docker_launcher", "path": path, "args": args})
}

/// The prepared client resources for the provisioned client kit: the site log streamer
/// kept, then the passthrough manager and the docker launcher.
fn expected_client_resources(launcher_args: Value) -> Value {
    let mut expected = kitgen::provisioned_client_resources();
    let streamer = expected["components"][3].clone();
    assert_eq!(streamer["id"], "site_log_streamer");
    expected["components"] = json!([
        streamer,
        passthrough(),
        docker_launcher(DOCKER_CLIENT_LAUNCHER, launcher_args)
    ]);
    expected
}

/// The prepared server resources for the provisioned server kit (Appendix A order).
fn expected_server_resources() -> Value {
    let mut expected = kitgen::provisioned_server_resources();
    expected["snapshot_persistor"]["args"]["storage"]["args"]["root_dir"] =
        json!(format!("{WORKSPACE}/snapshot-storage"));
    let components = expected["components"].as_array().expect("components").clone();
    let by_id = |id: &str| -> Value {
        components
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("component {id}"))
    };
    let mut job_manager = by_id("job_manager");
    job_manager["args"]["uri_root"] = json!(format!("{WORKSPACE}/jobs-storage"));
    expected["components"] = json!([
        by_id("job_scheduler"),
        job_manager,
        by_id("job_store"),
        by_id("log_receiver"),
        passthrough(),
        docker_launcher(DOCKER_SERVER_LAUNCHER, default_launcher_args())
    ]);
    expected
}

/// The result fields in order, as `(key, value)`.
fn expected_fields(role: &str, name: &str, output: &Path) -> Vec<(String, String)> {
    let out = output.display().to_string();
    vec![
        ("runtime".into(), "docker".into()),
        ("role".into(), role.into()),
        ("name".into(), name.into()),
        ("output".into(), out.clone()),
        ("start_command".into(), format!("cd {out} && ./startup/start_docker.sh")),
        ("start_script".into(), format!("{out}/startup/start_docker.sh")),
        ("resources".into(), format!("{out}/local/resources.json.default")),
    ]
}

fn txt_result(fields: &[(String, String)]) -> String {
    fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

fn script(output: &Path) -> String {
    read(&output.join("startup/start_docker.sh"))
}

fn script_lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// `-p P:P` ports the server script publishes, in order.
fn published_ports(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("    -p "))
        .map(|l| {
            l.strip_suffix(" \\")
                .unwrap_or_else(|| panic!("publish line without continuation: {l:?}"))
                .to_string()
        })
        .collect()
}

/// The lines of the script the reference specifies literally (spec 4.8), which must appear
/// in this order, plus our deviations (header, network check, group-add array).
fn assert_script_body(text: &str, role: &str, name_word: &str, image_dq: &str, network_dq: &str) {
    let lines = script_lines(text);
    assert_eq!(lines[0], "#!/usr/bin/env bash", "{text}");
    assert!(
        lines[1].starts_with("# Generated by flare-deploy")
            && lines[1].contains(&format!("Docker runtime {role} startup script.")),
        "header line: {:?}",
        lines[1]
    );
    assert!(!text.contains("NVFlare deploy prepare"), "{text}");
    let image_line = format!("DOCKER_IMAGE=${{NVFL_P_IMAGE:-{image_dq}}}");
    // Deviation D1: the name is a printf argument (shell-quoted), never part of a string.
    let echo_line = format!("printf 'Starting NVFlare {role} %s with image %s\\n' {name_word} \"$DOCKER_IMAGE\"");
    let network_line = format!("NETWORK_NAME={network_dq}");
    let comment =
        format!("# The parent {role} container mounts this prepared kit and launches job containers through Docker.");
    let expected: Vec<&str> = vec![
        &comment,
        r#"DIR="$( cd "$( dirname "${BASH_SOURCE[0]}" )" >/dev/null 2>&1 && pwd )""#,
        r#"HOST_WORKSPACE="$(cd "$DIR/.." && pwd)""#,
        &image_line,
        "",
        "if ! docker info > /dev/null 2>&1; then",
        r#"    echo "ERROR: cannot connect to Docker daemon. Make sure your user has permission to run docker.""#,
        r#"    echo "  Option 1 (docker group): sudo usermod -aG docker \$USER  then log out and back in.""#,
        r#"    echo "  Option 2 (rootless Docker): https://docs.docker.com/engine/security/rootless/""#,
        "    exit 1",
        "fi",
        "",
        &echo_line,
        r#"echo "Host workspace: $HOST_WORKSPACE""#,
        "",
        &network_line,
        r#"    docker network create "$NETWORK_NAME""#,
        r#"    echo "Created Docker network: $NETWORK_NAME""#,
        "fi",
        "",
        r#"rm -f "$HOST_WORKSPACE/daemon_pid.fl""#,
        "",
        r#"SOCK_GID=$(stat -c '%g' /var/run/docker.sock 2>/dev/null || stat -f '%g' /var/run/docker.sock 2>/dev/null || echo "")"#,
        r#"if [ -n "$SOCK_GID" ] && [ "$SOCK_GID" != "0" ]; then"#,
        "fi",
        "",
    ];
    let mut at = 2;
    for want in &expected {
        match lines[at..].iter().position(|l| l == want) {
            Some(pos) => at += pos + 1,
            None => {
                panic!("script line {want:?} missing (or out of order) after line {at}:\n{text}")
            }
        }
    }
    // Our deviations: the network check does not use grep, the group-add is an array.
    let net_check = lines
        .iter()
        .position(|l| l.starts_with("if ! docker network inspect \"$NETWORK_NAME\""))
        .unwrap_or_else(|| panic!("no `docker network inspect` check:\n{text}"));
    assert_eq!(lines[net_check - 1], network_line, "{text}");
    assert_eq!(lines[net_check + 1], r#"    docker network create "$NETWORK_NAME""#);
    assert!(!text.contains("grep"), "{text}");
    assert!(!text.contains("$GROUP_ADD_ARG "), "{text}");
    assert!(!text.contains("$GROUP_ADD_ARG\n"), "{text}");
}

/// The file ends with exactly this `docker run` block.
fn assert_script_tail(text: &str, tail: &str) {
    let start = text
        .find("docker run --name ")
        .unwrap_or_else(|| panic!("no docker run:\n{text}"));
    assert_eq!(&text[start..], tail);
}

fn client_tail(container: &str, uid_arg: &str, org_arg: &str) -> String {
    format!(
        r#"docker run --name {container} \
    --user "$(id -u):$(id -g)" \
    "${{GROUP_ADD_ARGS[@]}}" \
    --network "$NETWORK_NAME" \
    -v "$HOST_WORKSPACE":/var/tmp/nvflare/workspace \
    -v /var/run/docker.sock:/var/run/docker.sock \
    -e NVFL_DOCKER_WORKSPACE="$HOST_WORKSPACE" \
    --rm "$DOCKER_IMAGE" \
    /usr/local/bin/python3 \
    -u \
    -m \
    nvflare.private.fed.app.client.client_train \
    -m \
    /var/tmp/nvflare/workspace \
    -s \
    fed_client.json \
    --set \
    secure_train=true \
    {uid_arg} \
    {org_arg} \
    config_folder=config
"#
    )
}

fn server_tail(container: &str, ports: &[u16], org_arg: &str) -> String {
    let publish: String = ports.iter().map(|p| format!("    -p {p}:{p} \\\n")).collect();
    format!(
        r#"docker run --name {container} \
    --user "$(id -u):$(id -g)" \
    "${{GROUP_ADD_ARGS[@]}}" \
    --network "$NETWORK_NAME" \
    --network-alias server \
    -v "$HOST_WORKSPACE":/var/tmp/nvflare/workspace \
    -v /var/run/docker.sock:/var/run/docker.sock \
    -e NVFL_DOCKER_WORKSPACE="$HOST_WORKSPACE" \
{publish}    --rm "$DOCKER_IMAGE" \
    /usr/local/bin/python3 \
    -u \
    -m \
    nvflare.private.fed.app.server.server_train \
    -m \
    /var/tmp/nvflare/workspace \
    -s \
    fed_server.json \
    --set \
    secure_train=true \
    config_folder=config \
    {org_arg}
"#
    )
}

fn assert_same_file(a: &Path, b: &Path) {
    let (ma, mb) = (fs::metadata(a).expect("stat a"), fs::metadata(b).expect("stat b"));
    assert_eq!(
        fs::read(a).expect("read a"),
        fs::read(b).expect("read b"),
        "{} differs from {}",
        b.display(),
        a.display()
    );
    assert_eq!(ma.mode() & 0o7777, mb.mode() & 0o7777, "mode of {}", b.display());
    assert_eq!(
        ma.modified().expect("mtime"),
        mb.modified().expect("mtime"),
        "mtime of {}",
        b.display()
    );
}

fn is_docker_container_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

// ---------------------------------------------------------------------------------------
// spec 8 case 1: a client kit is copied and patched; the input kit is untouched

#[test]
fn client_kit_is_copied_and_patched_for_docker() {
    let mut json_files = PythonJson::default();
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    // Like the reference tests: the config lives next to the output as `<output>.yaml`.
    let output = root.join("prepared-kits").join("site-1-docker");
    let config = write_file(
        &root.join("prepared-kits").join("site-1-docker.yaml"),
        "runtime: docker\nparent:\n  docker_image: repo.example.com/nvflare:2.8.1\n  network: nvflare-test\n\
         job_launcher:\n  default_python_path: /opt/conda/bin/python\n  default_job_env:\n    NVFL_MODE: prod\n\
         \x20 default_job_container_kwargs:\n    shm_size: 1g\n",
    );
    let before = Snapshot::take(&kit.dir, &[]);
    let run = prepare_ok(&kit.dir, &output, &config, &[]);
    Snapshot::take(&kit.dir, &[]).assert_same_as(&before, "input kit");

    // The input kit still has what the output lost.
    for rel in [
        "startup/start.sh",
        "startup/sub_start.sh",
        "startup/stop_fl.sh",
        "startup/docker.sh",
        "local/resources.json",
    ] {
        assert!(kit.path(rel).is_file(), "input {rel} must stay");
    }
    assert!(!kit.path("startup/start_docker.sh").exists());
    assert!(!kit.path("local/study_data.yaml").exists());
    assert!(!kit.path("local/comm_config.json").exists());

    // The output is the kit minus the start scripts and the active resources.json, plus
    // the Docker files and flare-deploy's receipt.
    assert_eq!(
        tree(&output),
        set(&[
            ".flare-deploy.json",
            "local/",
            "local/authorization.json.default",
            "local/comm_config.json",
            "local/log_config.json.default",
            "local/privacy.json.sample",
            "local/resources.json.default",
            "local/study_data.yaml",
            "readme.txt",
            "startup/",
            "startup/client.crt",
            "startup/client.key",
            "startup/fed_client.json",
            "startup/rootCA.pem",
            "startup/start_docker.sh",
            "transfer/",
        ])
    );
    for rel in [
        "readme.txt",
        "startup/client.crt",
        "startup/client.key",
        "startup/fed_client.json",
        "startup/rootCA.pem",
        "local/authorization.json.default",
        "local/log_config.json.default",
        "local/privacy.json.sample",
    ] {
        assert_same_file(&kit.path(rel), &output.join(rel));
    }
    assert_eq!(
        fs::metadata(output.join("startup/client.key")).expect("key").mode() & 0o777,
        0o600
    );

    // resources.json.default: launcher, manager and consumer replaced, byte-exact format.
    let launcher_args = json!({
        "network": "nvflare-test",
        "default_python_path": "/opt/conda/bin/python",
        "default_job_container_kwargs": {"shm_size": "1g"},
        "default_job_env": {"NVFL_MODE": "prod"}
    });
    json_files.check(
        &output.join("local/resources.json.default"),
        expected_client_resources(launcher_args),
        "",
    );
    let resources = kitgen::read_json(&output.join("local/resources.json.default"));
    let ids: Vec<&str> = resources["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(!ids.contains(&"process_launcher") && !ids.contains(&"resource_consumer"));

    // comm_config.json created with the Docker internal listener.
    assert_eq!(
        kitgen::read_json(&output.join("local/comm_config.json"))["internal"]["resources"]["host"],
        "0.0.0.0"
    );
    assert_eq!(read(&output.join("local/study_data.yaml")), STUDY_DATA_YAML);

    // The start script.
    let text = script(&output);
    assert_script_body(
        &text,
        "client",
        "site-1",
        "\"repo.example.com/nvflare:2.8.1\"",
        "\"nvflare-test\"",
    );
    assert!(!text.contains("--network-alias"), "{text}");
    assert!(text.contains("-m \\\n    /var/tmp/nvflare/workspace \\\n"));
    assert_script_tail(&text, &client_tail("site-1", "uid=site-1", "org=nvidia"));
    let mode = fs::metadata(output.join("startup/start_docker.sh"))
        .expect("script")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "start_docker.sh must be executable by all");

    // txt: the provisioned GPU manager has args, so exactly one warning, then the result.
    let fields = expected_fields("client", "site-1", &output);
    assert_eq!(run.stdout, format!("{WARN_RESOURCE_MANAGER}\n{}", txt_result(&fields)));
    assert_eq!(run.stderr, "");
    assert!(entries_starting_with(&root.join("prepared-kits"), ".site-1-docker.prepare-").is_empty());
    json_files.finish();
}

// ---------------------------------------------------------------------------------------
// result envelopes (spec 6.1, 6.2, Appendix A)

#[test]
fn json_envelope_is_one_line_in_key_order_and_warnings_go_to_stderr() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    let output = root.join("site-1-docker");
    let run = prepare_ok(&kit.dir, &output, &config, &["--format", "json"]);
    let out = output.display();
    let expected = format!(
        r#"{{"schema_version": "1", "status": "ok", "exit_code": 0, "data": {{"runtime": "docker", "role": "client", "name": "site-1", "output": "{out}", "start_command": "cd {out} && ./startup/start_docker.sh", "start_script": "{out}/startup/start_docker.sh", "resources": "{out}/local/resources.json.default"}}}}"#
    );
    assert_eq!(run.stdout, format!("{expected}\n"));
    assert_eq!(run.stderr, format!("{WARN_RESOURCE_MANAGER}\n"));
    // Key order, checked on the parsed document too.
    let doc = run.json();
    let keys: Vec<&String> = doc.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["schema_version", "status", "exit_code", "data"]);
    let data_keys: Vec<&String> = doc["data"].as_object().expect("data").keys().collect();
    assert_eq!(
        data_keys,
        [
            "runtime",
            "role",
            "name",
            "output",
            "start_command",
            "start_script",
            "resources"
        ]
    );
}

#[test]
fn txt_result_lines_follow_the_warnings_on_stdout() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    let output = root.join("site-1-docker");
    let run = prepare_ok(&kit.dir, &output, &config, &["--format", "txt"]);
    let fields = expected_fields("client", "site-1", &output);
    assert_eq!(run.stdout, format!("{WARN_RESOURCE_MANAGER}\n{}", txt_result(&fields)));
    assert_eq!(run.stderr, "");
}

#[test]
fn real_provisioned_server_prints_no_warning_and_results_in_order() {
    let mut json_files = PythonJson::default();
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").server("server1").build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    for format in ["txt", "json"] {
        let output = root.join(format!("out-{format}"));
        let run = prepare_ok(&kit.dir, &output, &config, &["--format", format]);
        let fields = expected_fields("server", "server1", &output);
        if format == "txt" {
            assert_eq!(run.stdout, txt_result(&fields));
        } else {
            let data: serde_json::Map<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let doc = run.json();
            assert_eq!(doc["data"], Value::Object(data.clone()));
            let keys: Vec<&String> = doc["data"].as_object().expect("data").keys().collect();
            let want: Vec<&String> = data.keys().collect();
            assert_eq!(keys, want);
            assert_eq!(run.stdout.lines().count(), 1);
        }
        assert_eq!(run.stderr, "", "no warning for a real provisioned server");
        json_files.check(
            &output.join("local/resources.json.default"),
            expected_server_resources(),
            "",
        );
    }
    json_files.finish();
}

// ---------------------------------------------------------------------------------------
// spec 8 cases 2, 3: server ports and alias; our admin-port and container-name rules

#[test]
fn server_publishes_admin_port_only_when_distinct() {
    struct Case {
        fed_port: u16,
        admin_port: Option<Value>,
        target: Option<&'static str>,
        ports: &'static [&'static str],
    }
    #[rustfmt::skip]
    let cases = [
        Case { fed_port: 8002, admin_port: Some(json!(8002)), target: None, ports: &["8002:8002"], },
        Case { fed_port: 8002, admin_port: Some(json!(8003)), target: None, ports: &["8002:8002", "8003:8003"], },
        Case { fed_port: 8002, admin_port: None, target: None, ports: &["8002:8002"], },
        // A bool is not a port (deviation 3): the admin port falls back to the fed port.
        Case { fed_port: 8002, admin_port: Some(json!(true)), target: None, ports: &["8002:8002"], },
        Case { fed_port: 8002, admin_port: Some(json!("8003")), target: None, ports: &["8002:8002"], },
        Case { fed_port: 9002, admin_port: Some(json!(9003)), target: None, ports: &["9002:9002", "9003:9003"], },
        Case { fed_port: 9002, admin_port: Some(json!(9003)), target: Some("server1"), ports: &["8002:8002", "9003:9003"], },
        Case { fed_port: 9002, admin_port: None, target: Some("server1"), ports: &["8002:8002"], },
        Case { fed_port: 9002, admin_port: Some(json!(8002)), target: Some("server1"), ports: &["8002:8002"], },
        Case { fed_port: 9002, admin_port: None, target: Some("server1:+9_102"), ports: &["9102:9102"], },
    ];
    let project = Project::new("proj");
    for (i, case) in cases.iter().enumerate() {
        let (_tmp, root) = tempdir();
        let kit = project
            .server("server1")
            .fed_port(case.fed_port)
            .admin_port(case.admin_port.clone())
            .build(&root);
        if let Some(target) = case.target {
            let path = kit.path("startup/fed_server.json");
            let mut doc = kitgen::read_json(&path);
            doc["servers"][0]["service"]["target"] = json!(target);
            kitgen::write_json(&path, &doc);
        }
        let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
        let output = root.join("out");
        prepare_ok(&kit.dir, &output, &config, &[]);
        let text = script(&output);
        assert_eq!(published_ports(&text), case.ports, "case {i}:\n{text}");
    }
}

#[test]
fn server_script_tail_matches_the_reference() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").server("server").build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    let output = root.join("out");
    prepare_ok(&kit.dir, &output, &config, &[]);
    let text = script(&output);
    assert_script_body(
        &text,
        "server",
        "server",
        &format!("\"{IMAGE}\""),
        "\"nvflare-network\"",
    );
    assert_script_tail(&text, &server_tail("server", &[8002, 8003], "org=nvidia"));
}

#[test]
fn dotted_server_name_keeps_container_name_and_gets_logical_alias() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").server("abc.aws.com").build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    let output = root.join("out");
    let run = prepare_ok(&kit.dir, &output, &config, &[]);
    let text = script(&output);
    assert!(text.contains("docker run --name abc.aws.com \\\n"), "{text}");
    assert!(text.contains("\n    --network-alias server \\\n"), "{text}");
    assert!(text.contains("printf 'Starting NVFlare server %s with image %s\\n' abc.aws.com \"$DOCKER_IMAGE\"\n"));
    assert_script_tail(&text, &server_tail("abc.aws.com", &[8002, 8003], "org=nvidia"));
    assert_eq!(
        run.stdout,
        txt_result(&expected_fields("server", "abc.aws.com", &output))
    );
}

#[test]
fn hostile_site_name_is_escaped_in_echo_and_sanitised_for_the_container() {
    let (_tmp, root) = tempdir();
    let fqsn = "o'neil site$(id)\"q`x`\\";
    let kit = Project::new("proj").client("hostile").fqsn(json!(fqsn)).build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    let output = root.join("out");
    let run = prepare_ok(&kit.dir, &output, &config, &["--format", "json"]);
    assert_eq!(run.json()["data"]["name"], fqsn, "the result shows the raw name");
    let text = script(&output);
    // The name as a printf argument, double-quoted because it holds `$`.
    assert_script_body(
        &text,
        "client",
        "\"o'neil site\\$(id)\\\"q\\`x\\`\\\\\"",
        &format!("\"{IMAGE}\""),
        "\"nvflare-network\"",
    );
    let run_line = text
        .lines()
        .find(|l| l.starts_with("docker run --name "))
        .expect("docker run line");
    let container = run_line
        .strip_prefix("docker run --name ")
        .and_then(|l| l.strip_suffix(" \\"))
        .expect("container name");
    assert!(
        is_docker_container_name(container),
        "container name {container:?} breaks Docker's rules"
    );
    // The uid argument is shell-quoted like shlex.quote.
    assert_script_tail(
        &text,
        &client_tail(container, "\"uid=o'neil site\\$(id)\\\"q\\`x\\`\\\\\"", "org=nvidia"),
    );
}

// ---------------------------------------------------------------------------------------
// spec 8 cases 4, 7, 8: server storage relocation

#[test]
fn server_storage_is_relocated_into_the_mounted_workspace() {
    let mut json_files = PythonJson::default();
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").server("server1").build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    let output = root.join("out");
    let run = prepare_ok(&kit.dir, &output, &config, &[]);
    assert!(!run.stdout.contains("Warning:"), "{}", run.stdout);
    let doc = kitgen::read_json(&output.join("local/resources.json.default"));
    assert_eq!(
        doc["snapshot_persistor"]["args"]["storage"]["args"]["root_dir"],
        "/var/tmp/nvflare/workspace/snapshot-storage"
    );
    let job_manager = doc["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["id"] == "job_manager")
        .expect("job_manager");
    assert_eq!(
        job_manager["args"],
        json!({"uri_root": "/var/tmp/nvflare/workspace/jobs-storage", "job_store_id": "job_store"})
    );
    json_files.check(
        &output.join("local/resources.json.default"),
        expected_server_resources(),
        "",
    );
    assert!(!output.join("local/resources.json").exists());
    assert!(kit.path("local/resources.json").exists());
    // The input kit keeps its provisioned storage.
    assert_eq!(
        kit.read_json("local/resources.json.default"),
        kitgen::provisioned_server_resources()
    );
    json_files.finish();
}

#[test]
fn server_without_snapshot_persistor_is_silent() {
    let (_tmp, root) = tempdir();
    let mut resources = kitgen::provisioned_server_resources();
    resources.as_object_mut().expect("object").remove("snapshot_persistor");
    // A job_manager without args gets them.
    resources["components"][1] =
        json!({"id": "job_manager", "path": "nvflare.apis.impl.job_def_manager.SimpleJobDefManager"});
    let kit = Project::new("proj")
        .server("server1")
        .resources(resources.clone())
        .build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    for format in ["txt", "json"] {
        let output = root.join(format!("out-{format}"));
        let run = prepare_ok(&kit.dir, &output, &config, &["--format", format]);
        assert!(!run.stdout.contains("Warning"), "{}", run.stdout);
        assert!(!run.stderr.contains("Warning"), "{}", run.stderr);
        let doc = kitgen::read_json(&output.join("local/resources.json.default"));
        assert!(doc.get("snapshot_persistor").is_none());
        assert_eq!(
            doc["components"][1],
            json!({"id": "job_manager", "path": "nvflare.apis.impl.job_def_manager.SimpleJobDefManager",
                   "args": {"uri_root": "/var/tmp/nvflare/workspace/jobs-storage"}})
        );
    }
}

#[test]
fn server_warns_when_snapshot_persistor_shape_is_unexpected() {
    let warning = "Warning: snapshot_persistor is present, but deploy prepare could not relocate snapshot storage to the workspace at /var/tmp/nvflare/workspace/snapshot-storage. Expected nested key: snapshot_persistor.args.storage.args.root_dir.";
    let shapes = [
        json!({"path": "nvflare.app_common.state_persistors.storage_state_persistor.StorageStatePersistor",
               "args": {"uri_root": "/"}}),
        json!({"path": "x.Persistor", "args": {"uri_root": "/", "storage": "not-a-mapping"}}),
        json!({"path": "x.Persistor", "args": {"storage": {"path": "x.Storage"}}}),
        json!({"path": "x.Persistor"}),
        json!(null),
    ];
    let project = Project::new("proj");
    for shape in shapes {
        let (_tmp, root) = tempdir();
        let mut resources = kitgen::provisioned_server_resources();
        resources["snapshot_persistor"] = shape.clone();
        let kit = project.server("server1").resources(resources).build(&root);
        let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
        let output = root.join("out");
        let run = prepare_ok(&kit.dir, &output, &config, &[]);
        let warnings: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("Warning:")).collect();
        assert_eq!(warnings, [warning], "shape {shape}");
        assert!(run.stdout.starts_with(warning), "warning first: {}", run.stdout);
        let doc = kitgen::read_json(&output.join("local/resources.json.default"));
        assert_eq!(doc["snapshot_persistor"], shape, "left unchanged");
        let job_manager = doc["components"]
            .as_array()
            .expect("components")
            .iter()
            .find(|c| c["id"] == "job_manager")
            .expect("job_manager");
        assert_eq!(
            job_manager["args"]["uri_root"],
            "/var/tmp/nvflare/workspace/jobs-storage"
        );
        // json: the warning goes to stderr.
        let output_json = root.join("out-json");
        let run = prepare_ok(&kit.dir, &output_json, &config, &["--format", "json"]);
        assert_eq!(run.stderr, format!("{warning}\n"));
        assert_eq!(run.stdout.lines().count(), 1);
    }
}

// ---------------------------------------------------------------------------------------
// spec 8 case 12: organisation from the certificate

#[test]
fn org_comes_from_the_certificate_without_sub_start() {
    let (_tmp, root) = tempdir();
    let project = Project::new("proj");
    let client = project.client("site-1").org(Some("acme research")).build(&root);
    fs::remove_file(client.path("startup/sub_start.sh")).expect("rm sub_start.sh");
    let server = project.server("server1").org(Some("Hôpital")).build(&root);
    fs::remove_file(server.path("startup/sub_start.sh")).expect("rm sub_start.sh");
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);

    let out = root.join("client-out");
    prepare_ok(&client.dir, &out, &config, &[]);
    assert_script_tail(
        &script(&out),
        &client_tail("site-1", "uid=site-1", "'org=acme research'"),
    );
    let out = root.join("server-out");
    prepare_ok(&server.dir, &out, &config, &[]);
    assert_script_tail(&script(&out), &server_tail("server1", &[8002, 8003], "'org=Hôpital'"));
}

// ---------------------------------------------------------------------------------------
// spec 8 case 13 and comm config handling (spec 4.4)

#[test]
fn comm_config_is_created_when_missing() {
    let mut json_files = PythonJson::default();
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    let (output, _) = prepare_client(&root, &kit, MINIMAL_CONFIG);
    json_files.check(
        &output.join("local/comm_config.json"),
        json!({
            "allow_adhoc_conns": false,
            "backbone_conn_gen": 2,
            "internal": {"scheme": "tcp", "resources": {"connection_security": "clear", "host": "0.0.0.0"}}
        }),
        "",
    );
    // The reference's layout, stated literally.
    assert_eq!(
        read(&output.join("local/comm_config.json")),
        r#"{
    "allow_adhoc_conns": false,
    "backbone_conn_gen": 2,
    "internal": {
        "scheme": "tcp",
        "resources": {
            "connection_security": "clear",
            "host": "0.0.0.0"
        }
    }
}
"#
    );
    assert!(!kit.path("local/comm_config.json").exists());
    json_files.finish();
}

#[test]
fn existing_comm_config_is_patched_in_place() {
    let mut json_files = PythonJson::default();
    #[rustfmt::skip]
    let cases = [
        // Provisioned shape with mtls: security and port kept; host and scheme replaced.
        (json!({"allow_adhoc_conns": false, "backbone_conn_gen": 2, "internal": {"scheme": "grpc", "resources": {"host": "localhost", "port": 8102, "connection_security": "mtls"}}}), json!({"allow_adhoc_conns": false, "backbone_conn_gen": 2, "internal": {"scheme": "tcp", "resources": {"host": "0.0.0.0", "port": 8102, "connection_security": "mtls"}}})),
        (json!({"internal": {"scheme": "tcp", "resources": {"connection_security": "tls"}}}), json!({"internal": {"scheme": "tcp", "resources": {"connection_security": "tls", "host": "0.0.0.0"}}})),
        (json!({"backbone_conn_gen": 1, "internal": {"scheme": "grpc", "resources": {"host": "relay", "port": 8102}}, "extra": [1, 2.5, "x"]}), json!({"backbone_conn_gen": 1, "internal": {"scheme": "tcp", "resources": {"host": "0.0.0.0", "port": 8102, "connection_security": "clear"}}, "extra": [1, 2.5, "x"]})),
        (json!({"allow_adhoc_conns": true}), json!({"allow_adhoc_conns": true, "internal": {"scheme": "tcp", "resources": {"host": "0.0.0.0", "connection_security": "clear"}}})),
        (json!({"internal": {"resources": {"connection_security": "clear"}}}), json!({"internal": {"resources": {"connection_security": "clear", "host": "0.0.0.0"}, "scheme": "tcp"}})),
        (json!({"internal": {}}), json!({"internal": {"scheme": "tcp", "resources": {"host": "0.0.0.0", "connection_security": "clear"}}})),
    ];
    let project = Project::new("proj");
    for (input, expected) in cases {
        let (_tmp, root) = tempdir();
        let kit = project.client("site-1").comm_config(input.clone()).build(&root);
        let before = Snapshot::take(&kit.dir, &[]);
        let (output, _) = prepare_client(&root, &kit, MINIMAL_CONFIG);
        json_files.check(
            &output.join("local/comm_config.json"),
            expected,
            &format!("input {input}"),
        );
        Snapshot::take(&kit.dir, &[]).assert_same_as(&before, "input kit");
        assert_eq!(kit.read_json("local/comm_config.json"), input);
    }
    json_files.finish();
}

// ---------------------------------------------------------------------------------------
// study_data.yaml, start scripts, resources.json (spec 4.3.1, 4.5, 4.6)

#[test]
fn study_data_template_is_written_only_when_absent() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    let (output, _) = prepare_client(&root, &kit, MINIMAL_CONFIG);
    assert_eq!(
        fs::read(output.join("local/study_data.yaml")).expect("study data"),
        STUDY_DATA_YAML.as_bytes()
    );

    let (_tmp2, root2) = tempdir();
    let kit2 = Project::new("proj").client("site-1").build(&root2);
    let own = "default:\n  training:\n    source: /data/mine\n    mode: rw\n";
    kitgen::write(&kit2.path("local/study_data.yaml"), own, 0o640);
    let (output2, _) = prepare_client(&root2, &kit2, MINIMAL_CONFIG);
    assert_same_file(
        &kit2.path("local/study_data.yaml"),
        &output2.join("local/study_data.yaml"),
    );
}

#[test]
fn start_scripts_are_removed_except_start_docker_sh() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").server("server1").build(&root);
    kitgen::write(&kit.path("startup/azure_start.sh"), "#!/bin/sh\necho azure\n", 0o750);
    kitgen::write(&kit.path("startup/start_docker.sh"), "#!/bin/sh\necho stale\n", 0o600);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    let output = root.join("out");
    prepare_ok(&kit.dir, &output, &config, &[]);
    let startup: BTreeSet<String> = fs::read_dir(output.join("startup"))
        .expect("startup")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        startup,
        set(&[
            "azure_start.sh",
            "fed_server.json",
            "rootCA.pem",
            "server.crt",
            "server.key",
            "start_docker.sh",
        ])
    );
    assert_same_file(
        &kit.path("startup/azure_start.sh"),
        &output.join("startup/azure_start.sh"),
    );
    let text = script(&output);
    assert!(!text.contains("echo stale"), "start_docker.sh must be rewritten");
    assert_script_tail(&text, &server_tail("server1", &[8002, 8003], "org=nvidia"));
    let mode = fs::metadata(output.join("startup/start_docker.sh"))
        .expect("script")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "mode {mode:o}");
    // The input kit's own files are untouched.
    assert_eq!(read(&kit.path("startup/start_docker.sh")), "#!/bin/sh\necho stale\n");
}

#[test]
fn active_resources_json_is_removed_from_the_output_only() {
    let (_tmp, root) = tempdir();
    let project = Project::new("proj");
    for kit in [
        project.client("site-1").build(&root),
        project.server("server1").build(&root),
    ] {
        assert!(kit.path("local/resources.json").is_file());
        let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
        let output = root.join(format!("out-{}", kit.dir.file_name().expect("name").to_string_lossy()));
        prepare_ok(&kit.dir, &output, &config, &[]);
        assert!(!output.join("local/resources.json").exists());
        assert_eq!(kit.read_json("local/resources.json"), json!({"stale": true}));
    }
}

// ---------------------------------------------------------------------------------------
// spec 8 cases 27, 28: component warnings

#[test]
fn custom_resource_and_launcher_config_warns() {
    let (_tmp, root) = tempdir();
    let resources = json!({
        "format_version": 2,
        "components": [
            {"id": "resource_manager", "path": "custom.ListResourceManager", "args": {"resources": {"gpu": [0, 1]}}},
            {"id": "resource_consumer", "path": "custom.Consumer", "args": {}},
            {"id": "process_launcher", "path": "custom.ProcessLauncher", "args": {}},
            {"id": "k8s_launcher", "path": "nvflare.app_opt.job_launcher.k8s_launcher.ClientK8sJobLauncher", "args": {"namespace": "x"}},
            {"id": "keep_me", "path": "custom.Widget", "args": {"a": 1}}
        ]
    });
    let kit = Project::new("proj").client("site-1").resources(resources).build(&root);
    let (output, run) = prepare_client(&root, &kit, MINIMAL_CONFIG);
    let expected_warnings = [
        WARN_RESOURCE_MANAGER.to_string(),
        WARN_RESOURCE_CONSUMER.to_string(),
        warn_launcher("process_launcher"),
        warn_launcher("k8s_launcher"),
    ];
    let fields = expected_fields("client", "site-1", &output);
    assert_eq!(
        run.stdout,
        format!("{}\n{}", expected_warnings.join("\n"), txt_result(&fields))
    );
    assert_eq!(
        kitgen::read_json(&output.join("local/resources.json.default"))["components"],
        json!([
            {"id": "keep_me", "path": "custom.Widget", "args": {"a": 1}},
            passthrough(),
            docker_launcher(DOCKER_CLIENT_LAUNCHER, default_launcher_args())
        ])
    );

    // json: the same warnings on stderr, stdout is the envelope only.
    let output_json = root.join("out-json");
    let config = root.join("docker.yaml");
    let run = prepare_ok(&kit.dir, &output_json, &config, &["--format", "json"]);
    assert_eq!(run.stderr, format!("{}\n", expected_warnings.join("\n")));
    assert_eq!(run.stdout.lines().count(), 1);
    assert_eq!(run.json()["status"], "ok");
}

#[test]
fn default_components_with_empty_args_do_not_warn() {
    let resources = json!({
        "format_version": 2,
        "components": [
            {"id": "resource_manager", "path": GPU_RESOURCE_MANAGER, "args": {}},
            {"id": "resource_consumer", "path": GPU_RESOURCE_CONSUMER, "args": {}},
            {"id": "process_launcher", "path": CLIENT_PROCESS_LAUNCHER, "args": {}},
            {"id": "docker_launcher", "path": DOCKER_CLIENT_LAUNCHER},
            {"id": "resource_manager", "path": PASSTHROUGH_RESOURCE_MANAGER},
            {"id": "resource_consumer"},
            {"id": "process_launcher", "path": SERVER_PROCESS_LAUNCHER, "args": null}
        ]
    });
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").resources(resources).build(&root);
    let (output, run) = prepare_client(&root, &kit, MINIMAL_CONFIG);
    assert!(!run.stdout.contains("Warning:"), "{}", run.stdout);
    assert_eq!(run.stdout, txt_result(&expected_fields("client", "site-1", &output)));
    assert_eq!(
        kitgen::read_json(&output.join("local/resources.json.default"))["components"],
        json!([
            passthrough(),
            docker_launcher(DOCKER_CLIENT_LAUNCHER, default_launcher_args())
        ])
    );
}

#[test]
fn docker_launcher_of_the_other_role_warns() {
    let resources = json!({
        "format_version": 2,
        "components": [{"id": "docker_launcher", "path": DOCKER_SERVER_LAUNCHER, "args": {}}]
    });
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").resources(resources).build(&root);
    let (_, run) = prepare_client(&root, &kit, MINIMAL_CONFIG);
    let warnings: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("Warning:")).collect();
    assert_eq!(warnings, [warn_launcher("docker_launcher")]);
}

#[test]
fn resources_without_components_get_them() {
    let mut json_files = PythonJson::default();
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj")
        .client("site-1")
        .resources(json!({"format_version": 2, "client": {"retry_timeout": 30}}))
        .build(&root);
    let (output, _) = prepare_client(&root, &kit, MINIMAL_CONFIG);
    json_files.check(
        &output.join("local/resources.json.default"),
        json!({
            "format_version": 2,
            "client": {"retry_timeout": 30},
            "components": [passthrough(), docker_launcher(DOCKER_CLIENT_LAUNCHER, default_launcher_args())]
        }),
        "",
    );
    // The reference's layout, stated literally: empty objects stay `{}` on one line.
    let literal = r#"{
    "format_version": 2,
    "client": {
        "retry_timeout": 30
    },
    "components": [
        {
            "id": "resource_manager",
            "path": "PASSTHROUGH",
            "args": {}
        },
        {
            "id": "docker_launcher",
            "path": "LAUNCHER",
            "args": {
                "network": "nvflare-network",
                "default_python_path": "/usr/local/bin/python",
                "default_job_container_kwargs": {},
                "default_job_env": {}
            }
        }
    ]
}
"#
    .replace("PASSTHROUGH", PASSTHROUGH_RESOURCE_MANAGER)
    .replace("LAUNCHER", DOCKER_CLIENT_LAUNCHER);
    assert_eq!(read(&output.join("local/resources.json.default")), literal);
    json_files.finish();
}

// ---------------------------------------------------------------------------------------
// config values: defaults, explicit nulls (deviation 1), YAML 1.2 (deviation 9)

#[test]
fn explicit_null_and_empty_sections_mean_the_defaults() {
    let mut json_files = PythonJson::default();
    let configs = [
        "runtime: docker\nparent:\n  docker_image: img:1\n  network: null\n",
        "runtime: docker\nparent:\n  docker_image: img:1\njob_launcher: null\n",
        "runtime: docker\nparent:\n  docker_image: img:1\njob_launcher:\n",
        "runtime: docker\nparent:\n  docker_image: img:1\njob_launcher: {}\n",
        "runtime: docker\nparent:\n  docker_image: img:1\n  network: ~\njob_launcher:\n  default_python_path: null\n  default_job_env: null\n  default_job_container_kwargs: null\n",
        "runtime: docker\nparent:\n  docker_image: img:1\njob_launcher:\n  default_job_env: {}\n  default_job_container_kwargs: {}\n",
    ];
    let project = Project::new("proj");
    for config_yaml in configs {
        let (_tmp, root) = tempdir();
        let kit = project.client("site-1").build(&root);
        let (output, _) = prepare_client(&root, &kit, config_yaml);
        json_files.check(
            &output.join("local/resources.json.default"),
            expected_client_resources(default_launcher_args()),
            &format!("config:\n{config_yaml}"),
        );
        let text = script(&output);
        assert!(
            text.lines().any(|l| l == "NETWORK_NAME=\"nvflare-network\""),
            "config:\n{config_yaml}\n{text}"
        );
        assert!(text.lines().any(|l| l == "DOCKER_IMAGE=${NVFL_P_IMAGE:-\"img:1\"}"));
    }
    json_files.finish();
}

#[test]
fn yaml_1_2_scalars_are_strings() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    let (output, _) = prepare_client(
        &root,
        &kit,
        "runtime: docker\nparent:\n  docker_image: yes\n  network: on\njob_launcher:\n  default_job_env:\n    FLAG: no\n",
    );
    let text = script(&output);
    assert!(
        text.lines().any(|l| l == "DOCKER_IMAGE=${NVFL_P_IMAGE:-\"yes\"}"),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "NETWORK_NAME=\"on\""), "{text}");
    let doc = kitgen::read_json(&output.join("local/resources.json.default"));
    let args = &doc["components"][2]["args"];
    assert_eq!(args["network"], "on");
    assert_eq!(args["default_job_env"], json!({"FLAG": "no"}));
}

#[test]
fn config_values_with_special_characters_are_quoted_in_the_script() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    let (output, _) = prepare_client(
        &root,
        &kit,
        "runtime: docker\nparent:\n  docker_image: 'img\"$(x)`y`\\z'\n  network: 'net $HOME'\n",
    );
    let text = script(&output);
    assert_script_body(
        &text,
        "client",
        "site-1",
        "\"img\\\"\\$(x)\\`y\\`\\\\z\"",
        "\"net \\$HOME\"",
    );
    let doc = kitgen::read_json(&output.join("local/resources.json.default"));
    assert_eq!(doc["components"][2]["args"]["network"], "net $HOME");
}

// ---------------------------------------------------------------------------------------
// JSON files: non-ASCII escaped, Python floats (deviation 12, spec 4.3.1)

#[test]
fn json_files_escape_non_ascii_and_keep_python_floats() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    let (output, _) = prepare_client(
        &root,
        &kit,
        "runtime: docker\nparent:\n  docker_image: img\njob_launcher:\n  default_job_env:\n    LANG_NAME: \"é\"\n    EMOJI: \"😀\"\n  default_job_container_kwargs:\n    cpu_ratio: 1.5\n    whole: 100.0\n    tiny: 1.0e-7\n    huge: 1.0e+20\n",
    );
    let text = read(&output.join("local/resources.json.default"));
    assert!(text.is_ascii(), "resources.json.default must be ASCII:\n{text}");
    assert!(text.contains(r#""LANG_NAME": "\u00e9""#), "{text}");
    assert!(text.contains(r#""EMOJI": "\ud83d\ude00""#), "{text}");
    assert!(text.contains("\"cpu_ratio\": 1.5,\n"), "{text}");
    assert!(text.contains("\"whole\": 100.0,\n"), "{text}");
    assert!(text.contains("\"tiny\": 1e-07,\n"), "{text}");
    assert!(text.contains("\"huge\": 1e+20\n"), "{text}");
    // 4-space indentation, one element per line.
    assert!(text.starts_with("{\n    \"format_version\": 2,\n"), "{text}");
    assert!(text.ends_with("}\n"));
    let doc = kitgen::read_json(&output.join("local/resources.json.default"));
    assert_eq!(
        doc["components"][2]["args"]["default_job_env"],
        json!({"LANG_NAME": "é", "EMOJI": "😀"})
    );
    // The whole file, escapes and float forms included, as NVFlare's writer writes it.
    let mut json_files = PythonJson::default();
    json_files.check(&output.join("local/resources.json.default"), doc, "");
    json_files.finish();
}

// ---------------------------------------------------------------------------------------
// output paths: spec 8 cases 14, 15; deviations 5, 6, 7; spec 5.11

#[test]
fn conventional_config_and_output_paths_and_rerun() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    kit.write_config(MINIMAL_CONFIG);
    let mut before = Snapshot::take(&kit.dir, &["prepared"]);
    // Relative kit path, resolved against the working directory.
    let run = run_in(Some(&root), ["prepare", "site-1"], &[]);
    run.assert_ok();
    let output = kit.dir.join("prepared").join("docker");
    assert_eq!(
        run.stdout,
        format!(
            "{WARN_RESOURCE_MANAGER}\n{}",
            txt_result(&expected_fields("client", "site-1", &output))
        )
    );
    // Creating `prepared/` touches the kit root's mtime and nothing else.
    let mut after = Snapshot::take(&kit.dir, &["prepared"]);
    before.0.remove(Path::new(""));
    after.0.remove(Path::new(""));
    after.assert_same_as(&before, "input kit");
    assert!(output.join("startup/start_docker.sh").is_file());
    assert_same_file(&kit.path("config.yaml"), &output.join("config.yaml"));
    assert_eq!(
        fs::read_dir(kit.path("prepared"))
            .expect("prepared")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        ["docker"],
        "no staging directory may be left beside the output"
    );
    let first_tree = tree(&output);

    // Re-run: a stale file disappears and prepared/ is never nested.
    fs::write(output.join("stale.txt"), "stale").expect("stale");
    fs::write(output.join("startup/start.sh"), "stale").expect("stale");
    let before = Snapshot::take(&kit.dir, &["prepared"]);
    let run = flare_deploy(args(&[&"prepare", &kit.dir]));
    run.assert_ok();
    Snapshot::take(&kit.dir, &["prepared"]).assert_same_as(&before, "input kit");
    assert_eq!(tree(&output), first_tree);
    assert!(!output.join("prepared").exists());
    assert_eq!(
        entries_starting_with(&kit.path("prepared"), ".docker.prepare-"),
        Vec::<String>::new()
    );
}

#[test]
fn default_output_is_runtime_specific_and_other_prepared_outputs_are_not_copied() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    kit.write_config(MINIMAL_CONFIG);
    // An earlier output of another runtime and a custom output under prepared/.
    write_file(&kit.path("prepared/k8s/helm_chart/values.yaml"), "name: site-1\n");
    write_file(&kit.path("prepared/notes.txt"), "notes\n");
    let others = Snapshot::take(&kit.path("prepared/k8s"), &[]);
    let run = flare_deploy(args(&[&"prepare", &"--kit", &kit.dir, &"--format", &"json"]));
    run.assert_ok();
    let output = kit.path("prepared/docker");
    assert_eq!(run.json()["data"]["output"], output.display().to_string());
    assert!(!output.join("prepared").exists());
    assert!(!output.join("k8s").exists());
    Snapshot::take(&kit.path("prepared/k8s"), &[]).assert_same_as(&others, "prepared/k8s");
    assert_eq!(read(&kit.path("prepared/notes.txt")), "notes\n");

    // A custom output strictly under prepared/ is allowed and not nested either.
    let custom = kit.path("prepared/custom/site");
    let run = flare_deploy(args(&[&"prepare", &kit.dir, &"--output", &custom]));
    run.assert_ok();
    assert!(custom.join("startup/start_docker.sh").is_file());
    assert!(!custom.join("prepared").exists());
    assert!(kit.path("prepared/docker/startup/start_docker.sh").is_file());
}

#[test]
fn output_outside_the_kit_never_copies_prepared() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    kit.write_config(MINIMAL_CONFIG);
    write_file(&kit.path("prepared/docker/startup/old.txt"), "old\n");
    let before = Snapshot::take(&kit.dir, &[]);
    let output = root.join("elsewhere").join("site-1");
    let run = flare_deploy(args(&[&"prepare", &kit.dir, &"--output", &output]));
    run.assert_ok();
    Snapshot::take(&kit.dir, &[]).assert_same_as(&before, "input kit");
    assert!(!output.join("prepared").exists());
    assert!(output.join("config.yaml").is_file(), "config.yaml in the kit is copied");
    assert!(entries_starting_with(&root.join("elsewhere"), ".site-1.prepare-").is_empty());
}

#[test]
fn rerun_with_explicit_output_replaces_it_as_a_whole() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").server("server1").build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    let output = root.join("out").join("server1");
    prepare_ok(&kit.dir, &output, &config, &[]);
    let first = tree(&output);
    let first_resources = read(&output.join("local/resources.json.default"));
    write_file(&output.join("stale/deep/file.txt"), "x");
    fs::write(output.join("local/resources.json"), "{}").expect("write");
    fs::write(output.join("local/resources.json.default"), "{}").expect("write");

    let config2 = write_file(
        &root.join("docker2.yaml"),
        "runtime: docker\nparent:\n  docker_image: other:2\n  network: net2\n",
    );
    prepare_ok(&kit.dir, &output, &config2, &[]);
    assert_eq!(tree(&output), first);
    let text = script(&output);
    assert!(text.lines().any(|l| l == "DOCKER_IMAGE=${NVFL_P_IMAGE:-\"other:2\"}"));
    assert!(text.lines().any(|l| l == "NETWORK_NAME=\"net2\""));
    assert_eq!(
        read(&output.join("local/resources.json.default")),
        first_resources.replace("\"network\": \"nvflare-network\"", "\"network\": \"net2\"")
    );
    assert_eq!(
        entries_starting_with(&root.join("out"), "."),
        Vec::<String>::new(),
        "no staging or parked directory may be left"
    );
}

#[test]
fn existing_empty_output_directory_is_used() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    let output = root.join("empty");
    fs::create_dir(&output).expect("mkdir");
    prepare_ok(&kit.dir, &output, &config, &[]);
    assert!(output.join("startup/start_docker.sh").is_file());
    assert!(output.join("local/resources.json.default").is_file());
}

#[test]
fn start_command_quotes_the_output_path_only_when_needed() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    let output = root.join("a b").join("it's out");
    let run = prepare_ok(&kit.dir, &output, &config, &["--format", "json"]);
    let out = output.display().to_string();
    let data = &run.json()["data"];
    assert_eq!(
        data["start_command"],
        format!("cd '{}' && ./startup/start_docker.sh", out.replace('\'', "'\"'\"'"))
    );
    assert_eq!(data["output"], out);
    assert_eq!(data["start_script"], format!("{out}/startup/start_docker.sh"));
    assert_eq!(data["resources"], format!("{out}/local/resources.json.default"));
    assert!(output.join("startup/start_docker.sh").is_file());

    // Plain paths are not quoted (checked on the txt form).
    let plain = root.join("plain_out-1.x");
    let run = prepare_ok(&kit.dir, &plain, &config, &[]);
    assert!(
        run.stdout
            .lines()
            .any(|l| l == format!("start_command: cd {} && ./startup/start_docker.sh", plain.display())),
        "{}",
        run.stdout
    );
}

#[test]
fn kit_given_through_a_symlink_reports_resolved_paths() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    kit.write_config(MINIMAL_CONFIG);
    let link = root.join("link-to-kit");
    std::os::unix::fs::symlink(&kit.dir, &link).expect("symlink");
    let run = flare_deploy(args(&[&"prepare", &link, &"--format", &"json"]));
    run.assert_ok();
    let output = kit.dir.join("prepared").join("docker");
    assert_eq!(run.json()["data"]["output"], output.display().to_string());
    assert!(output.join("startup/start_docker.sh").is_file());
}

// ---------------------------------------------------------------------------------------
// site name detection (spec 3.1) and copy semantics (spec 5.5)

#[test]
fn site_name_comes_from_fqsn_identity_admin_server_or_directory() {
    let project = Project::new("proj");
    #[rustfmt::skip]
    let client_cases: [(Option<Value>, &str); 9] = [
        (Some(json!("org1.site-1")), "org1.site-1"),
        (Some(json!("")), "kit-dir"),
        (Some(json!(null)), "kit-dir"),
        (Some(json!(false)), "kit-dir"),
        (Some(json!(0)), "kit-dir"),
        (Some(json!(7)), "7"),
        (Some(json!(true)), "True"),
        (Some(json!(1.5)), "1.5"),
        (None, "kit-dir"),
    ];
    for (fqsn, expected) in client_cases {
        let (_tmp, root) = tempdir();
        let kit = project.client("site-1").dir_name("kit-dir").build(&root);
        kitgen::write_json(&kit.path("startup/fed_client.json"), &{
            let mut doc = kit.read_json("startup/fed_client.json");
            match &fqsn {
                Some(v) => doc["client"]["fqsn"] = v.clone(),
                None => doc["client"] = json!(null),
            }
            doc
        });
        let (output, run) = prepare_client(&root, &kit, MINIMAL_CONFIG);
        assert!(
            run.stdout.lines().any(|l| l == format!("name: {expected}")),
            "fqsn {fqsn:?}: {}",
            run.stdout
        );
        let text = script(&output);
        assert!(
            text.contains(&format!("\n    uid={expected} \\\n")),
            "fqsn {fqsn:?}:\n{text}"
        );
    }
    #[rustfmt::skip]
    let server_cases: [(Value, &str); 5] = [
        (json!({"identity": "srv-id", "admin_server": "srv-admin"}), "srv-id"),
        (json!({"identity": "", "admin_server": "srv-admin"}), "srv-admin"),
        (json!({"identity": null, "admin_server": null}), "kit-dir"),
        (json!({"servers": []}), "kit-dir"),
        (json!({"no_servers": true}), "kit-dir"),
    ];
    for (patch, expected) in server_cases {
        let (_tmp, root) = tempdir();
        let kit = project.server("server1").dir_name("kit-dir").build(&root);
        let mut doc = kit.read_json("startup/fed_server.json");
        if patch.get("servers").is_some() {
            doc["servers"] = patch["servers"].clone();
        } else if patch.get("no_servers").is_some() {
            doc.as_object_mut().expect("object").remove("servers");
        } else {
            for (k, v) in patch.as_object().expect("patch") {
                doc["servers"][0][k] = v.clone();
            }
        }
        kitgen::write_json(&kit.path("startup/fed_server.json"), &doc);
        let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
        let output = root.join("out");
        let run = prepare_ok(&kit.dir, &output, &config, &["--format", "json"]);
        assert_eq!(run.json()["data"]["name"], expected, "{patch}");
        assert!(
            script(&output).contains(&format!("docker run --name {expected} \\\n")),
            "{patch}"
        );
    }
}

#[test]
fn json_envelope_escapes_non_ascii() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj")
        .client("site")
        .fqsn(json!("clinique-é"))
        .build(&root);
    let config = write_file(&root.join("docker.yaml"), MINIMAL_CONFIG);
    let output = root.join("out");
    let run = prepare_ok(&kit.dir, &output, &config, &["--format", "json"]);
    assert!(run.stdout.is_ascii(), "{}", run.stdout);
    assert!(run.stdout.contains(r#""name": "clinique-\u00e9""#), "{}", run.stdout);
    assert_eq!(run.json()["data"]["name"], "clinique-é");
    // txt prints the name as is.
    let run = prepare_ok(&kit.dir, &output, &config, &[]);
    assert!(run.stdout.lines().any(|l| l == "name: clinique-é"), "{}", run.stdout);
}

#[test]
fn copy_keeps_file_and_directory_modes_and_times() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    fs::set_permissions(kit.path("transfer"), fs::Permissions::from_mode(0o750)).expect("chmod");
    kitgen::write(&kit.path("local/private.json"), "{}\n", 0o600);
    kitgen::write(&kit.path("custom.sh"), "#!/bin/sh\n", 0o700);
    let before = Snapshot::take(&kit.dir, &[]);
    let (output, _) = prepare_client(&root, &kit, MINIMAL_CONFIG);
    Snapshot::take(&kit.dir, &[]).assert_same_as(&before, "input kit");
    for rel in ["local/private.json", "custom.sh"] {
        assert_same_file(&kit.path(rel), &output.join(rel));
    }
    let dir_meta = |p: &Path| fs::metadata(p).expect("dir");
    assert_eq!(dir_meta(&output.join("transfer")).mode() & 0o7777, 0o750);
    assert_eq!(
        dir_meta(&output.join("transfer")).modified().expect("mtime"),
        dir_meta(&kit.path("transfer")).modified().expect("mtime")
    );
}

#[test]
fn symlinks_inside_the_kit_are_copied_as_links_into_the_copy() {
    // Deviation K5 (issue 6): links inside the kit stay links, relative, so the copy
    // never points back at the input kit.
    let (_tmp, root) = tempdir();
    let kit = Project::new("proj").client("site-1").build(&root);
    std::os::unix::fs::symlink("../readme.txt", kit.path("local/readme-link.txt")).expect("symlink");
    std::os::unix::fs::symlink(kit.path("local"), kit.path("startup/local-abs")).expect("symlink");
    let before = Snapshot::take(&kit.dir, &[]);
    let (output, _) = prepare_client(&root, &kit, MINIMAL_CONFIG);
    Snapshot::take(&kit.dir, &[]).assert_same_as(&before, "input kit");
    let link = output.join("local/readme-link.txt");
    assert!(link.symlink_metadata().expect("copied").file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(&link).expect("link"),
        std::path::PathBuf::from("../readme.txt")
    );
    assert_eq!(read(&link), "Provisioned by the flare-deploy test suite.\n");
    let abs = output.join("startup/local-abs");
    assert_eq!(
        std::fs::read_link(&abs).expect("link"),
        std::path::PathBuf::from("../local")
    );
    assert_eq!(
        abs.canonicalize().expect("resolves"),
        output.join("local").canonicalize().expect("local"),
        "an absolute link into the kit points into the copy"
    );
}

#[test]
fn symlinks_leaving_the_kit_or_dangling_are_refused() {
    let (_tmp, root) = tempdir();
    write_file(&root.join("shared/extra.json"), "{\"shared\": true}\n");
    for (name, target, message) in [
        (
            "extra.json",
            root.join("shared/extra.json"),
            "Symlink points outside the startup kit",
        ),
        (
            "gone.json",
            root.join("nowhere.json"),
            "Broken symlink in the startup kit",
        ),
    ] {
        let kit = Project::new("proj").client("site-1").dir_name(name).build(&root);
        std::os::unix::fs::symlink(&target, kit.path(&format!("local/{name}"))).expect("symlink");
        let before = Snapshot::take(&kit.dir, &[]);
        kit.write_config(MINIMAL_CONFIG);
        let before_config = Snapshot::take(&kit.dir, &[]);
        let run = flare_deploy(["prepare".as_ref(), kit.dir.as_os_str()]);
        run.assert_error_code("INVALID_KIT", message);
        assert!(
            run.stderr
                .contains(&kit.path(&format!("local/{name}")).display().to_string()),
            "{}",
            run.stderr
        );
        Snapshot::take(&kit.dir, &["prepared"]).assert_same_as(&before_config, "input kit");
        assert!(!kit.path("prepared/docker").exists());
        drop(before);
    }
}
