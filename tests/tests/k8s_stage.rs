//! `flare-deploy k8s stage` / `unstage` (docs/dev/nvflare-2.9-behaviour.md section B and
//! docs/deviations.md "NVFlare 2.9: k8s stage and unstage") with a recording `kubectl`
//! stub first on PATH: the applied manifests (parsed, decoded, validated with
//! `kubernetes-validate --strict`), the record in helm_chart/values.yaml before and
//! after, every error in both formats, `--manifests`, hostile file names and sizes, the
//! OUTPUT_STAGED guard of prepare, and the staged chart rendered by `helm template`.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use flare_deploy_core::naming::stable_k8s_name;
use flare_deploy_tests::fsutil::{read, tempdir, write_file};
use flare_deploy_tests::harness::{prepare_for_release, run_exact};
use flare_deploy_tests::json::keys;
use flare_deploy_tests::json::names;
use flare_deploy_tests::stub_kubectl::{pairs, Call, StubKubectl};
use flare_deploy_tests::tools::{self, object};
use flare_deploy_tests::{Project, Run, Snapshot};
use serde_json::{json, Value};

const NAMESPACE: &str = "nvflare";
const MOUNT: &str = "/var/tmp/nvflare/workspace";
const CONFIG: &str = "runtime: k8s\nnamespace: nvflare\nparent:\n  docker_image: nvflare/nvflare:2.9.0\n";
const APPLY: [&str; 6] = [
    "apply",
    "--server-side",
    "--force-conflicts",
    "--field-manager=flare-deploy",
    "-f",
    "-",
];
const FAILED_HINT: &str = "Check kubectl access, namespace, and resource quotas.";
const LOCAL_FILES: [&str; 6] = [
    "authorization.json.default",
    "comm_config.json",
    "log_config.json.default",
    "privacy.json.sample",
    "resources.json.default",
    "study_runtime.yaml",
];

// ---------------------------------------------------------------------------------------
// fixture

/// A kit prepared for k8s (NVFlare 2.9) at `out`, and a kubectl stub.
struct Site {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    name: String,
    out: PathBuf,
    stub: StubKubectl,
}

fn prepare(kit: &Path, config: &Path, out: &Path) -> Run {
    prepare_for_release(kit, config, out, "2.9")
}

impl Site {
    fn client() -> Site {
        Site::with("site-1", false, CONFIG)
    }

    fn server() -> Site {
        Site::with("server1", true, CONFIG)
    }

    fn with(name: &str, server: bool, config: &str) -> Site {
        let (tmp, root) = tempdir();
        let project = Project::new("proj");
        let builder = if server {
            project.server(name)
        } else {
            project.client(name)
        };
        let kit = builder.build(&root.join("kits"));
        let config_path = write_file(&root.join("k8s.yaml"), config);
        let out = root.join("out").join(format!("{name}-k8s"));
        prepare(&kit.dir, &config_path, &out).assert_ok();
        Site {
            _tmp: tmp,
            root,
            name: name.to_string(),
            out,
            stub: StubKubectl::new(),
        }
    }

    /// `flare-deploy <args>` with the stub's environment plus `env`.
    fn run(&self, args: &[&dyn AsRef<OsStr>], env: &[(&str, &str)]) -> Run {
        let mut all = self.stub.env();
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let argv: Vec<OsString> = args.iter().map(|a| a.as_ref().to_os_string()).collect();
        run_exact(None, argv, &pairs(&all))
    }

    /// `flare-deploy k8s <action> <out> [extra]`.
    fn action(&self, action: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"k8s", &action, &self.out];
        args.extend(extra.iter().map(|e| e as &dyn AsRef<OsStr>));
        self.run(&args, env)
    }

    fn stage(&self, extra: &[&str]) -> Run {
        self.action("stage", extra, &[])
    }

    fn unstage(&self, extra: &[&str]) -> Run {
        self.action("unstage", extra, &[])
    }

    fn values_path(&self) -> PathBuf {
        self.out.join("helm_chart/values.yaml")
    }

    fn values_text(&self) -> String {
        read(&self.values_path())
    }

    fn values(&self) -> Value {
        serde_yaml::from_str(&self.values_text()).expect("values.yaml parses")
    }

    fn record(&self) -> Value {
        self.values()["workspaceConfig"].clone()
    }

    fn out_str(&self) -> String {
        self.out.display().to_string()
    }
}

fn unstaged_record() -> Value {
    json!({"namespace": null, "local": {"configMapName": null, "items": []},
           "startup": {"secretName": null, "items": []}})
}

fn decode(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text}"))
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

/// `kubernetes-validate --strict` on `text` (skipped without the tool outside CI).
fn validate_manifest(text: &str) {
    let Some(validator) = tools::require("kubernetes-validate") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("manifest.yaml");
    std::fs::write(&file, text).expect("write manifest");
    tools::run_ok(&validator, &["--strict".as_ref(), "--quiet".as_ref(), file.as_os_str()]);
}

/// Checks an applied (or written) object against the folder it bundles and the record:
/// kind, metadata, one key per file in path order, contents byte for byte.
#[track_caller]
fn assert_bundles(object: &Value, kind: &str, name: &str, folder: &Path, items: &Value) {
    assert_eq!(object["apiVersion"], "v1");
    assert_eq!(object["kind"], kind);
    assert_eq!(object["metadata"], json!({"name": name, "namespace": NAMESPACE}));
    let (data_key, order): (&str, &[&str]) = match kind {
        "ConfigMap" => ("binaryData", &["apiVersion", "kind", "metadata", "binaryData"]),
        _ => ("data", &["apiVersion", "kind", "metadata", "type", "data"]),
    };
    assert_eq!(keys(object), order);
    if kind == "Secret" {
        assert_eq!(object["type"], "Opaque");
    }
    let data = object[data_key].as_object().expect("data");
    let items = items.as_array().expect("items");
    assert_eq!(data.len(), items.len());
    for (item, (key, value)) in items.iter().zip(data) {
        assert_eq!(item["key"], json!(key), "items follow the data order");
        let path = item["path"].as_str().expect("path");
        let bytes = std::fs::read(folder.join(path)).expect("bundled file");
        assert_eq!(decode(value.as_str().expect("base64")), bytes, "{path}");
    }
}

#[track_caller]
fn assert_apply_calls(calls: &[Call], program: &str) {
    for call in calls {
        assert_eq!(call.program, program);
        assert_eq!(call.args, APPLY, "server-side apply, the manifest on stdin");
    }
}

/// The full txt error on stderr, nothing on stdout, exit 4.
#[track_caller]
fn assert_txt_error(run: &Run, code: &str, message: &str, hint: &str) {
    assert_eq!(run.code, 4, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, format!("{message}\nHint: {hint}\nCode: {code} (exit 4)\n"));
}

#[track_caller]
fn assert_json_error(run: &Run, code: &str, message: &str, hint: &str) {
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(
        run.json(),
        json!({"schema_version": "1", "status": "error", "exit_code": 4, "error_code": code,
               "message": message, "hint": hint})
    );
}

/// Both formats of one failing action: the same error, and the values untouched.
#[track_caller]
fn assert_refused(site: &Site, action: &str, extra: &[&str], env: &[(&str, &str)], error: (&str, &str, &str)) {
    let (code, message, hint) = error;
    let before = site.values_text();
    assert_txt_error(&site.action(action, extra, env), code, message, hint);
    let mut json_args = extra.to_vec();
    json_args.extend(["--format", "json"]);
    assert_json_error(&site.action(action, &json_args, env), code, message, hint);
    assert_eq!(site.values_text(), before, "{message}: values.yaml unchanged");
}

// ---------------------------------------------------------------------------------------
// stage and unstage

#[test]
fn stage_applies_the_configmap_then_the_secret_and_records_both() {
    for site in [Site::client(), Site::server()] {
        let name = site.name.clone();
        let prepared = site.values_text();
        assert_eq!(site.record(), unstaged_record());
        let run = site.stage(&[]);
        run.assert_ok();
        let (configmap, secret) = (format!("nvflare-local-{name}"), format!("nvflare-startup-{name}"));
        let out = site.out_str();
        let helm = format!("helm upgrade --install {name} {out}/helm_chart --namespace nvflare");
        let startup_files = 4;
        assert_eq!(
            run.stdout,
            format!(
                "namespace: nvflare\nprepared_kit: {out}\nlocal_configmap: {configmap}\nstartup_secret: {secret}\n\
                 local_files: 6\nstartup_files: {startup_files}\nhelm_values: {out}/helm_chart/values.yaml\n\
                 kubectl: kubectl\nnext_step: Start the server/client parent pod with the helm_command.\n\
                 helm_command: {helm}\ncleanup_step: After Helm uninstall, remove the staged credentials with the \
                 cleanup_command.\ncleanup_command: flare-deploy k8s unstage {out} --kubectl kubectl\n"
            )
        );
        assert_eq!(run.stderr, "");

        // Two applies, ConfigMap first; each manifest validates.
        let calls = site.stub.calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_apply_calls(&calls, "kubectl");
        let record = site.record();
        assert_eq!(keys(&record), ["namespace", "local", "startup"]);
        assert_eq!(record["namespace"], NAMESPACE);
        assert_eq!(record["local"]["configMapName"], json!(configmap));
        assert_eq!(record["startup"]["secretName"], json!(secret));
        let local_paths: Vec<&str> = record["local"]["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["path"].as_str())
            .collect();
        assert_eq!(local_paths, LOCAL_FILES);
        assert_eq!(
            record["local"]["items"][0]["key"],
            "f0000-5ce461137eb0-authorization.json.default"
        );
        let applied_configmap = yaml(&calls[0].stdin);
        let applied_secret = yaml(&calls[1].stdin);
        assert_bundles(
            &applied_configmap,
            "ConfigMap",
            &configmap,
            &site.out.join("local"),
            &record["local"]["items"],
        );
        assert_bundles(
            &applied_secret,
            "Secret",
            &secret,
            &site.out.join("startup"),
            &record["startup"]["items"],
        );
        for call in &calls {
            validate_manifest(&call.stdin);
        }

        // The record is the only change to values.yaml: everything else as prepared.
        let mut values = site.values();
        values["workspaceConfig"] = unstaged_record();
        assert_eq!(values, yaml(&prepared));
        // The receipt follows the changed file.
        let receipt = flare_deploy_tests::kitgen::read_json(&site.out.join(".flare-deploy.json"));
        let entry = receipt["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| f["path"] == "helm_chart/values.yaml")
            .expect("values.yaml in the receipt")
            .clone();
        assert_eq!(entry["size"], json!(site.values_text().len()));

        // unstage: one delete, Secret first; the record is cleared to the prepared text.
        site.stub.clear();
        let run = site.unstage(&[]);
        run.assert_ok();
        assert_eq!(
            run.stdout,
            format!(
                "status: unstaged\nnamespace: nvflare\nprepared_kit: {out}\nlocal_configmap: {configmap}\n\
                 helm_values: {out}/helm_chart/values.yaml\nkubectl: kubectl\n"
            )
        );
        let calls = site.stub.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].program, "kubectl");
        assert_eq!(
            calls[0].args,
            [
                "delete",
                &format!("secret/{secret}"),
                &format!("configmap/{configmap}"),
                "--namespace",
                "nvflare",
                "--ignore-not-found=true"
            ]
        );
        assert_eq!(calls[0].stdin, "");
        assert_eq!(
            site.values_text(),
            prepared,
            "unstage restores the prepared values byte for byte"
        );

        // A second unstage has nothing recorded.
        assert_refused(
            &site,
            "unstage",
            &[],
            &[],
            (
                "INVALID_ARGS",
                "The staged Kubernetes namespace is not recorded in the prepared kit.",
                "Pass the namespace used by stage with --namespace.",
            ),
        );
    }
}

#[test]
fn json_results_have_the_same_fields_and_warnings_go_to_stderr() {
    let site = Site::client();
    // A payload above 900 KiB warns (and still stages).
    let big: Vec<u8> = (0..700_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(site.out.join("local/big.bin"), &big).expect("write big file");
    let run = site.stage(&["--format", "json"]);
    run.assert_ok();
    let doc = run.json();
    assert_eq!(doc["status"], "ok");
    let data = &doc["data"];
    assert_eq!(
        keys(data),
        [
            "namespace",
            "prepared_kit",
            "local_configmap",
            "startup_secret",
            "local_files",
            "startup_files",
            "helm_values",
            "kubectl",
            "next_step",
            "helm_command",
            "cleanup_step",
            "cleanup_command"
        ]
    );
    assert_eq!(data["local_files"], 7);
    assert_eq!(data["startup_files"], 4);
    let encoded = site.stub.calls()[0].stdin.len();
    assert!(encoded > 900 * 1024, "{encoded}");
    let warning = run.stderr.lines().next().unwrap_or_default();
    assert!(
        warning.starts_with("Warning: ConfigMap 'nvflare-local-site-1' encoded payload is about ")
            && warning.ends_with(
                " bytes; Kubernetes objects have size limits, so large local/startup folders may fail to apply."
            ),
        "{}",
        run.stderr
    );
    // txt: the warning comes first on stdout.
    let run = site.stage(&[]);
    run.assert_ok();
    assert!(
        run.stdout.starts_with("Warning: ConfigMap 'nvflare-local-site-1'"),
        "{}",
        run.stdout
    );
    let run = site.unstage(&["--format", "json"]);
    run.assert_ok();
    assert_eq!(
        keys(&run.json()["data"]),
        [
            "status",
            "namespace",
            "prepared_kit",
            "local_configmap",
            "helm_values",
            "kubectl"
        ]
    );
}

#[test]
fn restaging_is_idempotent_and_a_changed_binding_is_refused() {
    let site = Site::client();
    site.stage(&[]).assert_ok();
    let first = site.values_text();
    let first_calls = site.stub.calls();
    site.stub.clear();
    site.stage(&["--namespace", "nvflare"]).assert_ok();
    assert_eq!(site.values_text(), first);
    assert_eq!(site.stub.calls(), first_calls, "the same objects are applied again");
    let hint = "Run flare-deploy k8s unstage before changing staged resource names or namespace.";
    for (option, value, label) in [
        ("--namespace", "other", "namespace"),
        ("--local-configmap", "other-local", "local ConfigMap"),
        ("--startup-secret", "other-startup", "startup Secret"),
    ] {
        assert_refused(
            &site,
            "stage",
            &[option, value],
            &[],
            (
                "INVALID_ARGS",
                &format!("Prepared kit is already staged with a different {label}."),
                hint,
            ),
        );
        // unstage refuses an override that does not match the record.
        assert_refused(
            &site,
            "unstage",
            &[option, value],
            &[],
            (
                "INVALID_ARGS",
                &format!("Requested {label} does not match the value recorded by stage."),
                "Omit the override to use the target recorded by stage.",
            ),
        );
    }
    // A record with names but no namespace (an older stage) needs --namespace.
    let legacy = site
        .values_text()
        .replace("  namespace: nvflare\n", "  namespace: null\n");
    std::fs::write(site.values_path(), legacy).expect("write values");
    assert_refused(
        &site,
        "stage",
        &[],
        &[],
        (
            "INVALID_ARGS",
            "The existing staged resource names do not include their Kubernetes namespace.",
            "Pass the original stage namespace with --namespace before restaging this legacy prepared kit.",
        ),
    );
    site.stage(&["--namespace", "nvflare"]).assert_ok();
    assert_eq!(site.values_text(), first);
}

#[test]
fn names_and_namespace_default_from_the_launcher_and_can_be_chosen() {
    // No namespace in the config: the launcher's is `default`.
    let config = "runtime: k8s\nparent:\n  docker_image: nvflare/nvflare:2.9.0\n";
    let site = Site::with("Site_A", false, config);
    let run = site.stage(&["--format", "json"]);
    run.assert_ok();
    let data = run.json()["data"].clone();
    assert_eq!(data["namespace"], "default");
    // A site name that is not a DNS label gets the stable name of the chart.
    let safe = stable_k8s_name("Site_A", 63);
    assert_eq!(data["local_configmap"], json!(format!("nvflare-local-{safe}")));
    assert_eq!(data["startup_secret"], json!(format!("nvflare-startup-{safe}")));
    let release = stable_k8s_name("Site_A", 53);
    assert!(
        data["helm_command"]
            .as_str()
            .is_some_and(|c| c.starts_with(&format!("helm upgrade --install {release} "))),
        "{data}"
    );
    site.unstage(&[]).assert_ok();

    // Chosen names and namespace; unstage then finds them in the record.
    site.stub.clear();
    let run = site.stage(&[
        "--namespace",
        "fl-prod",
        "--local-configmap",
        "a.local",
        "--startup-secret",
        "a.startup",
        "--format",
        "json",
    ]);
    run.assert_ok();
    let data = run.json()["data"].clone();
    assert_eq!(
        (&data["namespace"], &data["local_configmap"], &data["startup_secret"]),
        (&json!("fl-prod"), &json!("a.local"), &json!("a.startup"))
    );
    for call in site.stub.calls() {
        assert_eq!(yaml(&call.stdin)["metadata"]["namespace"], "fl-prod");
    }
    site.stub.clear();
    site.unstage(&[]).assert_ok();
    assert_eq!(
        site.stub.calls()[0].args[1..3],
        ["secret/a.startup", "configmap/a.local"]
    );
    assert_eq!(site.record(), unstaged_record());
}

#[test]
fn invalid_namespace_and_names_are_refused_without_echoing_names() {
    let site = Site::client();
    let rule = "Use lower case alphanumeric characters or '-', start and end with an alphanumeric character, and \
                keep length <= 63.";
    let object_rule = "Use lower case alphanumeric characters, '-', or '.', start and end with an alphanumeric \
                       character, and keep length <= 253.";
    assert_refused(
        &site,
        "stage",
        &["--namespace", "Bad_NS"],
        &[],
        (
            "INVALID_ARGS",
            "stage namespace must be a valid Kubernetes namespace (DNS-1123 label): 'Bad_NS'.",
            &format!("{rule} Use a valid --namespace value."),
        ),
    );
    assert_refused(
        &site,
        "stage",
        &["--local-configmap", "Not_Valid"],
        &[],
        (
            "INVALID_ARGS",
            "local ConfigMap name must contain valid Kubernetes object names.",
            &format!("{object_rule} Use a valid --local-configmap value."),
        ),
    );
    let secret_like = "hunter2-Secret!";
    let run = site.stage(&["--startup-secret", secret_like]);
    assert_txt_error(
        &run,
        "INVALID_ARGS",
        "startup Secret name must contain valid Kubernetes object names.",
        &format!("{object_rule} Use a valid --startup-secret value."),
    );
    assert!(!run.stderr.contains(secret_like));
    assert!(site.stub.calls().is_empty(), "nothing was applied");
    assert_refused(
        &site,
        "unstage",
        &["--namespace", "x", "--local-configmap", "a", "--startup-secret", "B"],
        &[],
        (
            "INVALID_ARGS",
            "startup Secret name must contain valid Kubernetes object names.",
            &format!("{object_rule} Use the exact Secret name passed to stage."),
        ),
    );
}

// ---------------------------------------------------------------------------------------
// kubectl

#[test]
fn the_cli_is_kubectl_or_oc_from_the_option_or_the_environment() {
    let site = Site::client();
    let run = site.stage(&["--kubectl", "oc", "--format", "json"]);
    run.assert_ok();
    assert_eq!(run.json()["data"]["kubectl"], "oc");
    assert!(run.json()["data"]["cleanup_command"]
        .as_str()
        .is_some_and(|c| c.ends_with(" --kubectl oc")));
    assert_apply_calls(&site.stub.calls(), "oc");
    site.stub.clear();
    site.action("unstage", &[], &[("KUBECTL", " oc ")]).assert_ok();
    assert_eq!(site.stub.calls()[0].program, "oc");
    site.stub.clear();
    site.action("stage", &[], &[("KUBECTL", "oc")]).assert_ok();
    assert_apply_calls(&site.stub.calls(), "oc");
    site.unstage(&[]).assert_ok();
    site.stub.clear();

    let one_of = (
        "INVALID_ARGS",
        "Kubernetes CLI command must be one of ['kubectl', 'oc'].",
        "Set --kubectl or KUBECTL to kubectl or oc.",
    );
    // The same message for both sources, the value not echoed.
    assert_refused(&site, "stage", &[], &[("KUBECTL", "/usr/bin/kubectl")], one_of);
    assert_refused(&site, "stage", &["--kubectl", "kubectl-1.30"], &[], one_of);
    assert_refused(
        &site,
        "unstage",
        &["--namespace", "ns", "--local-configmap", "a", "--startup-secret", "b"],
        &[("KUBECTL", "sudo")],
        one_of,
    );
    assert_refused(
        &site,
        "stage",
        &[],
        &[("KUBECTL", "   ")],
        (
            "INVALID_ARGS",
            "Kubernetes CLI command must be a non-empty string.",
            "Set --kubectl or KUBECTL.",
        ),
    );
    assert!(site.stub.calls().is_empty());
}

#[test]
fn a_missing_cli_is_reported_before_anything_is_recorded() {
    let site = Site::client();
    let env = site.stub.env_without_cli();
    let prepared = site.values_text();
    for format in ["txt", "json"] {
        let run = run_exact(
            None,
            [
                OsStr::new("k8s"),
                OsStr::new("stage"),
                site.out.as_os_str(),
                OsStr::new("--format"),
                OsStr::new(format),
            ],
            &pairs(&env),
        );
        let message = "Kubernetes CLI executable could not be started: kubectl";
        let hint = "Install kubectl or set --kubectl/KUBECTL to a compatible command such as oc.";
        match format {
            "txt" => assert_txt_error(&run, "KUBECTL_NOT_FOUND", message, hint),
            _ => assert_json_error(&run, "KUBECTL_NOT_FOUND", message, hint),
        }
        assert_eq!(site.values_text(), prepared, "not recorded: the kit is not staged");
    }
    // Unstage of a recorded stage likewise keeps the record.
    site.stage(&[]).assert_ok();
    let staged = site.values_text();
    let run = run_exact(
        None,
        [OsStr::new("k8s"), OsStr::new("unstage"), site.out.as_os_str()],
        &pairs(&env),
    );
    assert_eq!(run.code, 4);
    assert!(
        run.stderr.ends_with("Code: KUBECTL_NOT_FOUND (exit 4)\n"),
        "{}",
        run.stderr
    );
    assert_eq!(site.values_text(), staged);
    // Without a cluster, the record is cleared through an empty --manifests directory
    // (docs/deploying-k8s.md, "When kubectl fails").
    let nowhere = site.root.join("no-manifests");
    let run = run_exact(
        None,
        [
            OsStr::new("k8s"),
            OsStr::new("unstage"),
            site.out.as_os_str(),
            OsStr::new("--manifests"),
            nowhere.as_os_str(),
        ],
        &pairs(&env),
    );
    run.assert_ok();
    assert_eq!(site.record(), unstaged_record());
    assert!(!nowhere.exists(), "unstage creates no directory");
}

#[test]
fn a_failing_cli_stops_at_the_first_failure_and_keeps_the_record() {
    let site = Site::client();
    let message = |detail: &str| format!("Kubernetes command failed: kubectl {}\n{detail}", APPLY.join(" "));
    // The ConfigMap fails: the Secret is not applied; the record stays for unstage.
    let env = [
        ("KUBECTL_STUB_FAIL_AT", "0"),
        ("KUBECTL_STUB_STDERR", "error: forbidden: nope"),
    ];
    let run = site.action("stage", &[], &env);
    assert_txt_error(&run, "KUBECTL_FAILED", &message("error: forbidden: nope"), FAILED_HINT);
    assert_eq!(site.stub.calls().len(), 1);
    assert_eq!(site.record()["local"]["configMapName"], "nvflare-local-site-1");
    // The Secret fails (json); stdout is the detail when stderr is empty.
    site.stub.clear();
    let env = [
        ("KUBECTL_STUB_FAIL_AT", "1"),
        ("KUBECTL_STUB_STDERR", ""),
        ("KUBECTL_STUB_STDOUT", "quota exceeded"),
    ];
    let run = site.action("stage", &["--format", "json"], &env);
    assert_json_error(&run, "KUBECTL_FAILED", &message("quota exceeded"), FAILED_HINT);
    assert_eq!(site.stub.calls().len(), 2);

    // The half-staged output is protected until unstaged.
    let config = site.root.join("k8s.yaml");
    let kit = site.root.join("kits/site-1");
    let run = prepare(&kit, &config, &site.out);
    let hint = format!(
        "After Helm uninstall, run flare-deploy k8s unstage {} before replacing this output.",
        site.out_str()
    );
    assert_txt_error(
        &run,
        "OUTPUT_STAGED",
        &format!(
            "Prepared Kubernetes output still has staged resources: {}",
            site.out_str()
        ),
        &hint,
    );

    // A failing delete masks the Secret's name and keeps the record.
    site.stub.clear();
    let staged = site.values_text();
    let env = [
        ("KUBECTL_STUB_FAIL_AT", "0"),
        ("KUBECTL_STUB_STDERR", "error: forbidden: nope"),
    ];
    let run = site.action("unstage", &["--format", "json"], &env);
    assert_json_error(
        &run,
        "KUBECTL_FAILED",
        "Kubernetes command failed: kubectl delete 'secret/<staged-name>' configmap/nvflare-local-site-1 --namespace \
         nvflare --ignore-not-found=true\nerror: forbidden: nope",
        FAILED_HINT,
    );
    assert!(!run.stdout.contains("nvflare-startup-site-1"));
    assert_eq!(site.values_text(), staged);
    site.unstage(&[]).assert_ok();
    prepare(&kit, &config, &site.out).assert_ok();
}

#[test]
fn secret_contents_appear_in_no_output_or_log() {
    let site = Site::client();
    let key = std::fs::read_to_string(site.out.join("startup/client.key")).expect("client.key");
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(key.as_bytes());
    let key_lines: Vec<&str> = key
        .lines()
        .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
        .collect();
    assert!(!key_lines.is_empty());
    let assert_clean = |run: &Run, what: &str| {
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(!all.contains(&key_b64), "{what}: the key's base64 was printed:\n{all}");
        for line in &key_lines {
            assert!(!all.contains(line), "{what}: a line of the key was printed:\n{all}");
        }
        // No fragment of the base64 either (a CLI may truncate what it shows).
        for start in (0..key_b64.len().saturating_sub(24)).step_by(8) {
            let fragment = &key_b64[start..start + 24];
            assert!(
                !all.contains(fragment),
                "{what}: a fragment of the key's base64 was printed:\n{all}"
            );
        }
    };
    // A CLI that prints the whole manifest it could not apply, with -v.
    let env = [
        ("KUBECTL_STUB_FAIL_AT", "1"),
        ("KUBECTL_STUB_ECHO_STDIN", "1"),
        ("KUBECTL_STUB_STDERR", "error: the server rejected the object"),
    ];
    for extra in [&["-v"][..], &["-v", "--format", "json"][..]] {
        site.stub.clear();
        let run = site.action("stage", extra, &env);
        assert_eq!(run.code, 4);
        assert!(run.stdout.contains("KUBECTL_FAILED") || run.stderr.contains("KUBECTL_FAILED"));
        assert!(
            run.stdout.contains("error: the server rejected the object")
                || run.stderr.contains("error: the server rejected the object")
        );
        assert!(
            run.stderr.contains("<redacted>") || run.stdout.contains("<redacted>"),
            "{}",
            run.stderr
        );
        assert_clean(&run, "failed stage -v");
    }
    let run = site.action("stage", &["-v"], &[]);
    run.assert_ok();
    assert!(run.stderr.contains("DEBUG"), "debug logs are on: {}", run.stderr);
    assert_clean(&run, "stage -v");
    let dir = site.root.join("gitops");
    let run = site.action("stage", &["-v", "--manifests", dir.to_str().expect("utf-8")], &[]);
    run.assert_ok();
    assert_clean(&run, "stage --manifests -v");
}

// ---------------------------------------------------------------------------------------
// the kit

#[test]
fn kit_arguments_and_kit_errors() {
    let site = Site::client();
    let run = site.run(&[&"k8s", &"stage"], &[]);
    assert_txt_error(
        &run,
        "INVALID_ARGS",
        "Missing prepared startup kit directory.",
        "Run flare-deploy k8s stage <prepared-kit-dir>.",
    );
    let run = site.run(&[&"k8", &"unstage", &"--format", &"json"], &[]);
    assert_json_error(
        &run,
        "INVALID_ARGS",
        "Missing prepared startup kit directory.",
        "Run flare-deploy k8s unstage <prepared-kit-dir>.",
    );
    let run = site.run(&[&"k8s", &"stage", &site.out, &"--kit", &site.out], &[]);
    assert_txt_error(
        &run,
        "INVALID_ARGS",
        "Specify the prepared startup kit only once.",
        "Use either positional kit or --kit.",
    );
    // --kit alone works.
    site.run(&[&"k8s", &"stage", &"--kit", &site.out], &[]).assert_ok();
    site.unstage(&[]).assert_ok();
    for action in ["stage", "unstage"] {
        let missing = site.root.join("nope");
        let run = site.run(&[&"k8s", &action, &missing], &[]);
        assert_txt_error(
            &run,
            "INVALID_KIT",
            &format!("Prepared kit directory does not exist: {}", missing.display()),
            "Provide an existing prepared kit (an output of flare-deploy prepare).",
        );
    }

    // A Docker output is not a Kubernetes one.
    let docker = write_file(
        &site.root.join("docker.yaml"),
        "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.9.0\n",
    );
    let docker_out = site.root.join("out/docker");
    prepare(&site.root.join("kits/site-1"), &docker, &docker_out).assert_ok();
    let run = site.run(&[&"k8s", &"stage", &docker_out], &[]);
    assert_txt_error(
        &run,
        "INVALID_KIT",
        &format!(
            "Input folder was not generated for the Kubernetes runtime: {}",
            docker_out.display()
        ),
        "Run flare-deploy prepare with runtime: k8s and pass that prepared output directory to flare-deploy k8s \
         stage.",
    );
    // A kit prepared for NVFlare 2.8: its chart would never mount the objects.
    let out_2_8 = site.root.join("out/site-1-k8s-2.8");
    let run = prepare_for_release(
        &site.root.join("kits/site-1"),
        &site.root.join("k8s.yaml"),
        &out_2_8,
        "2.8",
    );
    run.assert_ok();
    assert_txt_error(
        &site.run(&[&"k8s", &"stage", &out_2_8], &[]),
        "INVALID_KIT",
        &format!(
            "Prepared kit was prepared for NVFlare 2.8, whose chart does not mount staged volumes: {}",
            out_2_8.display()
        ),
        "Prepare it again for NVFlare 2.9 (--nvflare-version 2.9 or nvflare_version: \"2.9\"), then stage.",
    );
    assert_eq!(
        site.stub.calls().len(),
        3,
        "stage and unstage with --kit, nothing since"
    );
    assert!(!docker_out.join("helm_chart").exists());
}

#[test]
fn folders_values_and_files_that_cannot_be_staged() {
    let run_prepare = "Run flare-deploy prepare with runtime: k8s before staging.";
    let fresh = Site::client;
    // No values.yaml.
    let site = fresh();
    std::fs::remove_file(site.values_path()).expect("rm values");
    let snapshot = Snapshot::take(&site.out, &[]);
    assert_txt_error(
        &site.stage(&[]),
        "INVALID_KIT",
        &format!("Missing Helm values file: {}", site.values_path().display()),
        run_prepare,
    );
    Snapshot::take(&site.out, &[]).assert_same_as(&snapshot, "the output");
    // An unparseable values.yaml.
    std::fs::write(site.values_path(), "a: [\n").expect("write");
    let run = site.stage(&[]);
    assert!(
        run.stderr.starts_with("Failed to parse Helm values: "),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .ends_with("Hint: Fix helm_chart/values.yaml.\nCode: INVALID_KIT (exit 4)\n"));
    std::fs::write(site.values_path(), "workspaceConfig: [1]\n").expect("write");
    assert_txt_error(
        &site.stage(&[]),
        "INVALID_KIT",
        "helm_chart/values.yaml workspaceConfig must be a mapping.",
        "Fix the prepared chart.",
    );

    // local/ missing, or a symlink.
    let site = fresh();
    let local = site.out.join("local");
    std::fs::rename(&local, site.root.join("moved-local")).expect("move local");
    assert_txt_error(
        &site.stage(&[]),
        "INVALID_KIT",
        &format!("Missing prepared kit folder: {}", local.display()),
        run_prepare,
    );
    std::os::unix::fs::symlink(site.root.join("moved-local"), &local).expect("link");
    assert_txt_error(
        &site.stage(&[]),
        "INVALID_KIT",
        &format!("Prepared kit folder must not be a symlink: {}", local.display()),
        "Use a prepared K8s kit whose local/ and startup/ folders are regular directories.",
    );

    // A symlink inside local/ (even to a file inside), and an empty startup/.
    let site = fresh();
    let link = site.out.join("local/linked.json");
    std::os::unix::fs::symlink("comm_config.json", &link).expect("link");
    assert_refused(
        &site,
        "stage",
        &[],
        &[],
        (
            "INVALID_KIT",
            &format!("Symlinks cannot be staged into Kubernetes volumes: {}", link.display()),
            "Replace it with a file.",
        ),
    );
    std::fs::remove_file(&link).expect("rm link");
    let startup = site.out.join("startup");
    std::fs::rename(&startup, site.root.join("old-startup")).expect("move");
    std::fs::create_dir_all(startup.join("empty/deeper")).expect("mkdir");
    assert_refused(
        &site,
        "stage",
        &[],
        &[],
        (
            "INVALID_KIT",
            &format!("No files found in prepared kit folder: {}", startup.display()),
            "Stage a non-empty prepared folder.",
        ),
    );
    // A name Kubernetes cannot project (kubelet's own `..data`), and a folder too large
    // to be any object.
    std::fs::remove_dir_all(&startup).expect("rm");
    std::fs::rename(site.root.join("old-startup"), &startup).expect("move back");
    let dots = site.out.join("local/..data");
    std::fs::write(&dots, "x").expect("write");
    assert_refused(
        &site,
        "stage",
        &[],
        &[],
        (
            "INVALID_KIT",
            &format!("Unsafe staged file path: {}", dots.display()),
            "Use files contained under local/ or startup/.",
        ),
    );
    std::fs::remove_file(&dots).expect("rm");
    let huge = std::fs::File::create(site.out.join("local/huge.bin")).expect("create");
    huge.set_len(17 << 20).expect("sparse 17 MiB");
    let run = site.stage(&[]);
    assert_eq!(run.code, 4);
    assert!(
        run.stderr.starts_with(&format!(
            "Prepared kit folder is too large to stage: {}",
            site.out.join("local").display()
        )),
        "{}",
        run.stderr
    );
    assert!(site.stub.calls().is_empty(), "nothing applied");
    assert_eq!(site.record(), unstaged_record(), "nothing recorded");
}

#[test]
fn hostile_file_names_are_staged_as_themselves() {
    let site = Site::client();
    let names = [
        "sub dir/we'ird $(touch x) `y`.json",
        "unicod\u{e9}/\u{65e5}\u{672c}.txt",
        ".hidden",
        "a/b/c/d/e/deep.yaml",
        "-leading-dash",
        "new\nline",
    ];
    for name in names {
        write_file(&site.out.join("local").join(name), &format!("content of {name}"));
    }
    std::fs::create_dir_all(site.out.join("local/empty-dir")).expect("mkdir");
    let run = site.stage(&["--format", "json"]);
    run.assert_ok();
    assert_eq!(
        run.json()["data"]["local_files"],
        json!(LOCAL_FILES.len() + names.len())
    );
    let record = site.record();
    let items = &record["local"]["items"];
    let paths: Vec<&str> = items
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["path"].as_str())
        .collect();
    for name in names {
        assert!(paths.contains(&name), "{name:?} staged under its own path: {paths:?}");
    }
    for item in items.as_array().expect("items") {
        let key = item["key"].as_str().expect("key");
        assert!(
            key.len() <= 253 && key.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)),
            "{key}"
        );
    }
    let calls = site.stub.calls();
    assert_bundles(
        &yaml(&calls[0].stdin),
        "ConfigMap",
        "nvflare-local-site-1",
        &site.out.join("local"),
        items,
    );
    validate_manifest(&calls[0].stdin);
    // The chart renders the items as they are (and the objects validate).
    if let Some(objects) = tools::render_chart(&site.out.join("helm_chart"), "site-1", NAMESPACE) {
        let volumes = &object(&objects, "Deployment", "site-1")["spec"]["template"]["spec"]["volumes"];
        assert_eq!(volumes[1]["configMap"]["items"], *items);
    }
}

// ---------------------------------------------------------------------------------------
// --manifests

#[test]
fn manifests_are_written_instead_of_applied() {
    let site = Site::server();
    let dir = site.root.join("gitops/server1");
    let dir_text = dir.display().to_string();
    let run = site.stage(&["--manifests", &dir_text]);
    run.assert_ok();
    assert!(site.stub.calls().is_empty(), "no kubectl");
    let (configmap_file, secret_file) = (
        dir.join("configmap-nvflare-local-server1.yaml"),
        dir.join("secret-nvflare-startup-server1.yaml"),
    );
    let out = site.out_str();
    assert_eq!(
        run.stdout,
        format!(
            "namespace: nvflare\nprepared_kit: {out}\nlocal_configmap: nvflare-local-server1\n\
             startup_secret: nvflare-startup-server1\nlocal_files: 6\nstartup_files: 4\n\
             helm_values: {out}/helm_chart/values.yaml\nmanifests: {dir_text}\nlocal_manifest: {}\n\
             startup_manifest: {}\nnext_step: Apply the two manifests through your pipeline, then start the \
             server/client parent pod with the helm_command.\nhelm_command: helm upgrade --install server1 \
             {out}/helm_chart --namespace nvflare\ncleanup_step: After Helm uninstall, delete the two objects \
             through your pipeline and clear the record with the cleanup_command.\ncleanup_command: flare-deploy \
             k8s unstage {out} --manifests {dir_text}\n",
            configmap_file.display(),
            secret_file.display()
        )
    );
    assert_eq!(
        std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777,
        0o700
    );
    let record = site.record();
    for (file, kind, name, folder, items) in [
        (
            &configmap_file,
            "ConfigMap",
            "nvflare-local-server1",
            "local",
            &record["local"]["items"],
        ),
        (
            &secret_file,
            "Secret",
            "nvflare-startup-server1",
            "startup",
            &record["startup"]["items"],
        ),
    ] {
        assert_eq!(
            std::fs::metadata(file).expect("manifest").permissions().mode() & 0o777,
            0o600
        );
        let text = read(file);
        assert_bundles(&yaml(&text), kind, name, &site.out.join(folder), items);
        validate_manifest(&text);
        assert!(
            !run.stdout.contains(&text[text.len() - 40..]),
            "contents are never printed"
        );
    }
    let secret_text = read(&secret_file);
    let data = yaml(&secret_text)["data"].clone();
    for value in data.as_object().expect("data").values() {
        assert!(!run.stdout.contains(value.as_str().expect("b64")));
    }

    // --kubectl with --manifests, and --manifests inside local/, are refused.
    assert_refused(
        &site,
        "stage",
        &["--manifests", &dir_text, "--kubectl", "oc"],
        &[],
        (
            "INVALID_ARGS",
            "--manifests and --kubectl exclude each other.",
            "Pass --manifests to write the manifests, or --kubectl to apply them.",
        ),
    );
    let inside = site.out.join("startup/manifests");
    assert_refused(
        &site,
        "stage",
        &["--manifests", inside.to_str().expect("utf-8")],
        &[],
        (
            "INVALID_ARGS",
            &format!(
                "--manifests must not be inside the kit's local/ or startup/ folder: {}",
                inside.display()
            ),
            "Choose a directory outside local/ and startup/; their files are what stage bundles.",
        ),
    );
    assert!(!inside.exists());

    // unstage --manifests removes the files and clears the record, without kubectl.
    let run = site.unstage(&["--manifests", &dir_text, "--format", "json"]);
    run.assert_ok();
    assert_eq!(run.json()["data"]["manifests"], json!(dir_text));
    assert!(!configmap_file.exists() && !secret_file.exists());
    assert!(site.stub.calls().is_empty());
    assert_eq!(site.record(), unstaged_record());
}

// ---------------------------------------------------------------------------------------
// the chart and the prepare guard

#[test]
fn helm_renders_both_staged_volumes_read_only_with_the_recorded_items() {
    for site in [Site::client(), Site::server()] {
        site.stage(&[]).assert_ok();
        let record = site.record();
        let Some(objects) = tools::render_chart(&site.out.join("helm_chart"), &site.name, NAMESPACE) else {
            return;
        };
        let pod = &object(&objects, "Deployment", &site.name)["spec"]["template"]["spec"];
        assert_eq!(
            pod["volumes"],
            json!([
                {"name": "workspace", "persistentVolumeClaim": {"claimName": "nvflws"}},
                {"name": "workspace-local", "configMap": {"name": format!("nvflare-local-{}", site.name),
                                                          "items": record["local"]["items"]}},
                {"name": "workspace-startup", "secret": {"secretName": format!("nvflare-startup-{}", site.name),
                                                         "items": record["startup"]["items"]}},
            ])
        );
        assert_eq!(
            pod["containers"][0]["volumeMounts"],
            json!([
                {"name": "workspace", "mountPath": MOUNT},
                {"name": "workspace-local", "mountPath": format!("{MOUNT}/local"), "readOnly": true},
                {"name": "workspace-startup", "mountPath": format!("{MOUNT}/startup"), "readOnly": true},
            ])
        );
        // Unstaged again, the chart mounts only the workspace.
        site.unstage(&[]).assert_ok();
        let objects = tools::render_chart(&site.out.join("helm_chart"), &site.name, NAMESPACE).expect("tools");
        let pod = &object(&objects, "Deployment", &site.name)["spec"]["template"]["spec"];
        assert_eq!(pod["volumes"].as_array().map(Vec::len), Some(1));
    }
}

#[test]
fn prepare_refuses_to_replace_a_staged_output_for_any_runtime() {
    let site = Site::client();
    site.stage(&[]).assert_ok();
    let docker = write_file(
        &site.root.join("docker.yaml"),
        "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.9.0\n",
    );
    let kit = site.root.join("kits/site-1");
    let message = format!(
        "Prepared Kubernetes output still has staged resources: {}",
        site.out_str()
    );
    let hint = format!(
        "After Helm uninstall, run flare-deploy k8s unstage {} before replacing this output.",
        site.out_str()
    );
    let snapshot = Snapshot::take(&site.out, &[]);
    for config in [site.root.join("k8s.yaml"), docker] {
        assert_txt_error(&prepare(&kit, &config, &site.out), "OUTPUT_STAGED", &message, &hint);
        Snapshot::take(&site.out, &[]).assert_same_as(&snapshot, "the staged output");
    }
    // A path that needs quoting is quoted in the hint.
    let spaced = Site::with("site-1", false, CONFIG);
    let odd = spaced.root.join("out/my kit");
    std::fs::rename(&spaced.out, &odd).expect("rename");
    let run = spaced.run(&[&"k8s", &"stage", &odd], &[]);
    run.assert_ok();
    let run = prepare(&spaced.root.join("kits/site-1"), &spaced.root.join("k8s.yaml"), &odd);
    assert!(
        run.stderr
            .contains(&format!("run flare-deploy k8s unstage '{}' before", odd.display())),
        "{}",
        run.stderr
    );
    site.unstage(&[]).assert_ok();
    prepare(&kit, &site.root.join("k8s.yaml"), &site.out).assert_ok();
}

// ---------------------------------------------------------------------------------------
// the command line

#[test]
fn actions_have_help_schema_and_usage_errors() {
    let site = Site::client();
    let run = site.run(&[&"k8", &"stage", &"--schema", &"--bogus"], &[]);
    run.assert_ok();
    let schema: Value = serde_json::from_str(&run.stdout).expect("schema JSON");
    assert_eq!(schema["command"], "flare-deploy k8s stage");
    let names = names(&schema["args"]);
    assert_eq!(
        names,
        [
            "kit",
            "--kit",
            "--namespace",
            "--local-configmap",
            "--startup-secret",
            "--kubectl",
            "--manifests",
            "--schema"
        ]
    );
    assert_eq!(schema["args"][5]["choices"], json!(["kubectl", "oc"]));
    let run = site.run(&[&"k8s", &"unstage", &"--schema"], &[]);
    run.assert_ok();
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).expect("json")["command"],
        "flare-deploy k8s unstage"
    );

    let help = site.run(&[&"k8s", &"--help"], &[]);
    help.assert_ok();
    for text in ["stage", "unstage", "flare-deploy k8s <stage|unstage>"] {
        assert!(help.stdout.contains(text), "{text}: {}", help.stdout);
    }
    let help = site.run(&[&"k8s", &"stage", &"--help"], &[]);
    help.assert_ok();
    assert!(help.stdout.contains("--manifests <DIR>") && help.stdout.contains("Exit codes:"));

    for (args, detail) in [
        (vec!["k8s"], "k8s action required"),
        (vec!["k8s", "frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (vec!["k8s", "stage", "--bogus"], "unexpected argument '--bogus'"),
        (vec!["docker", "stage"], "runtime 'docker' has no actions"),
    ] {
        let argv: Vec<&dyn AsRef<OsStr>> = args.iter().map(|a| a as &dyn AsRef<OsStr>).collect();
        let run = site.run(&argv, &[]);
        assert_eq!(run.code, 4, "{args:?}");
        assert!(
            run.stderr.contains(&format!("Invalid arguments. \u{2014} {detail}")),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.ends_with("Code: INVALID_ARGS (exit 4)\n"));
    }
    assert!(site.stub.calls().is_empty());
}
