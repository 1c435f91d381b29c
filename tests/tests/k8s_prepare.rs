//! `flare-deploy prepare` with `runtime: k8s` on generated kits: the launcher component,
//! comm_config, storage relocation, start scripts, the Helm chart's values and Chart.yaml,
//! the result envelope, and the Kubernetes objects the chart renders (reference spec
//! 2.3, 4.2-4.4, 4.7, 4.9, 6, 7, 8 and our deviations).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use flare_deploy_tests::harness::Run;
use flare_deploy_tests::json::keys;
use flare_deploy_tests::kitgen::{read_json, write, write_json, Kit};
use flare_deploy_tests::oracle;
use flare_deploy_tests::tools::{self, object, render_chart};
use flare_deploy_tests::{flare_deploy, Project, Snapshot};
use serde_json::{json, Value};
use tempfile::TempDir;

const IMAGE: &str = "nvflare/nvflare:2.8.1";
const BASIC: &str = "runtime: k8s\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";
const MOUNT: &str = "/var/tmp/nvflare/workspace";
const PYTHON3: &str = "/usr/local/bin/python3";
const K8S_CLIENT_LAUNCHER: &str = "nvflare.app_opt.job_launcher.k8s_launcher.ClientK8sJobLauncher";
const K8S_SERVER_LAUNCHER: &str = "nvflare.app_opt.job_launcher.k8s_launcher.ServerK8sJobLauncher";
const PASSTHROUGH: &str =
    "nvflare.app_common.resource_managers.passthrough_resource_manager.PassthroughResourceManager";
const RESOURCE_MANAGER_WARNING: &str = "Warning: deploy prepare replaces component 'resource_manager' with \
     PassthroughResourceManager; existing resource manager path/args will not be used by the prepared runtime.";
const STUDY_DATA: &str = "# Study data mapping used by Docker and Kubernetes job launchers.\n\
# Example:\n\
# default:\n\
#   training:\n\
#     source: /data/training    # Docker: host path; K8s: PVC claim name\n\
#     mode: ro                  # ro or rw\n\
{}\n";
const START_SCRIPTS: [&str; 5] = ["start.sh", "sub_start.sh", "stop_fl.sh", "docker.sh", "start_docker.sh"];

// ---------------------------------------------------------------------------------------
// helpers

/// A temporary directory (symlinks resolved, as the tool resolves paths) and a project.
struct Env {
    _tmp: TempDir,
    root: PathBuf,
    project: Project,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().canonicalize().expect("canonical tempdir");
    Env {
        _tmp: tmp,
        root,
        project: Project::new("proj"),
    }
}

/// Runs `prepare <kit> --output <parent>/out-<label> --config <parent>/<label>.yaml`.
fn prepare(kit: &Kit, label: &str, config: &str, format: &str) -> (Run, PathBuf) {
    let parent = kit.dir.parent().expect("kit parent");
    let config_path = parent.join(format!("{label}.yaml"));
    std::fs::write(&config_path, config).expect("write config");
    let out = parent.join(format!("out-{label}"));
    let run = flare_deploy([
        OsStr::new("prepare"),
        kit.dir.as_os_str(),
        OsStr::new("--output"),
        out.as_os_str(),
        OsStr::new("--config"),
        config_path.as_os_str(),
        OsStr::new("--format"),
        OsStr::new(format),
    ]);
    (run, out)
}

/// A successful json-mode prepare: the output directory and the result `data`.
#[track_caller]
fn prepared(kit: &Kit, label: &str, config: &str) -> (PathBuf, Value) {
    let (run, out) = prepare(kit, label, config, "json");
    run.assert_ok();
    let doc = run.json();
    assert_eq!(doc["status"], "ok", "{doc}");
    (out, doc["data"].clone())
}

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}\n{text}", path.display()))
}

fn values(out: &Path) -> Value {
    yaml_file(&out.join("helm_chart/values.yaml"))
}

fn chart_yaml(out: &Path) -> Value {
    yaml_file(&out.join("helm_chart/Chart.yaml"))
}

fn resources(out: &Path) -> Value {
    read_json(&out.join("local/resources.json.default"))
}

fn comm(out: &Path) -> Value {
    read_json(&out.join("local/comm_config.json"))
}

/// Asserts the object's entries, in order (nested objects compare without order).
#[track_caller]
fn assert_entries(actual: &Value, expected: &[(&str, Value)]) {
    let got: Vec<(String, Value)> = actual
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {actual}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let want: Vec<(String, Value)> = expected.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    assert_eq!(got, want);
}

fn component<'a>(resources: &'a Value, id: &str) -> &'a Value {
    let all = resources["components"].as_array().expect("components");
    let found: Vec<&Value> = all.iter().filter(|c| c["id"] == id).collect();
    assert_eq!(found.len(), 1, "component {id} in {all:?}");
    found[0]
}

fn component_ids(resources: &Value) -> Vec<String> {
    resources["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}

/// The `k8s_launcher` component's args, after checking its path.
#[track_caller]
fn launcher_args(out: &Path, path: &str) -> Value {
    let res = resources(out);
    let launcher = component(&res, "k8s_launcher");
    assert_eq!(keys(launcher), ["id", "path", "args"]);
    assert_eq!(launcher["path"], path);
    launcher["args"].clone()
}

/// The default launcher args for `namespace` and mount path `mount`, in order.
fn base_args(namespace: &str, mount: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("config_file_path", Value::Null),
        (
            "study_data_pvc_file_path",
            json!(format!("{mount}/local/study_data.yaml")),
        ),
        ("namespace", json!(namespace)),
        ("default_python_path", json!(PYTHON3)),
        ("workspace_mount_path", json!(mount)),
    ]
}

fn helm_command_of(data: &Value) -> &str {
    data["helm_command"].as_str().expect("helm_command")
}

fn release_of(data: &Value) -> String {
    helm_command_of(data)
        .split(' ')
        .nth(3)
        .expect("release name")
        .to_string()
}

/// Whether helm and kubernetes-validate are installed. Called once per test that renders
/// charts, so a missing tool is reported (skipped outside CI) once, and the checks that
/// need no tool still run for every case.
fn chart_tools_present() -> bool {
    let helm = tools::require("helm").is_some();
    let validator = tools::require("kubernetes-validate").is_some();
    helm && validator
}

/// [`render_chart`] when [`chart_tools_present`] said the tools are there.
fn rendered(chart: &Path, release: &str, namespace: &str) -> Vec<Value> {
    render_chart(chart, release, namespace).expect("helm and kubernetes-validate were found")
}

/// `helm template` with `--set` values (None when helm is missing outside CI).
fn helm_template(chart: &Path, release: &str, namespace: &str, sets: &[&str]) -> Option<Vec<Value>> {
    let helm = tools::require("helm")?;
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("template"),
        OsStr::new(release),
        chart.as_os_str(),
        OsStr::new("--namespace"),
        OsStr::new(namespace),
    ];
    for set in sets {
        args.push(OsStr::new("--set"));
        args.push(OsStr::new(set));
    }
    let text = tools::run_ok(&helm, &args);
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(doc).expect("rendered YAML parses");
        if !value.is_null() {
            objects.push(value);
        }
    }
    Some(objects)
}

fn kinds_and_names(objects: &[Value]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().expect("kind").to_string(),
                o["metadata"]["name"].as_str().expect("name").to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

fn expected_kinds(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = pairs.iter().map(|(k, n)| (k.to_string(), n.to_string())).collect();
    all.sort();
    all
}

/// Checks what every chart renders for the object name `name`: Deployment basics, labels
/// and selectors, the ServiceAccount, the Role and the RoleBinding. Returns the container.
#[track_caller]
fn assert_workload(objects: &[Value], name: &str, release: &str, namespace: &str) -> Value {
    let labels = json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/managed-by": "Helm",
    });
    let selector = json!({"app.kubernetes.io/name": name});

    let deployment = object(objects, "Deployment", name);
    assert_eq!(deployment["apiVersion"], "apps/v1");
    assert_eq!(deployment["metadata"]["labels"], labels);
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], selector);
    let pod = &deployment["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"], labels);
    for (k, v) in selector.as_object().expect("selector") {
        assert_eq!(&pod["metadata"]["labels"][k], v, "pod labels match the selector");
    }
    assert_eq!(pod["spec"]["serviceAccountName"], name);
    let containers = pod["spec"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["name"], name);

    let account = object(objects, "ServiceAccount", name);
    assert_eq!(account["apiVersion"], "v1");
    assert_eq!(account["metadata"]["labels"], labels);
    assert_eq!(account["automountServiceAccountToken"], true);

    let role_name = format!("{name}-launcher");
    let role = object(objects, "Role", &role_name);
    assert_eq!(role["apiVersion"], "rbac.authorization.k8s.io/v1");
    assert_eq!(role["metadata"]["labels"], labels);
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get", "update"]},
        ])
    );
    let binding = object(objects, "RoleBinding", &role_name);
    assert_eq!(binding["apiVersion"], "rbac.authorization.k8s.io/v1");
    assert_eq!(binding["metadata"]["labels"], labels);
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": name, "namespace": namespace}])
    );
    containers[0].clone()
}

fn pod_spec<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    &object(objects, "Deployment", name)["spec"]["template"]["spec"]
}

fn container_ports(container: &Value) -> Vec<(i64, String)> {
    container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            assert!(p.get("hostPort").is_none(), "no hostPort by default: {p}");
            (
                p["containerPort"].as_i64().expect("containerPort"),
                p["protocol"].as_str().expect("protocol").to_string(),
            )
        })
        .collect()
}

fn server_args(org: &str, mount: &str) -> Value {
    json!([
        "-u",
        "-m",
        "nvflare.private.fed.app.server.server_train",
        "-m",
        mount,
        "-s",
        "fed_server.json",
        "--set",
        "secure_train=true",
        "config_folder=config",
        format!("org={org}")
    ])
}

fn client_args(org: &str, mount: &str) -> Value {
    json!([
        "-u",
        "-m",
        "nvflare.private.fed.app.client.client_train",
        "-m",
        mount,
        "-s",
        "fed_client.json",
        "--set",
        "secure_train=true",
        "config_folder=config",
        format!("org={org}")
    ])
}

fn default_resources() -> Value {
    json!({"requests": {"cpu": "2", "memory": "8Gi"}})
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// spec 8 case 16: a client with every key set

const FULL_CLIENT_CONFIG: &str = r#"runtime: k8s
namespace: fl-prod
parent:
  docker_image: registry.example.com/nvflare/nvflare:2.8.1
  parent_port: 9102
  workspace_pvc: site-pvc
  workspace_mount_path: /workspace
  python_path: /opt/conda/bin/python
  resources:
    requests: {cpu: "4", memory: 16Gi}
    limits: {nvidia.com/gpu: 1}
  pod_security_context: {runAsUser: 1000, fsGroup: 2000}
  image_pull_secrets: [gitlab-regcred, mirror.registry.example.com]
job_launcher:
  config_file_path: /etc/kube/config
  pending_timeout: 7
  default_python_path: /usr/bin/python3
  job_pod_security_context: {runAsNonRoot: true}
  image_pull_secrets: [job-regcred]
"#;

#[test]
fn client_with_full_config_writes_launcher_comm_config_and_chart() {
    let env = env();
    let kit = env
        .project
        .client("site-1")
        .comm_config(json!({
            "allow_adhoc_conns": false,
            "backbone_conn_gen": 2,
            "internal": {"scheme": "grpc", "resources": {"host": "localhost", "port": 8102, "connection_security": "mtls"}}
        }))
        .build(&env.root);
    let before = Snapshot::take(&kit.dir, &[]);
    let (run, out) = prepare(&kit, "full", FULL_CLIENT_CONFIG, "txt");
    run.assert_ok();
    assert_eq!(Snapshot::take(&kit.dir, &[]), before, "input kit unchanged");
    assert!(run.stdout.contains("helm_command: helm upgrade --install site-1 "));
    assert!(run.stdout.contains("namespace: fl-prod\n"), "{}", run.stdout);

    // resources.json.default: launcher args in order, passthrough manager, no consumer.
    let res = resources(&out);
    assert_eq!(
        component_ids(&res),
        ["site_log_streamer", "resource_manager", "k8s_launcher"]
    );
    assert_entries(
        component(&res, "resource_manager"),
        &[
            ("id", json!("resource_manager")),
            ("path", json!(PASSTHROUGH)),
            ("args", json!({})),
        ],
    );
    assert_entries(
        &launcher_args(&out, K8S_CLIENT_LAUNCHER),
        &[
            ("config_file_path", json!("/etc/kube/config")),
            ("study_data_pvc_file_path", json!("/workspace/local/study_data.yaml")),
            ("namespace", json!("fl-prod")),
            ("default_python_path", json!("/usr/bin/python3")),
            ("workspace_mount_path", json!("/workspace")),
            ("pending_timeout", json!(7)),
            ("security_context", json!({"runAsNonRoot": true})),
            ("image_pull_secrets", json!(["job-regcred"])),
        ],
    );
    assert!(!out.join("local/resources.json").exists());

    // comm_config: existing keys keep their positions.
    let comm = comm(&out);
    assert_entries(
        &comm["internal"]["resources"],
        &[
            ("host", json!("site-1")),
            ("port", json!(9102)),
            ("connection_security", json!("clear")),
        ],
    );
    assert_eq!(comm["internal"]["scheme"], "tcp");

    // Start scripts gone, study data template written.
    for script in START_SCRIPTS {
        assert!(!out.join("startup").join(script).exists(), "{script}");
    }
    assert_eq!(
        std::fs::read_to_string(out.join("local/study_data.yaml")).expect("study_data.yaml"),
        STUDY_DATA
    );

    // values.yaml
    let v = values(&out);
    assert_entries(
        &v,
        &[
            ("name", json!("site-1")),
            ("siteName", json!("site-1")),
            ("serviceName", json!("site-1")),
            (
                "image",
                json!({"repository": "registry.example.com/nvflare/nvflare", "tag": "2.8.1", "pullPolicy": "Always"}),
            ),
            (
                "imagePullSecrets",
                json!([{"name": "gitlab-regcred"}, {"name": "mirror.registry.example.com"}]),
            ),
            (
                "serviceAccount",
                json!({"create": true, "annotations": {}, "automountServiceAccountToken": true}),
            ),
            ("podAnnotations", json!({})),
            ("rbac", json!({"create": true})),
            (
                "persistence",
                json!({"workspace": {"claimName": "site-pvc", "volumeName": "workspace", "mountPath": "/workspace"}}),
            ),
            ("port", json!(9102)),
            ("service", json!({"annotations": {}})),
            ("securityContext", json!({"runAsUser": 1000, "fsGroup": 2000})),
            (
                "resources",
                json!({"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"nvidia.com/gpu": 1}}),
            ),
            ("command", json!(["/opt/conda/bin/python"])),
            ("args", client_args("nvidia", "/workspace")),
        ],
    );
    assert_eq!(keys(&v["image"]), ["repository", "tag", "pullPolicy"]);
    assert_eq!(
        file_names(&out.join("helm_chart/templates")),
        sorted(&[
            "_helpers.tpl",
            "client-deployment.yaml",
            "service.yaml",
            "serviceaccount.yaml",
            "role.yaml"
        ])
    );

    // The rendered chart.
    let Some(objects) = render_chart(&out.join("helm_chart"), "site-1", "fl-prod") else {
        return;
    };
    assert_eq!(
        kinds_and_names(&objects),
        expected_kinds(&[
            ("Deployment", "site-1"),
            ("Service", "site-1"),
            ("ServiceAccount", "site-1"),
            ("Role", "site-1-launcher"),
            ("RoleBinding", "site-1-launcher"),
        ])
    );
    let container = assert_workload(&objects, "site-1", "site-1", "fl-prod");
    let pod = pod_spec(&objects, "site-1");
    assert_eq!(
        pod["imagePullSecrets"],
        json!([{"name": "gitlab-regcred"}, {"name": "mirror.registry.example.com"}])
    );
    assert_eq!(pod["securityContext"], json!({"runAsUser": 1000, "fsGroup": 2000}));
    assert_eq!(
        pod["volumes"],
        json!([{"name": "workspace", "persistentVolumeClaim": {"claimName": "site-pvc"}}])
    );
    assert_eq!(container["image"], "registry.example.com/nvflare/nvflare:2.8.1");
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"nvidia.com/gpu": 1}})
    );
    assert_eq!(
        container["volumeMounts"],
        json!([{"name": "workspace", "mountPath": "/workspace"}])
    );
    assert_eq!(container["command"], json!(["/opt/conda/bin/python"]));
    let mut args = client_args("nvidia", "/workspace");
    args.as_array_mut().expect("args").push(json!("uid=site-1"));
    assert_eq!(container["args"], args);
    assert_eq!(container_ports(&container), [(9102, "TCP".to_string())]);
    let service = object(&objects, "Service", "site-1");
    assert_eq!(service["spec"]["selector"], json!({"app.kubernetes.io/name": "site-1"}));
    assert_eq!(
        service["spec"]["ports"],
        json!([{"port": 9102, "targetPort": 9102, "protocol": "TCP"}])
    );
}

// ---------------------------------------------------------------------------------------
// launcher args (spec 4.2, cases 11, 17, 18, 20)

#[test]
fn launcher_args_keys_order_and_optional_entries() {
    let env = env();
    let kit = env.project.client("site-1").build(&env.root);
    let head = "runtime: k8s\nparent:\n  docker_image: img\n";
    let with = |extra: &[(&'static str, Value)]| {
        let mut all = base_args("default", MOUNT);
        all.extend(extra.iter().cloned());
        all
    };
    let cases: Vec<(&str, Vec<(&str, Value)>)> = vec![
        ("", base_args("default", MOUNT)),
        ("job_launcher: {}\n", base_args("default", MOUNT)),
        ("job_launcher:\n  pending_timeout: 0\n", with(&[("pending_timeout", json!(0))])),
        ("job_launcher:\n  pending_timeout: null\n", with(&[("pending_timeout", Value::Null)])),
        ("job_launcher:\n  pending_timeout: ~\n", with(&[("pending_timeout", Value::Null)])),
        ("job_launcher:\n  pending_timeout: 600\n", with(&[("pending_timeout", json!(600))])),
        ("job_launcher:\n  job_pod_security_context: {}\n", base_args("default", MOUNT)),
        ("job_launcher:\n  job_pod_security_context: null\n", base_args("default", MOUNT)),
        (
            "job_launcher:\n  job_pod_security_context: {runAsUser: 1000}\n",
            with(&[("security_context", json!({"runAsUser": 1000}))]),
        ),
        ("job_launcher:\n  image_pull_secrets: null\n", base_args("default", MOUNT)),
        ("job_launcher:\n  image_pull_secrets: []\n", with(&[("image_pull_secrets", json!([]))])),
        (
            "job_launcher:\n  image_pull_secrets: [a, b.c]\n",
            with(&[("image_pull_secrets", json!(["a", "b.c"]))]),
        ),
        ("job_launcher:\n  config_file_path: /k/config\n", {
            let mut a = base_args("default", MOUNT);
            a[0].1 = json!("/k/config");
            a
        }),
        // The tool's order, whatever the config's order.
        (
            "job_launcher:\n  image_pull_secrets: [s]\n  job_pod_security_context: {fsGroup: 1}\n  pending_timeout: 30\n  \
             default_python_path: /py\n  config_file_path: /cfg\nnamespace: ns1\n",
            vec![
                ("config_file_path", json!("/cfg")),
                (
                    "study_data_pvc_file_path",
                    json!(format!("{MOUNT}/local/study_data.yaml")),
                ),
                ("namespace", json!("ns1")),
                ("default_python_path", json!("/py")),
                ("workspace_mount_path", json!(MOUNT)),
                ("pending_timeout", json!(30)),
                ("security_context", json!({"fsGroup": 1})),
                ("image_pull_secrets", json!(["s"])),
            ],
        ),
    ];
    for (i, (extra, expected)) in cases.iter().enumerate() {
        let (out, _) = prepared(&kit, &format!("c{i}"), &format!("{head}{extra}"));
        let args = launcher_args(&out, K8S_CLIENT_LAUNCHER);
        let got: Vec<(String, Value)> = args
            .as_object()
            .expect("args")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let want: Vec<(String, Value)> = expected.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        assert_eq!(got, want, "config extra:\n{extra}");
    }
}

#[test]
fn server_launcher_uses_server_class_and_defaults() {
    let env = env();
    let kit = env.project.server("server1").build(&env.root);
    let (out, _) = prepared(&kit, "k8s", BASIC);
    assert_entries(&launcher_args(&out, K8S_SERVER_LAUNCHER), &base_args("default", MOUNT));
    let res = resources(&out);
    assert_eq!(
        component_ids(&res),
        [
            "job_scheduler",
            "job_manager",
            "job_store",
            "log_receiver",
            "resource_manager",
            "k8s_launcher"
        ]
    );
}

// cases 9, 10, 11
#[test]
fn chart_command_uses_parent_python_path_only() {
    let env = env();
    let kit = env.project.server("server1").build(&env.root);

    let (out, _) = prepared(&kit, "defaults", BASIC);
    assert_eq!(values(&out)["command"], json!([PYTHON3]));
    assert_eq!(launcher_args(&out, K8S_SERVER_LAUNCHER)["default_python_path"], PYTHON3);

    let (out, _) = prepared(&kit, "parent", &format!("{BASIC}  python_path: /opt/venv/bin/python\n"));
    assert_eq!(values(&out)["command"], json!(["/opt/venv/bin/python"]));
    assert_eq!(launcher_args(&out, K8S_SERVER_LAUNCHER)["default_python_path"], PYTHON3);

    let (out, _) = prepared(
        &kit,
        "job",
        &format!("{BASIC}job_launcher:\n  default_python_path: /opt/job/bin/python\n"),
    );
    assert_eq!(values(&out)["command"], json!([PYTHON3]));
    let text = std::fs::read_to_string(out.join("helm_chart/values.yaml")).expect("values");
    assert!(!text.contains("/opt/job/bin/python"), "{text}");
    assert_eq!(
        launcher_args(&out, K8S_SERVER_LAUNCHER)["default_python_path"],
        "/opt/job/bin/python"
    );
}

// deviation 1: explicit nulls mean the default; `job_launcher: null` is an empty section.
#[test]
fn explicit_nulls_mean_defaults() {
    let env = env();
    let kit = env.project.server("server1").build(&env.root);
    let (base, _) = prepared(&kit, "base", BASIC);
    let nulls = [
        "parent_port: null",
        "workspace_pvc: null",
        "workspace_mount_path: null",
        "python_path: null",
        "resources: null",
        "resources: {}",
        "pod_security_context: null",
        "image_pull_secrets: null",
    ];
    let job_nulls = [
        "job_launcher: null",
        "job_launcher:",
        "job_launcher:\n  default_python_path: null",
        "job_launcher:\n  config_file_path: null",
        "job_launcher:\n  job_pod_security_context: null\n  image_pull_secrets: null",
    ];
    let mut configs: Vec<String> = nulls.iter().map(|n| format!("{BASIC}  {n}\n")).collect();
    configs.extend(job_nulls.iter().map(|n| format!("{BASIC}{n}\n")));
    configs.push(format!(
        "{BASIC}{}\njob_launcher:\n  default_python_path: ~\n",
        nulls
            .iter()
            .filter(|n| !n.contains("{}"))
            .map(|n| format!("  {n}"))
            .collect::<Vec<_>>()
            .join("\n")
    ));
    for (i, config) in configs.iter().enumerate() {
        let (out, _) = prepared(&kit, &format!("n{i}"), config);
        assert_eq!(values(&out), values(&base), "values.yaml for\n{config}");
        assert_eq!(resources(&out), resources(&base), "resources for\n{config}");
        assert_eq!(comm(&out), comm(&base), "comm_config for\n{config}");
    }
    // And the defaults themselves.
    let v = values(&base);
    assert_eq!(v["parentPort"], 8102);
    assert_eq!(v["persistence"]["workspace"]["claimName"], "nvflws");
    assert_eq!(v["persistence"]["workspace"]["mountPath"], MOUNT);
    assert_eq!(v["command"], json!([PYTHON3]));
    assert_eq!(v["resources"], default_resources());
    assert_eq!(v["securityContext"], json!({}));
    assert_eq!(v["imagePullSecrets"], json!([]));
    let res = resources(&base);
    assert_eq!(
        component(&res, "job_manager")["args"]["uri_root"],
        format!("{MOUNT}/jobs-storage")
    );
    assert_eq!(comm(&base)["internal"]["resources"]["port"], 8102);
}

#[test]
fn parent_port_boundaries_are_accepted() {
    let env = env();
    let kit = env.project.client("site-1").build(&env.root);
    for port in [1, 65535] {
        let (out, _) = prepared(&kit, &format!("p{port}"), &format!("{BASIC}  parent_port: {port}\n"));
        assert_eq!(values(&out)["port"], port);
        assert_eq!(comm(&out)["internal"]["resources"]["port"], port);
    }
}

// ---------------------------------------------------------------------------------------
// comm_config (spec 4.4, cases 6, 29, 30)

#[test]
fn comm_config_host_port_and_key_order() {
    let env = env();
    struct Case {
        server: bool,
        comm: Option<Value>,
        config: String,
        expected: Value,
        top: Vec<&'static str>,
        internal: Vec<&'static str>,
        resources: Vec<&'static str>,
    }
    let cases = vec![
        // case 30: no comm_config.json -> the default object.
        Case {
            server: false,
            comm: None,
            config: BASIC.to_string(),
            expected: json!({"allow_adhoc_conns": false, "backbone_conn_gen": 2,
                "internal": {"scheme": "tcp", "resources": {"connection_security": "clear", "host": "site-1", "port": 8102}}}),
            top: vec!["allow_adhoc_conns", "backbone_conn_gen", "internal"],
            internal: vec!["scheme", "resources"],
            resources: vec!["connection_security", "host", "port"],
        },
        Case {
            server: true,
            comm: None,
            config: BASIC.to_string(),
            expected: json!({"allow_adhoc_conns": false, "backbone_conn_gen": 2,
                "internal": {"scheme": "tcp", "resources": {"connection_security": "clear", "host": "nvflare-server", "port": 8102}}}),
            top: vec!["allow_adhoc_conns", "backbone_conn_gen", "internal"],
            internal: vec!["scheme", "resources"],
            resources: vec!["connection_security", "host", "port"],
        },
        // A provisioned comm_config: values replaced in place, security forced to clear.
        Case {
            server: true,
            comm: Some(json!({"allow_adhoc_conns": false, "backbone_conn_gen": 2,
                "internal": {"scheme": "grpc", "resources": {"host": "server1", "port": 8102, "connection_security": "mtls"}}})),
            config: format!("{BASIC}  parent_port: 9000\nserver_service_name: custom-nvflare-server\n"),
            expected: json!({"allow_adhoc_conns": false, "backbone_conn_gen": 2,
                "internal": {"scheme": "tcp", "resources": {"host": "custom-nvflare-server", "port": 9000, "connection_security": "clear"}}}),
            top: vec!["allow_adhoc_conns", "backbone_conn_gen", "internal"],
            internal: vec!["scheme", "resources"],
            resources: vec!["host", "port", "connection_security"],
        },
        // Unusual order and extra keys are kept; new keys are appended.
        Case {
            server: false,
            comm: Some(
                json!({"internal": {"resources": {"connection_security": "tls", "extra": 1}, "scheme": "grpc"},
                "custom": "x", "allow_adhoc_conns": true}),
            ),
            config: format!("{BASIC}server_service_name: ignored-for-clients\n"),
            expected: json!({"internal": {"resources": {"connection_security": "clear", "extra": 1, "host": "site-1", "port": 8102}, "scheme": "tcp"},
                "custom": "x", "allow_adhoc_conns": true}),
            top: vec!["internal", "custom", "allow_adhoc_conns"],
            internal: vec!["resources", "scheme"],
            resources: vec!["connection_security", "extra", "host", "port"],
        },
        // No internal section at all.
        Case {
            server: false,
            comm: Some(json!({"allow_adhoc_conns": false, "backbone_conn_gen": 1})),
            config: BASIC.to_string(),
            expected: json!({"allow_adhoc_conns": false, "backbone_conn_gen": 1,
                "internal": {"resources": {"host": "site-1", "port": 8102, "connection_security": "clear"}, "scheme": "tcp"}}),
            top: vec!["allow_adhoc_conns", "backbone_conn_gen", "internal"],
            internal: vec!["resources", "scheme"],
            resources: vec!["host", "port", "connection_security"],
        },
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let dir = env.root.join(format!("case{i}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut builder = if case.server {
            env.project.server("server1")
        } else {
            env.project.client("site-1")
        };
        if let Some(doc) = &case.comm {
            builder = builder.comm_config(doc.clone());
        }
        let kit = builder.build(&dir);
        let (out, _) = prepared(&kit, "k8s", &case.config);
        let got = comm(&out);
        assert_eq!(got, case.expected, "case {i}");
        assert_eq!(keys(&got), case.top, "case {i}");
        assert_eq!(keys(&got["internal"]), case.internal, "case {i}");
        assert_eq!(keys(&got["internal"]["resources"]), case.resources, "case {i}");
        let text = std::fs::read_to_string(out.join("local/comm_config.json")).expect("comm");
        assert!(
            text.ends_with("}\n") && text.contains("\n    \""),
            "4-space JSON: {text}"
        );
    }
}

// case 6
#[test]
fn server_uses_configured_service_name() {
    let env = env();
    let kit = env.project.server("server1").build(&env.root);
    let (out, data) = prepared(
        &kit,
        "svc",
        &format!("{BASIC}server_service_name: custom-nvflare-server\nnamespace: fl\n"),
    );
    let v = values(&out);
    assert_eq!(v["serviceName"], "custom-nvflare-server");
    assert_eq!(v["name"], "server1");
    assert_eq!(comm(&out)["internal"]["resources"]["host"], "custom-nvflare-server");
    let Some(objects) = render_chart(&out.join("helm_chart"), &release_of(&data), "fl") else {
        return;
    };
    assert_eq!(
        kinds_and_names(&objects),
        expected_kinds(&[
            ("Deployment", "server1"),
            ("Service", "custom-nvflare-server"),
            ("ServiceAccount", "server1"),
            ("Role", "server1-launcher"),
            ("RoleBinding", "server1-launcher"),
        ])
    );
    let Some(objects) = helm_template(&out.join("helm_chart"), "server1", "fl", &["tcpConfigMapEnabled=true"]) else {
        return;
    };
    let config_map = object(&objects, "ConfigMap", "nginx-ingress-microk8s-conf");
    assert_eq!(
        config_map["data"],
        json!({"8002": "fl/custom-nvflare-server:8002", "8003": "fl/custom-nvflare-server:8003"})
    );
}

// case 29 and deviation 3 for clients
#[test]
fn client_sanitizes_service_name_without_changing_site_identity() {
    let env = env();
    let kit = env.project.client("Site_1").build(&env.root);
    let (out, data) = prepared(&kit, "k8s", BASIC);
    assert_eq!(data["name"], "Site_1");
    let v = values(&out);
    assert_eq!(v["name"], "Site_1");
    assert_eq!(v["siteName"], "Site_1");
    assert_eq!(v["serviceName"], "site-1-ab7f9d10");
    assert_eq!(comm(&out)["internal"]["resources"]["host"], "site-1-ab7f9d10");
    assert_eq!(release_of(&data), "site-1-ab7f9d10");
    assert_eq!(v["args"], client_args("nvidia", MOUNT));
}

// ---------------------------------------------------------------------------------------
// storage relocation and start scripts (spec 4.6, 4.7)

#[test]
fn server_storage_is_relocated_under_custom_workspace_mount_path() {
    let env = env();
    let kit = env.project.server("server1").build(&env.root);
    let (run, out) = prepare(
        &kit,
        "ws",
        &format!("{BASIC}  workspace_mount_path: /mnt/fl-ws\n"),
        "txt",
    );
    run.assert_ok();
    assert!(!run.stdout.contains("Warning:"), "{}", run.stdout);
    let res = resources(&out);
    assert_eq!(
        keys(&res),
        [
            "format_version",
            "class_allow_list",
            "servers",
            "snapshot_persistor",
            "components"
        ]
    );
    assert_eq!(
        res["snapshot_persistor"]["args"]["storage"]["args"],
        json!({"root_dir": "/mnt/fl-ws/snapshot-storage", "uri_root": "/"})
    );
    assert_entries(
        &component(&res, "job_manager")["args"],
        &[
            ("uri_root", json!("/mnt/fl-ws/jobs-storage")),
            ("job_store_id", json!("job_store")),
        ],
    );
    assert_entries(
        &launcher_args(&out, K8S_SERVER_LAUNCHER),
        &base_args("default", "/mnt/fl-ws"),
    );
    let v = values(&out);
    assert_eq!(v["persistence"]["workspace"]["mountPath"], "/mnt/fl-ws");
    assert_eq!(v["args"], server_args("nvidia", "/mnt/fl-ws"));
    assert!(!out.join("local/resources.json").exists());
    // The input kit keeps its storage paths.
    let input = kit.read_json("local/resources.json.default");
    assert_eq!(
        component(&input, "job_manager")["args"]["uri_root"],
        "/tmp/nvflare/jobs-storage"
    );
}

#[test]
fn all_start_scripts_are_removed_and_old_chart_replaced() {
    let env = env();
    let kit = env.project.client("site-1").build(&env.root);
    write(&kit.path("startup/start_docker.sh"), "#!/usr/bin/env bash\n", 0o755);
    write(&kit.path("startup/azure_start.sh"), "#!/usr/bin/env bash\n", 0o755);
    std::fs::create_dir_all(kit.path("helm_chart/templates")).expect("mkdir");
    write(&kit.path("helm_chart/stale.txt"), "old\n", 0o644);
    write(&kit.path("helm_chart/templates/old.yaml"), "old: 1\n", 0o644);
    write(&kit.path("local/study_data.yaml"), "site: {}\n", 0o644);
    let before = Snapshot::take(&kit.dir, &[]);
    let (out, _) = prepared(&kit, "k8s", BASIC);
    assert_eq!(Snapshot::take(&kit.dir, &[]), before, "input kit unchanged");
    for script in START_SCRIPTS {
        assert!(!out.join("startup").join(script).exists(), "{script} removed");
        assert!(kit.path("startup").join(script).exists(), "{script} kept in the input");
    }
    assert!(out.join("startup/azure_start.sh").is_file());
    assert_eq!(
        std::fs::read_to_string(out.join("local/study_data.yaml")).expect("study data"),
        "site: {}\n",
        "an existing study_data.yaml is kept"
    );
    assert_eq!(
        file_names(&out.join("helm_chart")),
        sorted(&["Chart.yaml", "values.yaml", "templates"])
    );
    assert!(!out.join("helm_chart/templates/old.yaml").exists());
    for f in ["rootCA.pem", "client.crt", "client.key", "fed_client.json"] {
        assert_eq!(
            std::fs::read(out.join("startup").join(f)).expect("copied"),
            std::fs::read(kit.path("startup").join(f)).expect("input"),
            "{f}"
        );
    }
}

#[test]
fn default_config_and_output_paths() {
    let env = env();
    let kit = env.project.client("site-1").build(&env.root);
    kit.write_config(BASIC);
    let before = Snapshot::take(&kit.dir, &["prepared"]);
    let run = flare_deploy([
        OsStr::new("prepare"),
        kit.dir.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ]);
    run.assert_ok();
    let out = kit.path("prepared/k8s");
    assert_eq!(run.json()["data"]["output"], out.display().to_string());
    assert!(out.join("helm_chart/values.yaml").is_file());
    write(&out.join("stale.txt"), "x", 0o644);
    let run = flare_deploy([OsStr::new("prepare"), OsStr::new("--kit"), kit.dir.as_os_str()]);
    run.assert_ok();
    assert!(!out.join("stale.txt").exists(), "rerun replaces the output");
    assert!(!out.join("prepared").exists(), "no nesting");
    assert_eq!(file_names(&kit.path("prepared")), ["k8s"]);
    // The kit directory itself gains `prepared/`; everything else is untouched.
    let mut after = Snapshot::take(&kit.dir, &["prepared"]);
    let mut before = before;
    after.0.remove(Path::new(""));
    before.0.remove(Path::new(""));
    assert_eq!(after, before);
}

// ---------------------------------------------------------------------------------------
// values.yaml and Chart.yaml (spec 4.9, deviations 3, 5, 7)

#[test]
fn server_values_and_chart_yaml() {
    let env = env();
    let kit = env.project.server("server1").build(&env.root);
    let (out, _) = prepared(&kit, "k8s", BASIC);
    assert_entries(
        &values(&out),
        &[
            ("name", json!("server1")),
            ("appName", json!("server1")),
            ("serviceName", json!("nvflare-server")),
            (
                "image",
                json!({"repository": "nvflare/nvflare", "tag": "2.8.1", "pullPolicy": "IfNotPresent"}),
            ),
            ("imagePullSecrets", json!([])),
            (
                "serviceAccount",
                json!({"create": true, "annotations": {}, "automountServiceAccountToken": true}),
            ),
            ("podAnnotations", json!({})),
            ("rbac", json!({"create": true})),
            (
                "persistence",
                json!({"workspace": {"claimName": "nvflws", "volumeName": "workspace", "mountPath": MOUNT}}),
            ),
            ("fedLearnPort", json!(8002)),
            ("adminPort", json!(8003)),
            ("parentPort", json!(8102)),
            ("resources", default_resources()),
            ("securityContext", json!({})),
            ("hostPortEnabled", json!(false)),
            ("tcpConfigMapEnabled", json!(false)),
            (
                "service",
                json!({"type": "ClusterIP", "loadBalancerIP": null, "annotations": {}}),
            ),
            ("command", json!([PYTHON3])),
            ("args", server_args("nvidia", MOUNT)),
        ],
    );
    let v = values(&out);
    assert_eq!(keys(&v["image"]), ["repository", "tag", "pullPolicy"]);
    assert_eq!(
        keys(&v["serviceAccount"]),
        ["create", "annotations", "automountServiceAccountToken"]
    );
    assert_eq!(
        keys(&v["persistence"]["workspace"]),
        ["claimName", "volumeName", "mountPath"]
    );
    assert_eq!(keys(&v["service"]), ["type", "loadBalancerIP", "annotations"]);
    assert_entries(
        &chart_yaml(&out),
        &[
            ("apiVersion", json!("v2")),
            ("name", json!("nvflare-server")),
            ("description", json!("NVFlare federated learning server for server1")),
            ("type", json!("application")),
            ("version", json!("0.1.0")),
            ("appVersion", json!("2.8.1")),
            ("keywords", json!(["nvflare", "federated-learning"])),
            ("maintainers", json!([])),
        ],
    );
    assert_eq!(
        file_names(&out.join("helm_chart/templates")),
        sorted(&[
            "_helpers.tpl",
            "server-deployment.yaml",
            "server-service.yaml",
            "server-tcp-services.yaml",
            "serviceaccount.yaml",
            "role.yaml"
        ])
    );
}

#[test]
fn client_values_and_chart_yaml() {
    let env = env();
    let kit = env.project.client("site-1").org(Some("acme")).build(&env.root);
    let (out, _) = prepared(&kit, "k8s", BASIC);
    assert_entries(
        &values(&out),
        &[
            ("name", json!("site-1")),
            ("siteName", json!("site-1")),
            ("serviceName", json!("site-1")),
            (
                "image",
                json!({"repository": "nvflare/nvflare", "tag": "2.8.1", "pullPolicy": "Always"}),
            ),
            ("imagePullSecrets", json!([])),
            (
                "serviceAccount",
                json!({"create": true, "annotations": {}, "automountServiceAccountToken": true}),
            ),
            ("podAnnotations", json!({})),
            ("rbac", json!({"create": true})),
            (
                "persistence",
                json!({"workspace": {"claimName": "nvflws", "volumeName": "workspace", "mountPath": MOUNT}}),
            ),
            ("port", json!(8102)),
            ("service", json!({"annotations": {}})),
            ("securityContext", json!({})),
            ("resources", default_resources()),
            ("command", json!([PYTHON3])),
            ("args", client_args("acme", MOUNT)),
        ],
    );
    assert_entries(
        &chart_yaml(&out),
        &[
            ("apiVersion", json!("v2")),
            ("name", json!("nvflare-client")),
            (
                "description",
                json!("NVFlare federated learning client deployment and service for site-1"),
            ),
            ("type", json!("application")),
            ("version", json!("0.1.0")),
            ("appVersion", json!("2.8.1")),
            ("keywords", json!(["nvflare", "federated-learning"])),
            ("maintainers", json!([])),
        ],
    );
}

// case 5
#[test]
fn server_admin_port_only_when_distinct() {
    let env = env();
    let cases: Vec<(Option<Value>, u16, Value)> = vec![
        (Some(json!(8003)), 8002, json!(8003)),
        (Some(json!(8002)), 8002, Value::Null),
        (None, 9002, Value::Null),
        (Some(json!("8003")), 8002, Value::Null),
        (Some(json!(9003)), 9002, json!(9003)),
    ];
    for (i, (admin, fed, expected_admin)) in cases.into_iter().enumerate() {
        let dir = env.root.join(format!("case{i}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let kit = env
            .project
            .server("server1")
            .fed_port(fed)
            .admin_port(admin.clone())
            .build(&dir);
        let (out, _) = prepared(&kit, "k8s", BASIC);
        let v = values(&out);
        assert_eq!(v["fedLearnPort"], fed, "case {i}: {admin:?}");
        assert_eq!(v["adminPort"], expected_admin, "case {i}: {admin:?}");
        assert_eq!(v["command"], json!([PYTHON3]));
    }
    // No port in the service target: fedLearnPort falls back to 8002.
    let dir = env.root.join("noport");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let kit = env.project.server("server1").build(&dir);
    let mut fed = kit.read_json("startup/fed_server.json");
    fed["servers"][0]["service"]["target"] = json!("server1");
    write_json(&kit.path("startup/fed_server.json"), &fed);
    let (out, _) = prepared(&kit, "k8s", BASIC);
    let v = values(&out);
    assert_eq!(v["fedLearnPort"], 8002);
    assert_eq!(v["adminPort"], 8003);
}

/// Deviation 5 and 7: image references split at the tag/digest; ambiguous tags stay
/// strings.
#[test]
fn image_references_split_into_repository_tag_and_digest() {
    struct Case {
        image: &'static str,
        repository: &'static str,
        tag: &'static str,
        digest: Option<&'static str>,
        app_version: &'static str,
        render: bool,
    }
    let cases = [
        Case {
            image: "nvflare/nvflare:2.8.1",
            repository: "nvflare/nvflare",
            tag: "2.8.1",
            digest: None,
            app_version: "2.8.1",
            render: true,
        },
        Case {
            image: "nvflare/nvflare",
            repository: "nvflare/nvflare",
            tag: "",
            digest: None,
            app_version: "latest",
            render: true,
        },
        Case {
            image: "localhost:5000/repo:1.0",
            repository: "localhost:5000/repo",
            tag: "1.0",
            digest: None,
            app_version: "1.0",
            render: true,
        },
        Case {
            image: "localhost:5000/repo",
            repository: "localhost:5000/repo",
            tag: "",
            digest: None,
            app_version: "latest",
            render: true,
        },
        Case {
            image: "repo@sha256:abc",
            repository: "repo",
            tag: "",
            digest: Some("sha256:abc"),
            app_version: "sha256:abc",
            render: true,
        },
        Case {
            image: "reg.io:5000/team/repo:2.0@sha256:abc",
            repository: "reg.io:5000/team/repo",
            tag: "2.0",
            digest: Some("sha256:abc"),
            app_version: "2.0",
            render: true,
        },
        Case {
            image: "img:2",
            repository: "img",
            tag: "2",
            digest: None,
            app_version: "2",
            render: false,
        },
        Case {
            image: "img:1e3",
            repository: "img",
            tag: "1e3",
            digest: None,
            app_version: "1e3",
            render: false,
        },
        Case {
            image: "img:true",
            repository: "img",
            tag: "true",
            digest: None,
            app_version: "true",
            render: false,
        },
        Case {
            image: "img:null",
            repository: "img",
            tag: "null",
            digest: None,
            app_version: "null",
            render: false,
        },
        Case {
            image: "img:0x1F",
            repository: "img",
            tag: "0x1F",
            digest: None,
            app_version: "0x1F",
            render: false,
        },
        Case {
            image: "img:007",
            repository: "img",
            tag: "007",
            digest: None,
            app_version: "007",
            render: false,
        },
    ];
    let env = env();
    let kit = env.project.client("site-1").build(&env.root);
    let render = chart_tools_present();
    for (i, case) in cases.iter().enumerate() {
        let config = format!("runtime: k8s\nparent:\n  docker_image: {}\n", json!(case.image));
        let (out, _) = prepared(&kit, &format!("img{i}"), &config);
        let v = values(&out);
        let image = &v["image"];
        assert_eq!(image["repository"], case.repository, "{}", case.image);
        assert_eq!(image["tag"], case.tag, "{}", case.image);
        assert_eq!(image["pullPolicy"], "Always");
        assert_eq!(&keys(image)[..3], ["repository", "tag", "pullPolicy"]);
        match case.digest {
            Some(d) => assert_eq!(image["digest"], d, "{}", case.image),
            None => assert!(image.get("digest").is_none(), "{}: {image}", case.image),
        }
        assert_eq!(chart_yaml(&out)["appVersion"], case.app_version, "{}", case.image);
        if case.render && render {
            let objects = rendered(&out.join("helm_chart"), "site-1", "default");
            let pod = pod_spec(&objects, "site-1");
            assert_eq!(pod["containers"][0]["image"], case.image);
        }
    }
}

/// Deviation 7: strings YAML could read as something else stay strings.
#[test]
fn values_yaml_keeps_ambiguous_strings_as_strings() {
    let env = env();
    let kit = env
        .project
        .client("kit-tilde")
        .fqsn(json!("~"))
        .org(Some("yes"))
        .build(&env.root);
    let config = r#"runtime: k8s
parent:
  docker_image: "img:1.10"
  workspace_pvc: "007"
  workspace_mount_path: "/mnt/a: b #c"
  python_path: "true"
  resources: {requests: {cpu: "2", memory: "8Gi"}, limits: {cpu: "0.5", memory: "1e3"}}
  pod_security_context: {seLinuxOptions: {level: "s0:c123,c456"}, runAsUser: 1000}
"#;
    let (out, data) = prepared(&kit, "k8s", config);
    assert_eq!(data["name"], "~");
    let v = values(&out);
    assert_eq!(v["name"], "~");
    assert_eq!(v["siteName"], "~");
    assert_eq!(v["serviceName"], "site-7ace431c");
    assert_eq!(v["image"]["tag"], "1.10");
    assert_eq!(v["persistence"]["workspace"]["claimName"], "007");
    assert_eq!(v["persistence"]["workspace"]["mountPath"], "/mnt/a: b #c");
    assert_eq!(v["command"], json!(["true"]));
    assert_eq!(
        v["resources"],
        json!({"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "0.5", "memory": "1e3"}})
    );
    assert_eq!(
        v["securityContext"],
        json!({"seLinuxOptions": {"level": "s0:c123,c456"}, "runAsUser": 1000})
    );
    assert_eq!(v["args"], client_args("yes", "/mnt/a: b #c"));
    assert_eq!(
        chart_yaml(&out)["description"],
        "NVFlare federated learning client deployment and service for ~"
    );
    assert_eq!(chart_yaml(&out)["appVersion"], "1.10");
    let Some(objects) = render_chart(&out.join("helm_chart"), &release_of(&data), "default") else {
        return;
    };
    let pod = pod_spec(&objects, "site-7ace431c");
    let container = &pod["containers"][0];
    assert_eq!(container["command"], json!(["true"]));
    assert_eq!(
        container["volumeMounts"],
        json!([{"name": "workspace", "mountPath": "/mnt/a: b #c"}])
    );
    assert_eq!(
        pod["volumes"],
        json!([{"name": "workspace", "persistentVolumeClaim": {"claimName": "007"}}])
    );
    assert_eq!(
        container["args"].as_array().expect("args").last(),
        Some(&json!("uid=~"))
    );
}

/// Deviation H6: a string Helm's YAML 1.1 reader would take as a boolean, number, null
/// or time is double-quoted in values.yaml, and `helm template` renders it as the same
/// string. The quoting is checked without helm too (our own YAML reader is YAML 1.2 and
/// would read the plain words as strings, so it cannot tell).
#[test]
fn yaml_1_1_words_stay_strings_through_helm() {
    let env = env();
    let kit = env.project.client("site-1").build(&env.root);
    let render = tools::require("helm").is_some();
    let words = [
        "yes",
        "Yes",
        "no",
        "on",
        "OFF",
        "y",
        "n",
        "true",
        "null",
        "~",
        "0777",
        "0x1F",
        "1_000",
        "1e3",
        "1:30",
        "2026-12-01",
        ".inf",
        "-.5",
    ];
    for (i, word) in words.into_iter().enumerate() {
        let config = format!("{BASIC}  workspace_pvc: {}\n", json!(word));
        let (out, data) = prepared(&kit, &format!("word{i}"), &config);
        let text = std::fs::read_to_string(out.join("helm_chart/values.yaml")).expect("values.yaml");
        let quoted = format!("claimName: {}", json!(word));
        assert!(
            text.lines().any(|l| l.trim_start() == quoted),
            "{word:?} is not double-quoted in values.yaml:\n{text}"
        );
        assert_eq!(values(&out)["persistence"]["workspace"]["claimName"], word);
        if !render {
            continue;
        }
        let objects =
            helm_template(&out.join("helm_chart"), &release_of(&data), "default", &[]).expect("helm was found");
        assert_eq!(
            pod_spec(&objects, "site-1")["volumes"][0]["persistentVolumeClaim"]["claimName"],
            json!(word),
            "helm's reading of {word:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// namespace (case 22, deviation 9) and image pull secrets (case 21)

#[test]
fn valid_namespaces_are_used_everywhere() {
    let env = env();
    let kit = env.project.client("site-1").build(&env.root);
    let long = "a".repeat(63);
    for (i, (yaml, ns)) in [
        ("nvflare", "nvflare"),
        ("1abc", "1abc"),
        ("2026-prod", "2026-prod"),
        ("yes", "yes"),
        ("\"123\"", "123"),
        (long.as_str(), long.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        let (out, data) = prepared(&kit, &format!("ns{i}"), &format!("{BASIC}namespace: {yaml}\n"));
        assert_eq!(data["namespace"], ns);
        assert!(
            helm_command_of(&data).ends_with(&format!(" --namespace {ns}")),
            "{data}"
        );
        assert_eq!(launcher_args(&out, K8S_CLIENT_LAUNCHER)["namespace"], ns);
    }
    let (_, data) = prepared(&kit, "nsdefault", BASIC);
    assert_eq!(data["namespace"], "default");
}

#[test]
fn parent_image_pull_secrets_are_written_to_the_chart() {
    let env = env();
    let config = format!("{BASIC}  image_pull_secrets:\n    - gitlab-regcred\n    - mirror.registry.example.com\n");
    let expected = json!([{"name": "gitlab-regcred"}, {"name": "mirror.registry.example.com"}]);
    let render = chart_tools_present();
    for (i, server) in [true, false].into_iter().enumerate() {
        let dir = env.root.join(format!("case{i}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let kit = if server {
            env.project.server("server1").build(&dir)
        } else {
            env.project.client("site-1").build(&dir)
        };
        let (out, data) = prepared(&kit, "k8s", &config);
        assert_eq!(values(&out)["imagePullSecrets"], expected);
        // Parent pull secrets are not job launcher pull secrets.
        assert!(launcher_args(
            &out,
            if server {
                K8S_SERVER_LAUNCHER
            } else {
                K8S_CLIENT_LAUNCHER
            }
        )
        .get("image_pull_secrets")
        .is_none());
        if !render {
            continue;
        }
        let objects = rendered(&out.join("helm_chart"), &release_of(&data), "default");
        let name = if server { "server1" } else { "site-1" };
        assert_eq!(pod_spec(&objects, name)["imagePullSecrets"], expected);
    }
}

// ---------------------------------------------------------------------------------------
// result envelope and helm_command (spec 6.1, 7, deviation 6)

fn result_lines(out: &Path, role: &str, name: &str, release: &str, namespace: &str, chart_arg: &str) -> String {
    let out = out.display();
    format!(
        "runtime: k8s\nrole: {role}\nname: {name}\nnamespace: {namespace}\noutput: {out}\nhelm_chart: {out}/helm_chart\n\
         helm_command: helm upgrade --install {release} {chart_arg} --namespace {namespace}\n\
         resources: {out}/local/resources.json.default\n"
    )
}

#[test]
fn result_envelope_txt_and_json() {
    let env = env();
    let server = env.project.server("server1").build(&env.root);
    let (run, out) = prepare(&server, "txt", BASIC, "txt");
    run.assert_ok();
    let chart = format!("{}/helm_chart", out.display());
    assert_eq!(
        run.stdout,
        result_lines(&out, "server", "server1", "server1", "default", &chart)
    );
    assert_eq!(run.stderr, "");

    let (run, out) = prepare(&server, "json", &format!("{BASIC}namespace: fl\n"), "json");
    run.assert_ok();
    let o = out.display();
    assert_eq!(
        run.stdout,
        format!(
            "{{\"schema_version\": \"1\", \"status\": \"ok\", \"exit_code\": 0, \"data\": {{\"runtime\": \"k8s\", \
             \"role\": \"server\", \"name\": \"server1\", \"namespace\": \"fl\", \"output\": \"{o}\", \
             \"helm_chart\": \"{o}/helm_chart\", \"helm_command\": \"helm upgrade --install server1 {o}/helm_chart \
             --namespace fl\", \"resources\": \"{o}/local/resources.json.default\"}}}}\n"
        )
    );
    let doc = run.json();
    assert_eq!(keys(&doc), ["schema_version", "status", "exit_code", "data"]);
    assert_eq!(
        keys(&doc["data"]),
        [
            "runtime",
            "role",
            "name",
            "namespace",
            "output",
            "helm_chart",
            "helm_command",
            "resources"
        ]
    );

    // A client kit warns: before the result on stdout in txt, on stderr in json.
    let client = env.project.client("site-1").build(&env.root);
    let (run, out) = prepare(&client, "ctxt", BASIC, "txt");
    run.assert_ok();
    let chart = format!("{}/helm_chart", out.display());
    assert_eq!(
        run.stdout,
        format!(
            "{RESOURCE_MANAGER_WARNING}\n{}",
            result_lines(&out, "client", "site-1", "site-1", "default", &chart)
        )
    );
    let (run, _) = prepare(&client, "cjson", BASIC, "json");
    run.assert_ok();
    assert_eq!(run.stderr, format!("{RESOURCE_MANAGER_WARNING}\n"));
    assert_eq!(run.stdout.lines().count(), 1);
    assert_eq!(run.json()["data"]["role"], "client");
}

#[test]
fn helm_command_quotes_the_chart_path_when_needed() {
    let env = env();
    let kit = env.project.client("Site_1").build(&env.root);
    let config = env.root.join("k8s.yaml");
    std::fs::write(&config, format!("{BASIC}namespace: fl\n")).expect("config");
    for (dir, quoted) in [
        ("plain/out", None),
        ("my kits/out", Some("'{root}/my kits/out/helm_chart'")),
        ("it's/out", Some("'{root}/it'\"'\"'s/out/helm_chart'")),
        ("a$b/out", Some("'{root}/a$b/out/helm_chart'")),
    ] {
        let out = env.root.join(dir);
        let run = flare_deploy([
            OsStr::new("prepare"),
            kit.dir.as_os_str(),
            OsStr::new("--output"),
            out.as_os_str(),
            OsStr::new("--config"),
            config.as_os_str(),
        ]);
        run.assert_ok();
        let root = env.root.display().to_string();
        let chart_arg = match quoted {
            Some(q) => q.replace("{root}", &root),
            None => format!("{}/helm_chart", out.display()),
        };
        assert!(
            run.stdout.ends_with(&result_lines(
                &out,
                "client",
                "Site_1",
                "site-1-ab7f9d10",
                "fl",
                &chart_arg
            )),
            "{dir}:\n{}",
            run.stdout
        );
        assert!(out.join("helm_chart/Chart.yaml").is_file());
    }
}

/// Names whose expected form is left to the reference's own stable-name function (the
/// NVFlare oracle): characters whose lower case is ASCII or longer than one character,
/// and lengths counted in characters, not bytes.
const ORACLE_ONLY_NAMES: [&str; 6] = [
    "\u{212A}elvin",
    "\u{130}stanbul",
    "Stra\u{df}e-\u{3a3}",
    "x--__--y",
    "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}a",
    "a-----------------------------------------------------_b",
];

/// A DNS-1035 label of at most `max` characters.
fn is_k8s_name(name: &str, max: usize) -> bool {
    name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Case 31 and the spec 7 vectors: release names (53) and client service names (63),
/// stated literally (the spec's vectors; the others as NVFlare 2.8.1's `_stable_k8s_name`
/// gives them, and for `site-1\n` the spec's rule on the sanitised name), and for more
/// names compared with the installed NVFlare's own function (2.8.1 and 2.9.0).
#[test]
fn release_and_service_names_follow_the_stable_name_rules() {
    let env = env();
    let a = |n: usize| "a".repeat(n);
    let mut vectors: Vec<(String, String, String)> = [
        ("site-1", "site-1", "site-1"),
        ("Site_1", "site-1-ab7f9d10", "site-1-ab7f9d10"),
        ("site_1", "site-1-74a65083", "site-1-74a65083"),
        ("Site-1", "site-1-c828b91c", "site-1-c828b91c"),
        ("SITE-1", "site-1-bbc1ede8", "site-1-bbc1ede8"),
        ("site-1.", "site-1-ce2afed9", "site-1-ce2afed9"),
        ("1-my-site", "site-1-my-site-ef3ea7a5", "site-1-my-site-ef3ea7a5"),
        ("9", "site-9-19581e27", "site-9-19581e27"),
        ("---", "site-cb3f91d5", "site-cb3f91d5"),
        ("é", "site-4a99557e", "site-4a99557e"),
        ("-abc-", "abc-4d40a3ac", "abc-4d40a3ac"),
        (
            "server.example.com",
            "server-example-com-e1335e88",
            "server-example-com-e1335e88",
        ),
        // Deviation H3: a trailing newline is sanitised (the reference keeps the name).
        ("site-1\n", "site-1-57419770", "site-1-57419770"),
    ]
    .iter()
    .map(|(r, s, l)| (r.to_string(), s.to_string(), l.to_string()))
    .collect();
    vectors.push((a(53), a(53), a(53)));
    vectors.push((a(54), a(54), format!("{}-a3f01b69", a(44))));
    vectors.push((a(63), a(63), format!("{}-7d3e74a0", a(44))));
    vectors.push((a(64), format!("{}-ffe054fe", a(54)), format!("{}-ffe054fe", a(44))));
    vectors.push((a(80), format!("{}-0f45e858", a(54)), format!("{}-0f45e858", a(44))));
    let b = |n: usize| "b".repeat(n);
    vectors.push((b(80), format!("{}-18766a15", b(54)), format!("{}-18766a15", b(44))));
    let xy = format!("{}_{}", "x".repeat(53), "y".repeat(20));
    vectors.push((
        xy,
        format!("{}-a75d2321", "x".repeat(53)),
        format!("{}-a75d2321", "x".repeat(44)),
    ));

    // (raw name, service name, release name) as the binary wrote them.
    let mut got: Vec<(String, String, String)> = Vec::new();
    let raws = vectors
        .iter()
        .map(|(raw, _, _)| raw.clone())
        .chain(ORACLE_ONLY_NAMES.iter().map(|raw| raw.to_string()));
    for (i, raw) in raws.enumerate() {
        let dir = env.root.join(format!("case{i}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let kit = env.project.client("kit").fqsn(json!(raw)).build(&dir);
        let (out, data) = prepared(&kit, "k8s", BASIC);
        assert_eq!(data["name"], raw.as_str());
        let release = release_of(&data);
        assert!(is_k8s_name(&release, 53), "release {release:?} for {raw:?}");
        let v = values(&out);
        let service = v["serviceName"].as_str().expect("serviceName").to_string();
        assert!(is_k8s_name(&service, 63), "service {service:?} for {raw:?}");
        assert_eq!(v["name"], raw.as_str());
        assert_eq!(v["siteName"], raw.as_str());
        assert_eq!(comm(&out)["internal"]["resources"]["host"], service.as_str());
        got.push((raw, service, release));
    }
    for ((raw, service, release), (_, want_service, want_release)) in got.iter().zip(&vectors) {
        assert_eq!(service, want_service, "serviceName for {raw:?}");
        assert_eq!(release, want_release, "release for {raw:?}");
    }
    let mut unique: Vec<&String> = got.iter().map(|(_, _, release)| release).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "distinct names get distinct releases");

    // The reference's own function, one process per release for all names; the
    // trailing-newline name is our documented deviation.
    let compared: Vec<&(String, String, String)> = got.iter().filter(|(raw, _, _)| !raw.ends_with('\n')).collect();
    let inputs: Vec<(&str, usize)> = compared
        .iter()
        .flat_map(|(raw, _, _)| [(raw.as_str(), 63), (raw.as_str(), 53)])
        .collect();
    let references = [oracle::nvflare_2_8(), oracle::nvflare_2_9()];
    for reference in references.iter().flatten() {
        let names = reference.stable_k8s_names(&inputs);
        assert_eq!(names.len(), inputs.len());
        for ((raw, service, release), want) in compared.iter().zip(names.chunks(2)) {
            assert_eq!(service, &want[0], "serviceName for {raw:?} (the reference's)");
            assert_eq!(release, &want[1], "release for {raw:?} (the reference's)");
        }
    }
}

// ---------------------------------------------------------------------------------------
// rendered charts

#[test]
fn server_with_distinct_ports_renders_all_ports() {
    let env = env();
    let kit = env.project.server("server1").build(&env.root);
    let (out, data) = prepared(&kit, "k8s", BASIC);
    let chart = out.join("helm_chart");
    let Some(objects) = render_chart(&chart, &release_of(&data), "fl-ns") else {
        return;
    };
    assert_eq!(
        kinds_and_names(&objects),
        expected_kinds(&[
            ("Deployment", "server1"),
            ("Service", "nvflare-server"),
            ("ServiceAccount", "server1"),
            ("Role", "server1-launcher"),
            ("RoleBinding", "server1-launcher"),
        ])
    );
    let container = assert_workload(&objects, "server1", "server1", "fl-ns");
    assert_eq!(container["image"], IMAGE);
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["command"], json!([PYTHON3]));
    assert_eq!(container["args"], server_args("nvidia", MOUNT));
    assert_eq!(container["resources"], default_resources());
    assert_eq!(
        container["volumeMounts"],
        json!([{"name": "workspace", "mountPath": MOUNT}])
    );
    assert_eq!(
        container_ports(&container),
        [
            (8002, "TCP".to_string()),
            (8003, "TCP".to_string()),
            (8102, "TCP".to_string())
        ]
    );
    let pod = pod_spec(&objects, "server1");
    assert_eq!(
        pod["volumes"],
        json!([{"name": "workspace", "persistentVolumeClaim": {"claimName": "nvflws"}}])
    );
    assert!(pod.get("imagePullSecrets").is_none(), "{pod}");
    assert!(pod.get("securityContext").is_none(), "{pod}");
    let service = object(&objects, "Service", "nvflare-server");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert!(service["spec"].get("loadBalancerIP").is_none());
    assert_eq!(
        service["spec"]["selector"],
        json!({"app.kubernetes.io/name": "server1"})
    );
    assert_eq!(
        service["spec"]["ports"],
        json!([
            {"name": "fl-port", "port": 8002, "targetPort": 8002, "protocol": "TCP"},
            {"name": "admin-port", "port": 8003, "targetPort": 8003, "protocol": "TCP"},
            {"name": "nvflare-server", "port": 8102, "targetPort": 8102, "protocol": "TCP"},
        ])
    );

    // tcp-services ConfigMap and host ports only when enabled.
    let Some(objects) = helm_template(
        &chart,
        "server1",
        "fl-ns",
        &["tcpConfigMapEnabled=true", "hostPortEnabled=true"],
    ) else {
        return;
    };
    let config_map = object(&objects, "ConfigMap", "nginx-ingress-microk8s-conf");
    assert_eq!(config_map["metadata"]["namespace"], "ingress");
    assert_eq!(
        config_map["data"],
        json!({"8002": "fl-ns/nvflare-server:8002", "8003": "fl-ns/nvflare-server:8003"})
    );
    let ports = &pod_spec(&objects, "server1")["containers"][0]["ports"];
    let host_ports: Vec<Option<i64>> = ports
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p.get("hostPort").and_then(Value::as_i64))
        .collect();
    assert_eq!(host_ports, [Some(8002), Some(8003), None]);
}

#[test]
fn server_with_fed_port_equal_to_admin_port_renders_one_fl_port() {
    let env = env();
    let kit = env
        .project
        .server("server1")
        .fed_port(8002)
        .admin_port(Some(json!(8002)))
        .build(&env.root);
    let (out, data) = prepared(&kit, "k8s", &format!("{BASIC}  parent_port: 9102\n"));
    let chart = out.join("helm_chart");
    let Some(objects) = render_chart(&chart, &release_of(&data), "default") else {
        return;
    };
    let container = assert_workload(&objects, "server1", "server1", "default");
    assert_eq!(
        container_ports(&container),
        [(8002, "TCP".to_string()), (9102, "TCP".to_string())]
    );
    let service = object(&objects, "Service", "nvflare-server");
    assert_eq!(
        service["spec"]["ports"],
        json!([
            {"name": "fl-port", "port": 8002, "targetPort": 8002, "protocol": "TCP"},
            {"name": "nvflare-server", "port": 9102, "targetPort": 9102, "protocol": "TCP"},
        ])
    );
    assert!(objects.iter().all(|o| o["kind"] != "ConfigMap"));
    let Some(objects) = helm_template(&chart, "server1", "default", &["tcpConfigMapEnabled=true"]) else {
        return;
    };
    let config_map = object(&objects, "ConfigMap", "nginx-ingress-microk8s-conf");
    assert_eq!(config_map["data"], json!({"8002": "default/nvflare-server:8002"}));
}

/// Deviation 3: server object names use `appName`, a Kubernetes-safe form of the name.
#[test]
fn server_names_are_kubernetes_safe() {
    let env = env();
    let render = chart_tools_present();
    for (i, (name, app)) in [
        ("server.example.com", "server-example-com-e1335e88"),
        ("Server.Example_1", "server-example-1-3801a966"),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = env.root.join(format!("case{i}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let kit = env.project.server(name).build(&dir);
        let (out, data) = prepared(&kit, "k8s", BASIC);
        assert_eq!(data["name"], name);
        let v = values(&out);
        assert_eq!(&keys(&v)[..3], ["name", "appName", "serviceName"]);
        assert_eq!(v["name"], name);
        assert_eq!(v["appName"], app);
        assert_eq!(release_of(&data), app, "both names fit in 53 characters");
        assert_eq!(
            chart_yaml(&out)["description"],
            format!("NVFlare federated learning server for {name}")
        );
        if !render {
            continue;
        }
        let objects = rendered(&out.join("helm_chart"), &release_of(&data), "default");
        assert_eq!(
            kinds_and_names(&objects),
            expected_kinds(&[
                ("Deployment", app),
                ("Service", "nvflare-server"),
                ("ServiceAccount", app),
                ("Role", &format!("{app}-launcher")),
                ("RoleBinding", &format!("{app}-launcher")),
            ])
        );
        assert_workload(&objects, app, &release_of(&data), "default");
    }
}

/// A chart with parent pull secrets, pod security context and resources, for a server.
#[test]
fn server_chart_with_pull_secrets_security_context_and_resources() {
    let env = env();
    let kit = env.project.server("Server.Example_1").build(&env.root);
    let config = r#"runtime: k8s
namespace: fl
server_service_name: fl-server
parent:
  docker_image: localhost:5000/nvflare@sha256:0123abcd
  parent_port: 8200
  workspace_pvc: server-ws
  resources:
    limits: {cpu: "8", memory: 32Gi}
  pod_security_context: {runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000}
  image_pull_secrets: [regcred]
"#;
    let (out, data) = prepared(&kit, "k8s", config);
    let app = "server-example-1-3801a966".to_string();
    let release = app.clone();
    assert_eq!(release_of(&data), release);
    let v = values(&out);
    assert_eq!(v["image"]["repository"], "localhost:5000/nvflare");
    assert_eq!(v["image"]["tag"], "");
    assert_eq!(v["image"]["digest"], "sha256:0123abcd");
    let Some(objects) = render_chart(&out.join("helm_chart"), &release, "fl") else {
        return;
    };
    assert_eq!(
        kinds_and_names(&objects),
        expected_kinds(&[
            ("Deployment", &app),
            ("Service", "fl-server"),
            ("ServiceAccount", &app),
            ("Role", &format!("{app}-launcher")),
            ("RoleBinding", &format!("{app}-launcher")),
        ])
    );
    let container = assert_workload(&objects, &app, &release, "fl");
    assert_eq!(container["image"], "localhost:5000/nvflare@sha256:0123abcd");
    assert_eq!(
        container["resources"],
        json!({"limits": {"cpu": "8", "memory": "32Gi"}})
    );
    assert_eq!(container["args"], server_args("nvidia", MOUNT));
    let pod = pod_spec(&objects, &app);
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "regcred"}]));
    assert_eq!(
        pod["securityContext"],
        json!({"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000})
    );
    assert_eq!(
        pod["volumes"],
        json!([{"name": "workspace", "persistentVolumeClaim": {"claimName": "server-ws"}}])
    );
    assert_eq!(
        container_ports(&container),
        [
            (8002, "TCP".to_string()),
            (8003, "TCP".to_string()),
            (8200, "TCP".to_string())
        ]
    );
    let service = object(&objects, "Service", "fl-server");
    assert_eq!(service["spec"]["selector"], json!({"app.kubernetes.io/name": app}));
    assert_eq!(
        service["spec"]["ports"][2],
        json!({"name": "nvflare-server", "port": 8200, "targetPort": 8200, "protocol": "TCP"})
    );
}

#[test]
fn client_with_dotted_fqsn_renders_sanitised_objects() {
    let env = env();
    let kit = env
        .project
        .client("hospital-a")
        .fqsn(json!("Hospital_A.dept"))
        .build(&env.root);
    let (out, data) = prepared(&kit, "k8s", BASIC);
    let name = "hospital-a-dept-1b8a071b".to_string();
    let release = name.clone();
    assert_eq!(data["name"], "Hospital_A.dept");
    assert_eq!(release_of(&data), release);
    let v = values(&out);
    assert_eq!(v["serviceName"], name.as_str());
    assert_eq!(comm(&out)["internal"]["resources"]["host"], name.as_str());
    let Some(objects) = render_chart(&out.join("helm_chart"), &release, "default") else {
        return;
    };
    assert_eq!(
        kinds_and_names(&objects),
        expected_kinds(&[
            ("Deployment", &name),
            ("Service", &name),
            ("ServiceAccount", &name),
            ("Role", &format!("{name}-launcher")),
            ("RoleBinding", &format!("{name}-launcher")),
        ])
    );
    let container = assert_workload(&objects, &name, &release, "default");
    assert_eq!(container["image"], IMAGE);
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(container["resources"], default_resources());
    let mut args = client_args("nvidia", MOUNT);
    args.as_array_mut().expect("args").push(json!("uid=Hospital_A.dept"));
    assert_eq!(container["args"], args);
    assert_eq!(container_ports(&container), [(8102, "TCP".to_string())]);
    let pod = pod_spec(&objects, &name);
    assert!(pod.get("imagePullSecrets").is_none(), "{pod}");
    assert!(pod.get("securityContext").is_none(), "{pod}");
    assert_eq!(
        pod["volumes"],
        json!([{"name": "workspace", "persistentVolumeClaim": {"claimName": "nvflws"}}])
    );
    let service = object(&objects, "Service", &name);
    assert_eq!(service["spec"]["selector"], json!({"app.kubernetes.io/name": name}));
    assert_eq!(
        service["spec"]["ports"],
        json!([{"port": 8102, "targetPort": 8102, "protocol": "TCP"}])
    );
}

/// Deviation 4: the uid item is quoted, so YAML syntax in a site name renders literally.
#[test]
fn client_uid_arg_renders_names_with_yaml_syntax_literally() {
    let env = env();
    let render = chart_tools_present();
    // Names as NVFlare 2.8.1's `_stable_k8s_name(raw, 63)` gives them.
    for (i, (raw, name)) in [
        ("a: b", "a-b-75cd1899"),
        ("x #y", "x-y-0c4c46a5"),
        ("*star", "star-311ccdc6"),
        ("&anchor", "anchor-24400feb"),
        ("!tag", "tag-ba70c074"),
        ("- dash", "dash-00003f45"),
        ("{x}", "x-d3ebeaf9"),
        ("\"q\" 'p'", "q-p-0b35dafa"),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = env.root.join(format!("case{i}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let kit = env.project.client("kit").fqsn(json!(raw)).build(&dir);
        let (out, data) = prepared(&kit, "k8s", BASIC);
        assert_eq!(data["name"], raw);
        assert_eq!(values(&out)["siteName"], raw);
        assert_eq!(values(&out)["serviceName"], name, "{raw:?}");
        assert_eq!(release_of(&data), name, "{raw:?}");
        if !render {
            continue;
        }
        let objects = rendered(&out.join("helm_chart"), &release_of(&data), "default");
        let args = pod_spec(&objects, name)["containers"][0]["args"].clone();
        let args = args.as_array().expect("args");
        assert_eq!(args.len(), 12, "{raw:?}: {args:?}");
        assert_eq!(args[11], format!("uid={raw}"), "{raw:?}");
    }
}
