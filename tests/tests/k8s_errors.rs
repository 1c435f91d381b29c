//! `runtime: k8s` config validation (reference spec 2.3, 2.4, 6.3; spec 8 cases 19,
//! 23-26; our deviations 1, 2, 8, 9): every error in the reference's order, with code
//! INVALID_CONFIG, exact message and hint, exit 4, nothing written and the kit unchanged.

use std::ffi::OsStr;
use std::path::PathBuf;

use flare_deploy_tests::harness::Run;
use flare_deploy_tests::{flare_deploy, oracle, Kit, Project, Snapshot};
use serde_json::Value;
use tempfile::TempDir;

const FIX: &str = "Fix the runtime config.";
// A missing or scalar `parent:` says what it needs (deviation L10).
const ADD_PARENT: &str = "Add a parent: section to the runtime config; parent.docker_image is required.";
const PARENT_KEYS: &str =
    "Fix the runtime config. parent must hold keys (parent.docker_image is required), not a single value.";
const UNKNOWN: &str = "Remove or rename unsupported keys.";
const NS_HINT: &str = "Use lower case alphanumeric characters or '-', start and end with an alphanumeric \
                       character, and keep length <= 63.";
const SVC_HINT: &str = "Use lower case alphanumeric characters or '-', start with a letter, end with an \
                        alphanumeric character, and keep length <= 63.";
const SECRET_HINT: &str = "Use lower case alphanumeric characters, '-', or '.', start and end with an \
                           alphanumeric character, and keep length <= 253.";
const PARENT_LIST: &str = "parent image pull references must be a list of Kubernetes object names.";
const PARENT_NAMES: &str = "parent image pull references must contain valid Kubernetes object names.";
const JOB_LIST: &str = "job launcher image pull references must be a list of Kubernetes object names.";
const JOB_NAMES: &str = "job launcher image pull references must contain valid Kubernetes object names.";
const HEAD: &str = "runtime: k8s\nparent:\n  docker_image: img\n";

struct Fixture {
    _tmp: TempDir,
    root: PathBuf,
    kit: Kit,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().canonicalize().expect("canonical");
    let kit = Project::new("proj").client("site-1").build(&root);
    Fixture { _tmp: tmp, root, kit }
}

/// Runs `prepare <kit>` with the config in `<kit>/config.yaml` and the default output,
/// and checks the txt error, that nothing was written and that the kit is unchanged.
#[track_caller]
fn assert_rejected(kit: &Kit, config: &str, message: &str, hint: &str) {
    kit.write_config(config);
    let before = Snapshot::take(&kit.dir, &[]);
    let run = flare_deploy([OsStr::new("prepare"), kit.dir.as_os_str()]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (
            4,
            "",
            format!("{message}\nHint: {hint}\nCode: INVALID_CONFIG (exit 4)\n").as_str()
        ),
        "config:\n{config}"
    );
    assert!(!kit.path("prepared").exists(), "config:\n{config}");
    assert!(
        Snapshot::take(&kit.dir, &[]) == before,
        "input kit changed; config:\n{config}"
    );
}

/// The same with `--format json`, an explicit `--config` and `--output` outside the kit.
#[track_caller]
fn assert_rejected_json(fixture: &Fixture, config: &str, message: &str, hint: &str) -> Run {
    let config_path = fixture.root.join("k8s.yaml");
    std::fs::write(&config_path, config).expect("write config");
    let out = fixture.root.join("out").join("site-1");
    let before = Snapshot::take(&fixture.kit.dir, &[]);
    let run = flare_deploy([
        OsStr::new("--format"),
        OsStr::new("json"),
        OsStr::new("prepare"),
        OsStr::new("--kit"),
        fixture.kit.dir.as_os_str(),
        OsStr::new("--output"),
        out.as_os_str(),
        OsStr::new("--config"),
        config_path.as_os_str(),
    ]);
    assert_eq!(run.code, 4, "config:\n{config}\n{run:?}");
    assert_eq!(run.stderr, "", "config:\n{config}");
    let expected = format!(
        "{{\"schema_version\": \"1\", \"status\": \"error\", \"exit_code\": 4, \"error_code\": \"INVALID_CONFIG\", \
         \"message\": {}, \"hint\": {}}}\n",
        json_str(message),
        json_str(hint)
    );
    assert_eq!(run.stdout, expected, "config:\n{config}");
    let doc = run.json();
    let keys: Vec<&str> = doc.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["schema_version", "status", "exit_code", "error_code", "message", "hint"]
    );
    assert_eq!(doc["message"], message);
    assert!(!fixture.root.join("out").exists(), "nothing written");
    let mut entries: Vec<String> = std::fs::read_dir(&fixture.root)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["k8s.yaml", "site-1"], "no temp directories left");
    assert!(Snapshot::take(&fixture.kit.dir, &[]) == before, "input kit changed");
    run
}

/// A JSON string literal as Python's `json.dumps` writes it (ASCII only here).
fn json_str(s: &str) -> String {
    assert!(s.is_ascii());
    serde_json::to_string(s).expect("json")
}

// ---------------------------------------------------------------------------------------
// spec 2.3: the validation order

#[derive(Clone, Copy)]
enum At {
    Top,
    ParentWhole,
    JobWhole,
    Parent,
    Job,
}

struct Fault {
    at: At,
    key: &'static str,
    value: &'static str,
    message: &'static str,
    hint: &'static str,
}

/// One fault per validation step of spec 2.3, in the reference's order.
fn faults() -> Vec<Fault> {
    let f = |at, key, value, message, hint| Fault {
        at,
        key,
        value,
        message,
        hint,
    };
    vec![
        f(At::Top, "bogus", "1", "Unknown keys in k8s config: ['bogus']", UNKNOWN),
        f(
            At::ParentWhole,
            "",
            "[img]",
            "parent must be a YAML mapping.",
            PARENT_KEYS,
        ),
        f(At::JobWhole, "", "[x]", "job_launcher must be a YAML mapping.", FIX),
        f(
            At::Parent,
            "network",
            "n",
            "Unknown keys in parent: ['network']",
            UNKNOWN,
        ),
        f(
            At::Job,
            "default_job_env",
            "{}",
            "Unknown keys in job_launcher: ['default_job_env']",
            UNKNOWN,
        ),
        f(
            At::Parent,
            "docker_image",
            "\"\"",
            "parent.docker_image must be a non-empty string.",
            FIX,
        ),
        f(
            At::Top,
            "namespace",
            "Bad",
            "k8s config.namespace must be a valid Kubernetes namespace (DNS-1123 label): 'Bad'.",
            NS_HINT,
        ),
        f(
            At::Top,
            "server_service_name",
            "Bad",
            "k8s config.server_service_name must be a valid Kubernetes Service name (DNS-1035 label): 'Bad'.",
            SVC_HINT,
        ),
        f(
            At::Parent,
            "parent_port",
            "\"8102\"",
            "parent.parent_port must be an integer.",
            FIX,
        ),
        f(
            At::Parent,
            "workspace_pvc",
            "7",
            "parent.workspace_pvc must be a non-empty string.",
            FIX,
        ),
        f(
            At::Parent,
            "workspace_mount_path",
            "[]",
            "parent.workspace_mount_path must be a non-empty string.",
            FIX,
        ),
        f(
            At::Parent,
            "python_path",
            "\"\"",
            "parent.python_path must be a non-empty string.",
            FIX,
        ),
        f(At::Parent, "resources", "x", "parent.resources must be a mapping.", FIX),
        f(
            At::Parent,
            "pod_security_context",
            "[1]",
            "parent.pod_security_context must be a mapping.",
            FIX,
        ),
        f(At::Parent, "image_pull_secrets", "regcred", PARENT_LIST, FIX),
        f(
            At::Job,
            "config_file_path",
            "7",
            "job_launcher.config_file_path must be a non-empty string.",
            FIX,
        ),
        f(
            At::Job,
            "default_python_path",
            "false",
            "job_launcher.default_python_path must be a non-empty string.",
            FIX,
        ),
        f(
            At::Job,
            "pending_timeout",
            "-1",
            "job_launcher.pending_timeout must be a non-negative integer.",
            FIX,
        ),
        f(
            At::Job,
            "job_pod_security_context",
            "x",
            "job_launcher.job_pod_security_context must be a mapping.",
            FIX,
        ),
        f(At::Job, "image_pull_secrets", "[Bad]", JOB_NAMES, SECRET_HINT),
    ]
}

/// A config with all the given faults (the parent gets `docker_image: img` unless a
/// fault replaces it).
fn compose(faults: &[Fault]) -> String {
    let mut top = Vec::new();
    let mut parent: Vec<(&str, &str)> = vec![("docker_image", "img")];
    let mut parent_whole = None;
    let mut job = Vec::new();
    let mut job_whole = None;
    for fault in faults {
        match fault.at {
            At::Top => top.push((fault.key, fault.value)),
            At::ParentWhole => parent_whole = Some(fault.value),
            At::JobWhole => job_whole = Some(fault.value),
            At::Parent => match parent.iter_mut().find(|(k, _)| *k == fault.key) {
                Some(entry) => entry.1 = fault.value,
                None => parent.push((fault.key, fault.value)),
            },
            At::Job => job.push((fault.key, fault.value)),
        }
    }
    let mut text = String::from("runtime: k8s\n");
    for (k, v) in top {
        text.push_str(&format!("{k}: {v}\n"));
    }
    match parent_whole {
        Some(v) => text.push_str(&format!("parent: {v}\n")),
        None => {
            text.push_str("parent:\n");
            for (k, v) in parent {
                text.push_str(&format!("  {k}: {v}\n"));
            }
        }
    }
    match job_whole {
        Some(v) => text.push_str(&format!("job_launcher: {v}\n")),
        None if !job.is_empty() => {
            text.push_str("job_launcher:\n");
            for (k, v) in job {
                text.push_str(&format!("  {k}: {v}\n"));
            }
        }
        None => {}
    }
    text
}

#[test]
fn each_check_alone_and_the_first_failing_check_wins() {
    let fx = fixture();
    let all = faults();
    for (i, fault) in all.iter().enumerate() {
        // Alone.
        assert_rejected(
            &fx.kit,
            &compose(std::slice::from_ref(fault)),
            fault.message,
            fault.hint,
        );
        // Together with every later fault: this one is reported.
        assert_rejected(&fx.kit, &compose(&all[i..]), fault.message, fault.hint);
    }
}

// ---------------------------------------------------------------------------------------
// value tables

/// Runs every `(yaml value, message, hint)` row with the value at `place` ("top",
/// "parent" or "job") under `key`.
#[track_caller]
fn check_values(place: &str, key: &str, rows: &[(String, String, &str)]) {
    let fx = fixture();
    for (value, message, hint) in rows {
        let config = match place {
            "top" => format!("{HEAD}{key}: {value}\n"),
            "parent" => format!("{HEAD}  {key}: {value}\n"),
            "job" => format!("{HEAD}job_launcher:\n  {key}: {value}\n"),
            other => panic!("unknown place {other}"),
        };
        assert_rejected(&fx.kit, &config, message, hint);
    }
}

fn row(value: &str, message: &str, hint: &'static str) -> (String, String, &'static str) {
    (value.to_string(), message.to_string(), hint)
}

// case 23 and deviation 1 (null is still rejected)
#[test]
fn invalid_namespaces() {
    let non_empty = "k8s config.namespace must be a non-empty string.";
    let pattern =
        |shown: &str| format!("k8s config.namespace must be a valid Kubernetes namespace (DNS-1123 label): {shown}.");
    let a64 = "a".repeat(64);
    let mut rows = vec![
        row("\"\"", non_empty, FIX),
        row("null", non_empty, FIX),
        row("~", non_empty, FIX),
        row("7", non_empty, FIX),
        row("true", non_empty, FIX),
        row("[a]", non_empty, FIX),
        row("{a: b}", non_empty, FIX),
    ];
    // (value, Python's repr of it as the message shows it)
    let a64_shown = format!("'{a64}'");
    for (raw, shown) in [
        ("MyNamespace", "'MyNamespace'"),
        ("namespace_", "'namespace_'"),
        ("-bad", "'-bad'"),
        ("bad-", "'bad-'"),
        ("bad.name", "'bad.name'"),
        ("nvflare\n", r"'nvflare\n'"),
        ("\nnvflare", r"'\nnvflare'"),
        (" nvflare", "' nvflare'"),
        ("ns'x", "\"ns'x\""),
        ("nsé", "'nsé'"),
        ("ns\tx", r"'ns\tx'"),
        (a64.as_str(), a64_shown.as_str()),
    ] {
        rows.push(row(
            &serde_json::to_string(raw).expect("json"),
            &pattern(shown),
            NS_HINT,
        ));
    }
    check_values("top", "namespace", &rows);
}

// case 26 and deviation 1
#[test]
fn invalid_server_service_names() {
    let non_empty = "k8s config.server_service_name must be a non-empty string.";
    let pattern = |shown: &str| {
        format!("k8s config.server_service_name must be a valid Kubernetes Service name (DNS-1035 label): {shown}.")
    };
    let a64 = "a".repeat(64);
    let mut rows = vec![
        row("\"\"", non_empty, FIX),
        row("null", non_empty, FIX),
        row("7", non_empty, FIX),
        row("false", non_empty, FIX),
        row("[nvflare-server]", non_empty, FIX),
    ];
    let a64_shown = format!("'{a64}'");
    for (raw, shown) in [
        ("Nvflare", "'Nvflare'"),
        ("server_name", "'server_name'"),
        ("server.name", "'server.name'"),
        ("-server", "'-server'"),
        ("server-", "'server-'"),
        ("1server", "'1server'"),
        ("nvflare-server\n", r"'nvflare-server\n'"),
        (a64.as_str(), a64_shown.as_str()),
    ] {
        rows.push(row(
            &serde_json::to_string(raw).expect("json"),
            &pattern(shown),
            SVC_HINT,
        ));
    }
    check_values("top", "server_service_name", &rows);
}

fn secret_rows(list: &str, names: &str) -> Vec<(String, String, &'static str)> {
    let mut rows = vec![
        row("gitlab-regcred", list, FIX),
        row("{name: gitlab-regcred}", list, FIX),
        row("7", list, FIX),
        row("true", list, FIX),
    ];
    let a254 = format!("[{}]", "a".repeat(254));
    for value in [
        "[\"\"]",
        "[GitLab-Regcred]",
        "[gitlab_regcred]",
        "[7]",
        "[bad..name]",
        "[a.]",
        "[.a]",
        "[-a]",
        "[null]",
        "[[x]]",
        "[{name: x}]",
        "[ok, Bad]",
        a254.as_str(),
    ] {
        rows.push(row(value, names, SECRET_HINT));
    }
    rows
}

// case 24
#[test]
fn invalid_parent_image_pull_secrets() {
    check_values("parent", "image_pull_secrets", &secret_rows(PARENT_LIST, PARENT_NAMES));
}

// case 25
#[test]
fn invalid_job_launcher_image_pull_secrets() {
    check_values("job", "image_pull_secrets", &secret_rows(JOB_LIST, JOB_NAMES));
}

// case 19
#[test]
fn invalid_pending_timeouts() {
    let int = "job_launcher.pending_timeout must be an integer.";
    let non_negative = "job_launcher.pending_timeout must be a non-negative integer.";
    check_values(
        "job",
        "pending_timeout",
        &[
            row("-1", non_negative, FIX),
            row("-600", non_negative, FIX),
            row("true", int, FIX),
            row("false", int, FIX),
            row("\"10\"", int, FIX),
            row("1.5", int, FIX),
            row("[1]", int, FIX),
            row("{a: 1}", int, FIX),
        ],
    );
}

// deviation 2
#[test]
fn invalid_parent_ports() {
    let int = "parent.parent_port must be an integer.";
    let range = |v: &str| format!("parent.parent_port must be a port number between 1 and 65535, got {v}.");
    check_values(
        "parent",
        "parent_port",
        &[
            row("true", int, FIX),
            row("false", int, FIX),
            row("\"8102\"", int, FIX),
            row("8102.0", int, FIX),
            row("[8102]", int, FIX),
            row("70000", &range("70000"), FIX),
            row("65536", &range("65536"), FIX),
            row("0", &range("0"), FIX),
            row("-1", &range("-1"), FIX),
        ],
    );
}

#[test]
fn invalid_docker_image() {
    let message = "parent.docker_image must be a non-empty string.";
    let fx = fixture();
    for config in [
        "runtime: k8s\nparent:\n  workspace_pvc: ws\n".to_string(),
        "runtime: k8s\nparent: {}\n".to_string(),
        "runtime: k8s\nparent:\n  docker_image: \"\"\n".to_string(),
        "runtime: k8s\nparent:\n  docker_image: null\n".to_string(),
        "runtime: k8s\nparent:\n  docker_image: 7\n".to_string(),
        "runtime: k8s\nparent:\n  docker_image: true\n".to_string(),
        "runtime: k8s\nparent:\n  docker_image: [img]\n".to_string(),
    ] {
        assert_rejected(&fx.kit, &config, message, FIX);
    }
}

#[test]
fn invalid_optional_strings() {
    for (place, key, where_) in [
        ("parent", "workspace_pvc", "parent"),
        ("parent", "workspace_mount_path", "parent"),
        ("parent", "python_path", "parent"),
        ("job", "config_file_path", "job_launcher"),
        ("job", "default_python_path", "job_launcher"),
    ] {
        let message = format!("{where_}.{key} must be a non-empty string.");
        let rows: Vec<_> = ["\"\"", "7", "[]", "false", "{a: 1}", "1.5"]
            .into_iter()
            .map(|v| row(v, &message, FIX))
            .collect();
        check_values(place, key, &rows);
    }
}

#[test]
fn invalid_optional_mappings() {
    for (place, key, where_) in [
        ("parent", "resources", "parent"),
        ("parent", "pod_security_context", "parent"),
        ("job", "job_pod_security_context", "job_launcher"),
    ] {
        let message = format!("{where_}.{key} must be a mapping.");
        let rows: Vec<_> = ["x", "[1]", "7", "true", "\"\""]
            .into_iter()
            .map(|v| row(v, &message, FIX))
            .collect();
        check_values(place, key, &rows);
    }
}

#[test]
fn invalid_sections_and_unknown_keys() {
    let fx = fixture();
    let rows: Vec<(String, &str, &str)> = vec![
        ("runtime: k8s\n".into(), "parent must be a YAML mapping.", ADD_PARENT),
        (
            "runtime: k8s\nparent:\n".into(),
            "parent must be a YAML mapping.",
            ADD_PARENT,
        ),
        (
            "runtime: k8s\nparent: null\n".into(),
            "parent must be a YAML mapping.",
            ADD_PARENT,
        ),
        (
            "runtime: k8s\nparent: []\n".into(),
            "parent must be a YAML mapping.",
            PARENT_KEYS,
        ),
        (
            "runtime: k8s\nparent: img\n".into(),
            "parent must be a YAML mapping.",
            PARENT_KEYS,
        ),
        (
            format!("{HEAD}job_launcher: [x]\n"),
            "job_launcher must be a YAML mapping.",
            FIX,
        ),
        (
            format!("{HEAD}job_launcher: x\n"),
            "job_launcher must be a YAML mapping.",
            FIX,
        ),
        (
            format!("{HEAD}job_launcher: 7\n"),
            "job_launcher must be a YAML mapping.",
            FIX,
        ),
        (
            format!("{HEAD}job_launcher: true\n"),
            "job_launcher must be a YAML mapping.",
            FIX,
        ),
        (
            format!("{HEAD}zzz: 2\nbogus: 1\n"),
            "Unknown keys in k8s config: ['bogus', 'zzz']",
            UNKNOWN,
        ),
        (
            format!("{HEAD}network: n\n"),
            "Unknown keys in k8s config: ['network']",
            UNKNOWN,
        ),
        (
            format!("{HEAD}bogus: 1\n1: x\n"),
            "Unknown keys in k8s config: [1, 'bogus']",
            UNKNOWN,
        ),
        (
            format!("{HEAD}  network: n\n  extra: 1\n"),
            "Unknown keys in parent: ['extra', 'network']",
            UNKNOWN,
        ),
        (
            format!(
                "{HEAD}job_launcher:\n  study_job_spec_file_path: x\n  default_job_env: {{}}\n  \
                 default_job_container_kwargs: {{}}\n"
            ),
            "Unknown keys in job_launcher: ['default_job_container_kwargs', 'default_job_env', \
             'study_job_spec_file_path']",
            UNKNOWN,
        ),
    ];
    for (config, message, hint) in rows {
        assert_rejected(&fx.kit, &config, message, hint);
    }
}

// deviation 8
#[test]
fn unknown_runtime() {
    let fx = fixture();
    let plugin = "A plugin runtime <name> is the executable flare-deploy-target-<name> in \
                  FLARE_DEPLOY_PLUGIN_PATH or on PATH.";
    let not_one = "is not one of docker, k8s, slurm.";
    // The reference's message; the hint echoes the value (deviation L8).
    for (runtime, hint) in [
        (
            "K8s",
            format!("Set a supported runtime: 'K8s' {not_one} Did you mean 'k8s'? {plugin}"),
        ),
        (
            "kubernetes",
            format!("Set a supported runtime: 'kubernetes' {not_one} {plugin}"),
        ),
        (
            "\"k8s \"",
            format!("Set a supported runtime: 'k8s ' {not_one} Did you mean 'k8s'? {plugin}"),
        ),
        (
            "null",
            format!("Set a supported runtime (docker, k8s, slurm) with a runtime: key. {plugin}"),
        ),
        (
            "[k8s]",
            format!("Set a supported runtime: runtime must be a name (docker, k8s, slurm), got ['k8s']. {plugin}"),
        ),
    ] {
        assert_rejected(
            &fx.kit,
            &format!("runtime: {runtime}\nparent:\n  docker_image: img\n"),
            "Config must contain runtime: docker, runtime: k8s, or runtime: slurm.",
            &hint,
        );
    }
}

// ---------------------------------------------------------------------------------------
// json format, boundaries

#[test]
fn errors_in_json_format() {
    let fx = fixture();
    let a64 = "a".repeat(64);
    let rows: Vec<(String, String, &str)> = vec![
        (
            format!("{HEAD}namespace: \"nvflare\\n\"\n"),
            "k8s config.namespace must be a valid Kubernetes namespace (DNS-1123 label): 'nvflare\\n'.".to_string(),
            NS_HINT,
        ),
        (
            format!("{HEAD}server_service_name: {a64}\n"),
            format!(
                "k8s config.server_service_name must be a valid Kubernetes Service name (DNS-1035 label): '{a64}'."
            ),
            SVC_HINT,
        ),
        (
            format!("{HEAD}  image_pull_secrets: [GitLab-Regcred]\n"),
            PARENT_NAMES.to_string(),
            SECRET_HINT,
        ),
        (
            format!("{HEAD}job_launcher:\n  pending_timeout: true\n"),
            "job_launcher.pending_timeout must be an integer.".to_string(),
            FIX,
        ),
        (
            format!("{HEAD}  parent_port: 70000\n"),
            "parent.parent_port must be a port number between 1 and 65535, got 70000.".to_string(),
            FIX,
        ),
        (
            format!("{HEAD}bogus: 1\n"),
            "Unknown keys in k8s config: ['bogus']".to_string(),
            UNKNOWN,
        ),
    ];
    for (config, message, hint) in rows {
        let run = assert_rejected_json(&fx, &config, &message, hint);
        // The offending secret name is not echoed.
        assert!(!run.stdout.contains("GitLab"), "{}", run.stdout);
    }
}

#[test]
fn errors_in_txt_format_with_explicit_paths() {
    let fx = fixture();
    let config_path = fx.root.join("k8s.yaml");
    std::fs::write(&config_path, format!("{HEAD}  parent_port: 0\n")).expect("config");
    let out = fx.root.join("out");
    let run = flare_deploy([
        OsStr::new("prepare"),
        fx.kit.dir.as_os_str(),
        OsStr::new("--output"),
        out.as_os_str(),
        OsStr::new("--config"),
        config_path.as_os_str(),
    ]);
    run.assert_txt_error(
        "INVALID_CONFIG",
        "parent.parent_port must be a port number between 1 and 65535, got 0.",
        FIX,
    );
    assert_eq!(run.stdout, "");
    assert!(!out.exists());
}

/// A YAML double-quoted scalar of `s`, escaping what YAML does not allow raw.
fn yaml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // C0, DEL, C1, and the characters YAML 1.1 treats as line breaks or a BOM.
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) || "\u{2028}\u{2029}\u{feff}".contains(c) => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs `namespace: <value>` and `server_service_name: <value>` for every value through
/// each installed NVFlare release's validation (one process per release) and through the
/// binary for that release; returns where the binary's code, message or hint differs.
fn differences_from_references(values: &[&str]) -> Vec<String> {
    let references = [(oracle::nvflare_2_8(), "2.8"), (oracle::nvflare_2_9(), "2.9")];
    let mut differences = Vec::new();
    for (reference, release) in &references {
        if let Some(reference) = reference {
            differences.extend(differences_from_reference(reference, release, values));
        }
    }
    differences
}

/// Fails listing every value whose code, message or hint differs from a reference's.
#[track_caller]
fn assert_messages_match_references(values: &[&str]) {
    let differences = differences_from_references(values);
    assert!(
        differences.is_empty(),
        "{} messages differ from NVFlare's:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

fn differences_from_reference(reference: &oracle::Reference, release: &str, values: &[&str]) -> Vec<String> {
    let fx = fixture();
    let mut cases: Vec<(String, &str, Value)> = Vec::new();
    for key in ["namespace", "server_service_name"] {
        for value in values {
            let config = format!("{HEAD}{key}: {}\n", yaml_str(value));
            let mut doc = serde_json::Map::new();
            doc.insert("runtime".into(), "k8s".into());
            doc.insert("parent".into(), serde_json::json!({"docker_image": "img"}));
            doc.insert(key.into(), (*value).into());
            cases.push((config, value, Value::Object(doc)));
        }
    }
    let docs: Vec<Value> = cases.iter().map(|(_, _, doc)| doc.clone()).collect();
    let answers = reference.k8s_config_errors(&docs);
    assert_eq!(answers.len(), cases.len());
    let mut differences = Vec::new();
    for ((config, value, _), answer) in cases.iter().zip(answers) {
        fx.kit.write_config(config);
        let run = flare_deploy([
            OsStr::new("prepare"),
            fx.kit.dir.as_os_str(),
            OsStr::new("--nvflare-version"),
            OsStr::new(release),
        ]);
        assert!(!fx.kit.path("prepared").exists(), "{value:?}: nothing written");
        match answer {
            Some(error) => {
                let want = format!(
                    "{}\nHint: {}\nCode: {} (exit 4)\n",
                    error.message, error.hint, error.code
                );
                if (run.code, run.stdout.as_str(), run.stderr.as_str()) != (4, "", want.as_str()) {
                    differences.push(format!(
                        "{release}: {value:?}\n  reference: {want:?}\n  binary:    exit {}, {:?}",
                        run.code, run.stderr
                    ));
                }
            }
            None => {
                // The reference's namespace check accepts a trailing newline (`re.match`
                // with `$`); we reject it (deviation H3). Nothing else may differ.
                assert!(
                    value.ends_with('\n'),
                    "{release}: the reference accepts {value:?}, so must we"
                );
                assert_eq!(run.code, 4, "{release}: {value:?} is rejected: {run:?}");
            }
        }
    }
    differences
}

/// Messages that show the offending value (Python's `repr`) against the reference itself:
/// NVFlare 2.8.1's and 2.9.0's code, message and hint are what the binary must print.
#[test]
fn shown_values_match_the_reference_messages() {
    let a64 = "a".repeat(64);
    let values = [
        "MyNamespace",
        "bad.name",
        "-bad",
        "nvflare\n",
        "\nnvflare",
        " nvflare",
        "ns'x",
        "ns\"x",
        "a'b\"c",
        "back\\slash",
        "nsé",
        "ns\tx",
        "cr\rx",
        "bell\u{7}x",
        "del\u{7f}x",
        "c1\u{9b}x",
        "emoji\u{1F600}",
        "\u{130}stanbul",
        "",
        a64.as_str(),
    ];
    assert_messages_match_references(&values);
}

/// Python's `repr` escapes every character `str.isprintable()` rejects, also outside
/// ASCII and C1: spaces other than ' ' (U+00A0, U+3000), format characters (U+00AD,
/// U+200B, U+FEFF), line and paragraph separators (U+2028, U+2029).
#[test]
fn shown_values_escape_non_printable_unicode_like_the_reference() {
    let values = [
        "nbsp\u{a0}x",
        "ideo\u{3000}x",
        "shy\u{ad}x",
        "zw\u{200b}x",
        "bom\u{feff}x",
        "ls\u{2028}x",
        "ps\u{2029}x",
    ];
    assert_messages_match_references(&values);
}

/// Boundaries that are valid: names at their maximum length, an empty secret list,
/// `namespace: yes` (YAML 1.2 string, deviation 9).
#[test]
fn boundary_values_are_accepted() {
    let fx = fixture();
    let config_path = fx.root.join("ok.yaml");
    let ok = |config: String| {
        std::fs::write(&config_path, &config).expect("config");
        let out = fx.root.join("out-ok");
        let run = flare_deploy([
            OsStr::new("prepare"),
            fx.kit.dir.as_os_str(),
            OsStr::new("--output"),
            out.as_os_str(),
            OsStr::new("--config"),
            config_path.as_os_str(),
            OsStr::new("--format"),
            OsStr::new("json"),
        ]);
        assert_eq!(run.code, 0, "config:\n{config}\n{run:?}");
        let doc: Value = run.json();
        assert_eq!(doc["status"], "ok");
        assert!(out.join("helm_chart/values.yaml").is_file());
        doc
    };
    let doc = ok(format!("{HEAD}namespace: {}\n", "a".repeat(63)));
    assert_eq!(doc["data"]["namespace"], "a".repeat(63));
    ok(format!("{HEAD}server_service_name: a{}\n", "0".repeat(62)));
    ok(format!("{HEAD}  image_pull_secrets: [{}]\n", "a".repeat(253)));
    ok(format!(
        "{HEAD}  image_pull_secrets: []\njob_launcher:\n  image_pull_secrets: [a.b-c.d]\n"
    ));
    ok(format!("{HEAD}job_launcher:\n  pending_timeout: 0\n"));
    let doc = ok(format!("{HEAD}namespace: yes\n"));
    assert_eq!(doc["data"]["namespace"], "yes");
}

/// The config is validated before the kit (spec 1.5): a broken or admin kit with a bad
/// config reports the config error.
#[test]
fn config_errors_come_before_kit_errors() {
    let fx = fixture();
    let project = Project::new("proj");
    let admin = project.admin("admin@nvidia.com").build(&fx.root.join("admin"));
    assert_rejected(
        &admin,
        &format!("{HEAD}namespace: Bad\n"),
        "k8s config.namespace must be a valid Kubernetes namespace (DNS-1123 label): 'Bad'.",
        NS_HINT,
    );
    let broken = project.client("broken").build(&fx.root.join("broken"));
    std::fs::remove_dir_all(broken.path("startup")).expect("remove startup");
    assert_rejected(
        &broken,
        &format!("{HEAD}job_launcher:\n  pending_timeout: -5\n"),
        "job_launcher.pending_timeout must be a non-negative integer.",
        FIX,
    );
}
