//! The Helm chart of `runtime: k8s` for NVFlare 2.9 (docs/dev/nvflare-2.9-behaviour.md
//! A.9-A.11): values.yaml's `workspaceConfig` (both roles) and `nodeSelector` (server), the
//! staged workspace volumes and their read-only mounts, the server's node selector and the
//! launcher Role; every render passes `helm lint --strict` and `kubernetes-validate
//! --strict`; the objects match what nvflare 2.9.0's own chart renders for the same kit
//! and config (apart from the documented deviations); and 2.8 charts stay byte for byte
//! what they were.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use flare_deploy_tests::json::keys;
use flare_deploy_tests::kitgen::Kit;
use flare_deploy_tests::tools::{self, object};
use flare_deploy_tests::{flare_deploy, Project};
use serde_json::{json, Value};
use tempfile::TempDir;

const CONFIG: &str = "runtime: k8s\nnamespace: nvflare\nparent:\n  docker_image: nvflare/nvflare:2.9.0\n";
const NAMESPACE: &str = "nvflare";
const MOUNT: &str = "/var/tmp/nvflare/workspace";

/// The exact text of 2.9's `workspaceConfig` in values.yaml (both roles).
const WORKSPACE_CONFIG_TEXT: &str = "workspaceConfig:
  namespace: null
  local:
    configMapName: null
    items: []
  startup:
    secretName: null
    items: []
";

/// Items for the staged ConfigMap and Secret, as `nvflare deploy k8s stage` records them
/// (a `mode` on the private key shows that per-item modes pass through).
const STAGED_ITEMS: &str = "workspaceConfig:
  namespace: nvflare
  local:
    items:
    - key: resources.json.default
      path: resources.json.default
    - key: comm_config.json
      path: comm_config.json
  startup:
    items:
    - key: rootCA.pem
      path: rootCA.pem
    - key: private.key
      path: private.key
      mode: 0400
";

// ---------------------------------------------------------------------------------------
// helpers

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

/// `prepare <kit> --config <label>.yaml --output out-<label> --nvflare-version <release>`;
/// must succeed. Returns the output directory.
#[track_caller]
fn prepare(kit: &Kit, label: &str, config: &str, release: &str) -> PathBuf {
    let parent = kit.dir.parent().expect("kit parent");
    let config_path = parent.join(format!("{label}.yaml"));
    std::fs::write(&config_path, config).expect("write config");
    let out = parent.join(format!("out-{label}"));
    flare_deploy([
        OsStr::new("prepare"),
        kit.dir.as_os_str(),
        OsStr::new("--output"),
        out.as_os_str(),
        OsStr::new("--config"),
        config_path.as_os_str(),
        OsStr::new("--nvflare-version"),
        OsStr::new(release),
    ])
    .assert_ok();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml_file(path: &Path) -> Value {
    let text = read(path);
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}\n{text}", path.display()))
}

fn template_names(chart: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(chart.join("templates"))
        .expect("read templates")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn text_around<'a>(text: &'a str, needle: &str) -> &'a str {
    text.find(needle).map_or(text, |at| &text[at.saturating_sub(200)..])
}

/// helm and kubernetes-validate, or `None` (after a SKIPPED line) outside CI.
struct Tools {
    helm: PathBuf,
    validator: PathBuf,
}

fn chart_tools() -> Option<Tools> {
    Some(Tools {
        helm: tools::require("helm")?,
        validator: tools::require("kubernetes-validate")?,
    })
}

/// `helm template <release> <chart>` with `options` (`-f`, `--set`, ...) in `NAMESPACE`.
fn helm_template(helm: &Path, chart: &Path, release: &str, options: &[OsString]) -> String {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("template"),
        OsStr::new(release),
        chart.as_os_str(),
        OsStr::new("--namespace"),
        OsStr::new(NAMESPACE),
    ];
    args.extend(options.iter().map(OsString::as_os_str));
    tools::run_ok(helm, &args)
}

fn parse_objects(rendered: &str) -> Vec<Value> {
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(rendered) {
        let value: Value = serde::Deserialize::deserialize(doc).expect("rendered YAML parses");
        if !value.is_null() {
            objects.push(value);
        }
    }
    objects
}

/// `helm lint --strict` and `helm template` with `options`, then `kubernetes-validate
/// --strict` on the render; the rendered objects.
fn render(tools: &Tools, chart: &Path, release: &str, options: &[OsString]) -> Vec<Value> {
    let mut lint: Vec<&OsStr> = vec![
        OsStr::new("lint"),
        OsStr::new("--strict"),
        chart.as_os_str(),
        OsStr::new("--namespace"),
        OsStr::new(NAMESPACE),
    ];
    lint.extend(options.iter().map(OsString::as_os_str));
    tools::run_ok(&tools.helm, &lint);
    let rendered = helm_template(&tools.helm, chart, release, options);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, &rendered).expect("write rendered");
    tools::run_ok(
        &tools.validator,
        &["--strict".as_ref(), "--quiet".as_ref(), file.as_os_str()],
    );
    parse_objects(&rendered)
}

fn opts(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

/// `-f <file>` with `text` written to `<dir>/<name>`.
fn values_file(dir: &Path, name: &str, text: &str) -> Vec<OsString> {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write values file");
    vec!["-f".into(), path.into_os_string()]
}

fn pod_spec<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    &object(objects, "Deployment", name)["spec"]["template"]["spec"]
}

fn container<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    let containers = pod_spec(objects, name)["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "{containers:?}");
    &containers[0]
}

/// The launcher Role of 2.9 (A.11) and its binding.
#[track_caller]
fn assert_launcher_role(objects: &[Value], name: &str) {
    let role = object(objects, "Role", &format!("{name}-launcher"));
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get", "update", "patch", "delete"]},
        ])
    );
    let binding = object(objects, "RoleBinding", &format!("{name}-launcher"));
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("{name}-launcher")})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}])
    );
}

/// An unstaged chart: only the workspace PVC, mounted read-write, and no node selector.
#[track_caller]
fn assert_unstaged_pod(objects: &[Value], name: &str, claim: &str, mount: &str) {
    let spec = pod_spec(objects, name);
    assert_eq!(
        spec["volumes"],
        json!([{"name": "workspace", "persistentVolumeClaim": {"claimName": claim}}])
    );
    assert_eq!(
        container(objects, name)["volumeMounts"],
        json!([{"name": "workspace", "mountPath": mount}])
    );
    assert!(spec.get("nodeSelector").is_none(), "{spec}");
}

fn server_kit(env: &Env) -> Kit {
    env.project.server("server1").build(&env.root)
}

fn client_kit(env: &Env) -> Kit {
    env.project.client("site-1").build(&env.root)
}

// ---------------------------------------------------------------------------------------
// values.yaml, Chart.yaml and the template files (A.9, A.10)

/// 2.9's values are 2.8's with `added` inserted; Chart.yaml and the unchanged template
/// files are the same bytes; the changed templates differ.
#[track_caller]
fn assert_only_additions(out29: &Path, out28: &Path, added: &[&str], changed: &[&str]) {
    let mut v29 = yaml_file(&out29.join("helm_chart/values.yaml"));
    for key in added {
        v29.as_object_mut().expect("values").shift_remove(*key);
    }
    let v28 = yaml_file(&out28.join("helm_chart/values.yaml"));
    assert_eq!(
        keys(&v29),
        keys(&v28),
        "2.9 values other than {added:?} keep the 2.8 order"
    );
    assert_eq!(v29, v28);
    assert_eq!(
        read(&out29.join("helm_chart/Chart.yaml")),
        read(&out28.join("helm_chart/Chart.yaml"))
    );
    let names = template_names(&out29.join("helm_chart"));
    assert_eq!(names, template_names(&out28.join("helm_chart")));
    for name in &names {
        let a = read(&out29.join("helm_chart/templates").join(name));
        let b = read(&out28.join("helm_chart/templates").join(name));
        assert_eq!(a != b, changed.contains(&name.as_str()), "{name}: changed in 2.9?");
    }
}

#[test]
fn server_values_2_9_add_workspace_config_and_node_selector() {
    let env = env();
    let kit = server_kit(&env);
    let out = prepare(&kit, "k8s29", CONFIG, "2.9");
    let values = yaml_file(&out.join("helm_chart/values.yaml"));
    assert_eq!(
        keys(&values),
        [
            "name",
            "appName",
            "serviceName",
            "image",
            "imagePullSecrets",
            "serviceAccount",
            "podAnnotations",
            "rbac",
            "persistence",
            "workspaceConfig",
            "fedLearnPort",
            "adminPort",
            "parentPort",
            "resources",
            "securityContext",
            "nodeSelector",
            "hostPortEnabled",
            "tcpConfigMapEnabled",
            "service",
            "command",
            "args"
        ]
    );
    assert_eq!(
        values["workspaceConfig"],
        json!({"namespace": null, "local": {"configMapName": null, "items": []},
               "startup": {"secretName": null, "items": []}})
    );
    assert_eq!(keys(&values["workspaceConfig"]), ["namespace", "local", "startup"]);
    assert_eq!(values["nodeSelector"], json!({}));
    let text = read(&out.join("helm_chart/values.yaml"));
    let block = format!("    mountPath: {MOUNT}\n{WORKSPACE_CONFIG_TEXT}fedLearnPort: 8002\n");
    assert!(text.contains(&block), "{}", text_around(&text, "workspaceConfig"));
    let block = "securityContext: {}\nnodeSelector: {}\nhostPortEnabled: false\n";
    assert!(text.contains(block), "{}", text_around(&text, "nodeSelector"));

    let out28 = prepare(&kit, "k8s28", CONFIG, "2.8");
    assert_only_additions(
        &out,
        &out28,
        &["workspaceConfig", "nodeSelector"],
        &["server-deployment.yaml", "role.yaml"],
    );

    let Some(tools) = chart_tools() else { return };
    let objects = render(&tools, &out.join("helm_chart"), "server1", &[]);
    assert_unstaged_pod(&objects, "server1", "nvflws", MOUNT);
    assert_launcher_role(&objects, "server1");
}

#[test]
fn client_values_2_9_add_workspace_config() {
    let env = env();
    let kit = client_kit(&env);
    let out = prepare(&kit, "k8s29", CONFIG, "2.9");
    let values = yaml_file(&out.join("helm_chart/values.yaml"));
    assert_eq!(
        keys(&values),
        [
            "name",
            "siteName",
            "serviceName",
            "image",
            "imagePullSecrets",
            "serviceAccount",
            "podAnnotations",
            "rbac",
            "persistence",
            "workspaceConfig",
            "port",
            "service",
            "securityContext",
            "resources",
            "command",
            "args"
        ]
    );
    assert_eq!(
        values["workspaceConfig"],
        json!({"namespace": null, "local": {"configMapName": null, "items": []},
               "startup": {"secretName": null, "items": []}})
    );
    assert_eq!(keys(&values["workspaceConfig"]["local"]), ["configMapName", "items"]);
    assert_eq!(keys(&values["workspaceConfig"]["startup"]), ["secretName", "items"]);
    let text = read(&out.join("helm_chart/values.yaml"));
    let block = format!("    mountPath: {MOUNT}\n{WORKSPACE_CONFIG_TEXT}port: 8102\n");
    assert!(text.contains(&block), "{}", text_around(&text, "workspaceConfig"));
    assert!(!text.contains("nodeSelector"), "{text}");

    let out28 = prepare(&kit, "k8s28", CONFIG, "2.8");
    assert_only_additions(
        &out,
        &out28,
        &["workspaceConfig"],
        &["client-deployment.yaml", "role.yaml"],
    );

    let Some(tools) = chart_tools() else { return };
    let objects = render(&tools, &out.join("helm_chart"), "site-1", &[]);
    assert_unstaged_pod(&objects, "site-1", "nvflws", MOUNT);
    assert_launcher_role(&objects, "site-1");
}

// ---------------------------------------------------------------------------------------
// Rendering staged workspaces and node selectors (A.10)

#[test]
fn staged_workspace_renders_volumes_with_items_and_read_only_mounts() {
    let env = env();
    let config = format!("{CONFIG}  workspace_mount_path: /workspace\n  workspace_pvc: fl-pvc\n");
    for (kit, name) in [(server_kit(&env), "server1"), (client_kit(&env), "site-1")] {
        let out = prepare(&kit, &format!("staged-{name}"), &config, "2.9");
        let Some(tools) = chart_tools() else { return };
        let chart = out.join("helm_chart");
        let local = format!("workspaceConfig.local.configMapName=nvflare-local-{name}");
        let startup = format!("workspaceConfig.startup.secretName=nvflare-startup-{name}");
        let pvc = json!({"name": "workspace", "persistentVolumeClaim": {"claimName": "fl-pvc"}});
        let pvc_mount = json!({"name": "workspace", "mountPath": "/workspace"});
        let local_mount = json!({"name": "workspace-local", "mountPath": "/workspace/local", "readOnly": true});
        let startup_mount = json!({"name": "workspace-startup", "mountPath": "/workspace/startup", "readOnly": true});

        // Both names and the items of a values file.
        let mut options = values_file(&env.root, "items.yaml", STAGED_ITEMS);
        options.extend(opts(&["--set", &local, "--set", &startup]));
        let objects = render(&tools, &chart, name, &options);
        assert_eq!(
            pod_spec(&objects, name)["volumes"],
            json!([
                pvc,
                {"name": "workspace-local", "configMap": {
                    "name": format!("nvflare-local-{name}"),
                    "items": [
                        {"key": "resources.json.default", "path": "resources.json.default"},
                        {"key": "comm_config.json", "path": "comm_config.json"},
                    ]}},
                {"name": "workspace-startup", "secret": {
                    "secretName": format!("nvflare-startup-{name}"),
                    "items": [
                        {"key": "rootCA.pem", "path": "rootCA.pem"},
                        {"key": "private.key", "path": "private.key", "mode": 0o400},
                    ]}},
            ]),
            "{name}"
        );
        assert_eq!(
            container(&objects, name)["volumeMounts"],
            json!([pvc_mount, local_mount, startup_mount]),
            "{name}"
        );
        assert_launcher_role(&objects, name);

        // Names without items: whole ConfigMap and Secret.
        let objects = render(&tools, &chart, name, &opts(&["--set", &local, "--set", &startup]));
        assert_eq!(
            pod_spec(&objects, name)["volumes"],
            json!([
                pvc,
                {"name": "workspace-local", "configMap": {"name": format!("nvflare-local-{name}")}},
                {"name": "workspace-startup", "secret": {"secretName": format!("nvflare-startup-{name}")}},
            ]),
            "{name}"
        );
        assert_eq!(
            container(&objects, name)["volumeMounts"],
            json!([pvc_mount, local_mount, startup_mount])
        );

        // Each volume on its own; items without a name render nothing.
        let objects = render(&tools, &chart, name, &opts(&["--set", &startup]));
        let volumes = &pod_spec(&objects, name)["volumes"];
        assert_eq!(volumes.as_array().map(Vec::len), Some(2), "{volumes}");
        assert_eq!(volumes[1]["name"], "workspace-startup");
        assert_eq!(
            container(&objects, name)["volumeMounts"],
            json!([pvc_mount, startup_mount])
        );
        let mut options = values_file(&env.root, "items.yaml", STAGED_ITEMS);
        options.extend(opts(&["--set", &local]));
        let objects = render(&tools, &chart, name, &options);
        assert_eq!(pod_spec(&objects, name)["volumes"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            container(&objects, name)["volumeMounts"],
            json!([pvc_mount, local_mount])
        );
        let objects = render(
            &tools,
            &chart,
            name,
            &values_file(&env.root, "items.yaml", STAGED_ITEMS),
        );
        assert_unstaged_pod(&objects, name, "fl-pvc", "/workspace");
    }
}

#[test]
fn staged_names_render_as_strings() {
    // K29-2: names that YAML would read as numbers or booleans stay strings.
    let env = env();
    let kit = client_kit(&env);
    let out = prepare(&kit, "k8s29", CONFIG, "2.9");
    let Some(tools) = chart_tools() else { return };
    let objects = render(
        &tools,
        &out.join("helm_chart"),
        "site-1",
        &opts(&[
            "--set-string",
            "workspaceConfig.local.configMapName=0123",
            "--set-string",
            "workspaceConfig.startup.secretName=true",
        ]),
    );
    let volumes = &pod_spec(&objects, "site-1")["volumes"];
    assert_eq!(volumes[1]["configMap"]["name"], json!("0123"));
    assert_eq!(volumes[2]["secret"]["secretName"], json!("true"));
}

#[test]
fn server_node_selector_renders_when_set() {
    let env = env();
    let server = prepare(&server_kit(&env), "server", CONFIG, "2.9");
    let client = prepare(&client_kit(&env), "client", CONFIG, "2.9");
    let Some(tools) = chart_tools() else { return };
    let selector = "nodeSelector:\n  kubernetes.io/arch: amd64\n  pool: fl\n";
    let mut options = values_file(&env.root, "selector.yaml", selector);
    options.extend(opts(&["--set", "nodeSelector.disktype=ssd"]));
    let objects = render(&tools, &server.join("helm_chart"), "server1", &options);
    let spec = pod_spec(&objects, "server1");
    assert_eq!(
        spec["nodeSelector"],
        json!({"kubernetes.io/arch": "amd64", "pool": "fl", "disktype": "ssd"})
    );
    // Only the server's chart has a node selector (as in 2.9.0).
    let objects = render(&tools, &client.join("helm_chart"), "site-1", &options);
    assert!(pod_spec(&objects, "site-1").get("nodeSelector").is_none());
}

// ---------------------------------------------------------------------------------------
// Differential: nvflare 2.9.0's chart for the same kit and config

fn nvflare29() -> Option<PathBuf> {
    let nvflare = tools::tools_dir().join("nvflare29-venv/bin/nvflare");
    tools::require_path(&nvflare, "NVFlare 2.9.0 (nvflare29-venv)")
}

/// Rendered objects by (kind, name).
fn by_name(objects: Vec<Value>) -> BTreeMap<(String, String), Value> {
    let mut all = BTreeMap::new();
    for o in objects {
        let key = (
            o["kind"].as_str().expect("kind").to_string(),
            o["metadata"]["name"].as_str().expect("name").to_string(),
        );
        assert!(all.insert(key.clone(), o).is_none(), "{key:?} rendered twice");
    }
    all
}

fn container_ports(objects: &mut BTreeMap<(String, String), Value>) -> Vec<&mut Value> {
    let mut ports = Vec::new();
    for (key, o) in objects.iter_mut() {
        if key.0 == "Deployment" {
            for c in o["spec"]["template"]["spec"]["containers"]
                .as_array_mut()
                .expect("containers")
            {
                ports.extend(c["ports"].as_array_mut().expect("ports").iter_mut());
            }
        }
    }
    ports
}

/// Our objects, with the documented differences to 2.9.0 taken out.
fn without_deviations(mut ours: BTreeMap<(String, String), Value>) -> BTreeMap<(String, String), Value> {
    for port in container_ports(&mut ours) {
        // H7: our container ports are named.
        let name = port.as_object_mut().expect("port").shift_remove("name");
        if let Some(name) = name {
            assert!(["fl-port", "admin-port", "parent-port"].contains(&name.as_str().unwrap_or("")));
        }
    }
    ours
}

/// nvflare's objects, with the API server's defaults filled in.
fn with_defaults(mut reference: BTreeMap<(String, String), Value>) -> BTreeMap<(String, String), Value> {
    for port in container_ports(&mut reference) {
        // K29-1: 2.9.0's client container port leaves `protocol` to its default, TCP; ours
        // states it.
        let port = port.as_object_mut().expect("port");
        if !port.contains_key("protocol") {
            port.insert("protocol".into(), json!("TCP"));
        }
    }
    reference
}

#[track_caller]
fn assert_same_objects(ours: Vec<Value>, reference: Vec<Value>, what: &str) {
    let ours = without_deviations(by_name(ours));
    let reference = with_defaults(by_name(reference));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "{what}: the same objects"
    );
    for (key, object) in &ours {
        assert!(
            object == &reference[key],
            "{what}: {key:?} differs\nours:\n{}\nnvflare 2.9.0:\n{}",
            serde_json::to_string_pretty(object).unwrap_or_default(),
            serde_json::to_string_pretty(&reference[key]).unwrap_or_default()
        );
    }
}

#[test]
fn charts_render_the_objects_of_nvflare_2_9_0() {
    let env = env();
    // Values for a staged kit: both names, items, and a node selector.
    let staged = format!("{STAGED_ITEMS}nodeSelector:\n  pool: fl\n");
    for (kit, name, admin_port) in [
        (server_kit(&env), "server1", Some(8003)),
        (
            env.project.server("server2").admin_port(None).build(&env.root),
            "server2",
            None,
        ),
        (client_kit(&env), "site-1", None),
    ] {
        let ours = prepare(&kit, &format!("ours-{name}"), CONFIG, "2.9");
        let Some(nvflare) = nvflare29() else { return };
        let Some(tools) = chart_tools() else { return };
        let parent = kit.dir.parent().expect("parent");
        let reference = parent.join(format!("nvflare-2.9.0-{name}"));
        tools::run_ok(
            &nvflare,
            &[
                "deploy".as_ref(),
                "prepare".as_ref(),
                kit.dir.as_os_str(),
                "--config".as_ref(),
                parent.join(format!("ours-{name}.yaml")).as_os_str(),
                "--output".as_ref(),
                reference.as_os_str(),
            ],
        );
        let (ours, reference) = (ours.join("helm_chart"), reference.join("helm_chart"));

        // The chart files: same names, same Chart.yaml, same values apart from H2 (the
        // server's `appName`; H6, quoting, is gone once parsed).
        assert_eq!(template_names(&ours), template_names(&reference), "{name}");
        assert_eq!(
            yaml_file(&ours.join("Chart.yaml")),
            yaml_file(&reference.join("Chart.yaml")),
            "{name}"
        );
        let mut values = yaml_file(&ours.join("values.yaml"));
        if name.starts_with("server") {
            let app_name = values.as_object_mut().expect("values").shift_remove("appName");
            assert_eq!(app_name, Some(json!(name)), "H2");
        }
        let reference_values = yaml_file(&reference.join("values.yaml"));
        assert_eq!(keys(&values), keys(&reference_values), "{name}: values key order");
        assert_eq!(values, reference_values, "{name}");
        assert_eq!(values["adminPort"], json!(admin_port), "{name}");

        // The rendered objects: as prepared, staged, and with only one of the two names.
        let dir = tempfile::tempdir().expect("tmp");
        let local = format!("workspaceConfig.local.configMapName=nvflare-local-{name}");
        let startup = format!("workspaceConfig.startup.secretName=nvflare-startup-{name}");
        let mut staged_options = values_file(dir.path(), "staged.yaml", &staged);
        staged_options.extend(opts(&["--set", &local, "--set", &startup]));
        let cases: [(&str, Vec<OsString>); 4] = [
            ("as prepared", vec![]),
            ("staged", staged_options),
            ("local only", opts(&["--set", &local])),
            (
                "startup only, tcp ConfigMap",
                opts(&["--set", &startup, "--set", "tcpConfigMapEnabled=true"]),
            ),
        ];
        for (what, options) in cases {
            let what = format!("{name}, {what}");
            let ours = render(&tools, &ours, name, &options);
            let reference = parse_objects(&helm_template(&tools.helm, &reference, name, &options));
            assert_same_objects(ours, reference, &what);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2.8 charts are unchanged

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// sha256 of every chart file a 2.8 prepare of `server_kit` / `client_kit` with `CONFIG`
/// writes, as before 2.9 support (the k8s_prepare suite checks what these files mean).
/// Changed once on purpose since: the templates quote the names they print, so a site
/// called `yes` renders as a string (deviation H6; tests/tests/deviations.rs).
const SERVER_CHART_2_8: [(&str, &str); 8] = [
    (
        "Chart.yaml",
        "6ed1c65cf462156e934c71b29fdba6099da831ce3186a824ef0c9e92bdf54ad3",
    ),
    (
        "values.yaml",
        "9efa76c21ba681abd7c7c4386867f8234240e5ac56d59698fe604b0c2ed4e1ce",
    ),
    (
        "templates/_helpers.tpl",
        "fe59196797adcc659e41d725082c6ad4c7e4f0d687a983be31383e4479e9c35f",
    ),
    (
        "templates/role.yaml",
        "5d6e344be40ce420a1900123a4e0a1c06dfe3c571ed3dc408c4c6601742f7296",
    ),
    (
        "templates/server-deployment.yaml",
        "2b690005c13f63048442621c851311e06ed3e65e3ad311c9f3ec81388e0fb46b",
    ),
    (
        "templates/server-service.yaml",
        "8b3b7478d1f6378874714e204f5120c07851d4446efbe0584b01b2270caca49d",
    ),
    (
        "templates/server-tcp-services.yaml",
        "96ebe67317ef6e923e9767ed277a3f1805279537089590423be460db40391699",
    ),
    (
        "templates/serviceaccount.yaml",
        "41957e677f2fb011c0659ef1b1fd1b652c3c9de15ff77b081d1b950020537507",
    ),
];

const CLIENT_CHART_2_8: [(&str, &str); 7] = [
    (
        "Chart.yaml",
        "afcc9d4a44738eec6d126b30f54b7ba589bb496bb62821791cb7bbe518487657",
    ),
    (
        "values.yaml",
        "e128b067e84eba7fc126bd59c7a921a4a517c09f8658bf6149d4be0b5e95d30a",
    ),
    (
        "templates/_helpers.tpl",
        "91d06234fa73ae959fd61eca2b4afee55746a7bddedfcf47304de8fcee306da8",
    ),
    (
        "templates/client-deployment.yaml",
        "6bf3dae40665c294e972a087a5fa9c68daa747947875f82aa427e8ba402aac28",
    ),
    (
        "templates/role.yaml",
        "5d6e344be40ce420a1900123a4e0a1c06dfe3c571ed3dc408c4c6601742f7296",
    ),
    (
        "templates/service.yaml",
        "961c68c51b2f7876e26c5821d487058b01ed68a7bb261445d064bd44cdeaabae",
    ),
    (
        "templates/serviceaccount.yaml",
        "41957e677f2fb011c0659ef1b1fd1b652c3c9de15ff77b081d1b950020537507",
    ),
];

#[test]
fn release_2_8_chart_files_are_byte_identical() {
    let env = env();
    let expected = [
        ("server", server_kit(&env), &SERVER_CHART_2_8[..]),
        ("client", client_kit(&env), &CLIENT_CHART_2_8[..]),
    ];
    for (label, kit, files) in expected {
        let chart = prepare(&kit, label, CONFIG, "2.8").join("helm_chart");
        let mut names = template_names(&chart);
        names.iter_mut().for_each(|n| n.insert_str(0, "templates/"));
        names.extend(["Chart.yaml".to_string(), "values.yaml".to_string()]);
        names.sort();
        let mut want: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        want.sort_unstable();
        assert_eq!(names, want, "{label}");
        let got: Vec<(&str, String)> = files.iter().map(|(n, _)| (*n, sha256(&chart.join(n)))).collect();
        let want: Vec<(&str, String)> = files.iter().map(|(n, h)| (*n, h.to_string())).collect();
        assert_eq!(got, want, "{label}: 2.8 chart files changed");
        let values = read(&chart.join("values.yaml"));
        assert!(!values.contains("workspaceConfig") && !values.contains("nodeSelector"));
    }
}
