//! NVFlare 2.9 outputs, checked against the released package: kits provisioned by
//! `nvflare provision` 2.9.0 are prepared by `nvflare deploy prepare` 2.9.0 (the oracle)
//! and by flare-deploy with `--nvflare-version 2.9`, on the same configs; the results,
//! the warnings and every file must agree, except what docs/deviations.md lists (each
//! exception is named below with its deviation id). Error cases compare code, message and
//! hint. The start script and the Helm chart have their own suites
//! (docker_script.rs, k8s_chart_29.rs); here they are only checked to exist.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use flare_deploy_tests::fsutil::{os, read, write_file};
use flare_deploy_tests::harness::run_exact;
use flare_deploy_tests::provision::{provision, ProjectSpec};
use flare_deploy_tests::tools;
use flare_deploy_tests::Run;
use serde_json::Value;

/// A provisioned 2.9.0 project, made once per test process.
struct Oracle {
    nvflare: PathBuf,
    /// `.../prod_00`
    prod: PathBuf,
    _tmp: tempfile::TempDir,
}

fn oracle() -> Option<&'static Oracle> {
    static ORACLE: OnceLock<Option<Oracle>> = OnceLock::new();
    ORACLE
        .get_or_init(|| {
            let nvflare = tools::nvflare_2_9()?;
            let tmp = tempfile::tempdir().expect("tmp");
            let root = tmp.path().canonicalize().expect("canonical");
            let prod = provision(
                &nvflare,
                &root,
                &ProjectSpec {
                    name: "diff29",
                    server: "server1",
                    fed_learn_port: 8002,
                    admin_port: None,
                },
            );
            Some(Oracle {
                nvflare,
                prod,
                _tmp: tmp,
            })
        })
        .as_ref()
}

/// A copy of a provisioned kit in `dir` (so that a test may change it).
fn kit_copy(oracle: &Oracle, kit: &str, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let to = dir.join(kit);
    let status = Command::new("cp")
        .arg("-a")
        .arg(oracle.prod.join(kit))
        .arg(&to)
        .status()
        .expect("cp");
    assert!(status.success());
    to
}

/// Both tools' runs of one prepare: stdout JSON document (or error), stderr.
struct Pair {
    ours: Run,
    theirs: Run,
    our_out: PathBuf,
    their_out: PathBuf,
}

fn run_nvflare(oracle: &Oracle, args: &[&std::ffi::OsStr]) -> Run {
    let out = Command::new(&oracle.nvflare).args(args).output().expect("run nvflare");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `prepare <kit> --config <config> --output <dir>/{ours,theirs}-<label> --format json`.
fn prepare_both(oracle: &Oracle, kit: &Path, config: &Path, dir: &Path, label: &str) -> Pair {
    let our_out = dir.join(format!("ours-{label}"));
    let their_out = dir.join(format!("theirs-{label}"));
    prepare_both_at(oracle, kit, config, our_out, their_out)
}

/// Both tools' prepare of `kit` into the given outputs (JSON format).
fn prepare_both_at(oracle: &Oracle, kit: &Path, config: &Path, our_out: PathBuf, their_out: PathBuf) -> Pair {
    let ours = run_exact(
        None,
        os(&[
            &"prepare",
            &kit,
            &"--config",
            &config,
            &"--output",
            &our_out,
            &"--format",
            &"json",
            &"--nvflare-version",
            &"2.9",
        ]),
        &[],
    );
    let theirs = run_nvflare(
        oracle,
        &[
            "deploy".as_ref(),
            "prepare".as_ref(),
            kit.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
            "--output".as_ref(),
            their_out.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
        ],
    );
    Pair {
        ours,
        theirs,
        our_out,
        their_out,
    }
}

/// The JSON document on stdout with the output paths made equal.
fn normalised(run: &Run, out: &Path, placeholder: &str) -> Value {
    let text = run.stdout.trim().replace(&out.display().to_string(), placeholder);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", run.stdout, run.stderr))
}

/// Files under `root` (relative) with their bytes and permission bits.
fn files(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, u32)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if meta.is_dir() {
                out.insert(format!("{rel}/"), (Vec::new(), meta.permissions().mode() & 0o777));
                walk(root, &path, out);
            } else {
                out.insert(
                    rel,
                    (std::fs::read(&path).expect("read"), meta.permissions().mode() & 0o777),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Why a file may differ from the oracle's: the deviation that says so.
fn documented_difference(rel: &str) -> Option<&'static str> {
    match rel {
        // O9: our receipt.
        ".flare-deploy.json" => Some("O9"),
        // Our own comments; the YAML data is compared below.
        "local/study_runtime.yaml" => Some("T1"),
        // Our own script text (D1-D5 and the 2.9 script section); docker_script.rs.
        "startup/start_docker.sh" => Some("D1-D5"),
        // Our own chart templates (H1-H7 and the 2.9 chart section); k8s_chart_29.rs.
        _ if rel.starts_with("helm_chart/") => Some("H1-H7"),
        _ => None,
    }
}

fn yaml(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The whole comparison of one successful prepare.
#[track_caller]
fn assert_same_output(pair: &Pair, what: &str) {
    assert_eq!(
        pair.theirs.code, 0,
        "{what}: the oracle failed: {}\n{}",
        pair.theirs.stdout, pair.theirs.stderr
    );
    assert_eq!(
        pair.ours.code, 0,
        "{what}: flare-deploy failed: {}\n{}",
        pair.ours.stdout, pair.ours.stderr
    );
    assert_eq!(
        normalised(&pair.ours, &pair.our_out, "<out>"),
        normalised(&pair.theirs, &pair.their_out, "<out>"),
        "{what}: result envelope"
    );
    assert_eq!(pair.ours.stderr, pair.theirs.stderr, "{what}: warnings");
    let (ours, theirs) = (files(&pair.our_out), files(&pair.their_out));
    let names = |m: &BTreeMap<String, (Vec<u8>, u32)>| {
        m.keys()
            .filter(|k| documented_difference(k) != Some("O9"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&ours), names(&theirs), "{what}: the same files");
    assert!(ours.contains_key(".flare-deploy.json"), "{what}: receipt");
    for (rel, (bytes, mode)) in &theirs {
        let Some((our_bytes, our_mode)) = ours.get(rel) else {
            continue;
        };
        if rel.ends_with('/') {
            continue;
        }
        match documented_difference(rel) {
            None => {
                assert!(
                    bytes == our_bytes,
                    "{what}: {rel} differs\n--- nvflare 2.9.0\n{}\n--- flare-deploy\n{}",
                    String::from_utf8_lossy(bytes),
                    String::from_utf8_lossy(our_bytes)
                );
                assert_eq!(mode, our_mode, "{what}: mode of {rel}");
            }
            Some("T1") => assert_eq!(
                yaml(&pair.our_out.join(rel)),
                yaml(&pair.their_out.join(rel)),
                "{what}: {rel} data"
            ),
            Some(_) => assert_eq!(mode, our_mode, "{what}: mode of {rel}"),
        }
    }
}

const DOCKER: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.9.0\n";
const K8S: &str = "runtime: k8s\nnamespace: nvflare\nparent:\n  docker_image: nvflare/nvflare:2.9.0\n";

#[test]
fn prepared_kits_match_nvflare_2_9_0() {
    let Some(oracle) = oracle() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().canonicalize().expect("canonical");
    let configs = [
        ("docker", DOCKER.to_string()),
        (
            "docker-clear",
            format!("{DOCKER}  internal_connection_security: clear\n  network: fl-net\njob_launcher:\n  default_python_path: /opt/py/bin/python\n  default_job_env: {{A: '1'}}\n  default_job_container_kwargs: {{shm_size: 8g}}\n"),
        ),
        ("k8s", K8S.to_string()),
        (
            "k8s-options",
            format!("{K8S}  internal_connection_security: clear\n  parent_port: 9100\njob_launcher:\n  pending_timeout: 0\n  image_pull_secrets: []\n  job_pod_security_context: {{runAsUser: 1000}}\n"),
        ),
        (
            "k8s-null-timeout",
            format!("{K8S}server_service_name: fl-server\njob_launcher:\n  pending_timeout: null\n  config_file_path: /etc/kube/config\n"),
        ),
    ];
    for (label, text) in &configs {
        let config = write_file(&dir.join(format!("{label}.yaml")), text);
        for kit in ["server1", "site-1"] {
            let input = oracle.prod.join(kit);
            let pair = prepare_both(oracle, &input, &config, &dir, &format!("{kit}-{label}"));
            assert_same_output(&pair, &format!("{kit} with {label}"));
        }
    }
}

#[test]
fn kits_with_their_own_comm_config_or_legacy_study_data_match() {
    let Some(oracle) = oracle() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().canonicalize().expect("canonical");
    let docker = write_file(&dir.join("docker.yaml"), DOCKER);
    let k8s = write_file(&dir.join("k8s.yaml"), K8S);

    // An existing comm config: other keys keep their places, security is overwritten.
    let kit = kit_copy(oracle, "site-1", &dir.join("kits-comm"));
    write_file(
        &kit.join("local/comm_config.json"),
        "{\"internal\": {\"scheme\": \"tcp\", \"resources\": {\"port\": 9000, \"connection_security\": \"tls\", \"host\": \"x\"}}, \"x\": 1}",
    );
    for (label, config) in [("docker", &docker), ("k8s", &k8s)] {
        let pair = prepare_both(oracle, &kit, config, &dir, &format!("comm-{label}"));
        assert_same_output(&pair, &format!("own comm config, {label}"));
    }

    // A legacy (2.8) study_data.yaml: kept, no study_runtime.yaml, and the k8s launcher
    // still gets its path.
    let kit = kit_copy(oracle, "site-2", &dir.join("kits-legacy"));
    write_file(&kit.join("local/study_data.yaml"), "default: {}\n");
    for (label, config) in [("docker", &docker), ("k8s", &k8s)] {
        let pair = prepare_both(oracle, &kit, config, &dir, &format!("legacy-{label}"));
        assert_same_output(&pair, &format!("legacy study data, {label}"));
        assert!(!pair.our_out.join("local/study_runtime.yaml").exists());
    }
    let resources: Value =
        serde_json::from_str(&read(&dir.join("ours-legacy-k8s/local/resources.json.default"))).expect("json");
    let launcher = resources["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["id"] == "k8s_launcher")
        .expect("k8s_launcher");
    assert_eq!(
        launcher["args"]["study_data_pvc_file_path"],
        "/var/tmp/nvflare/workspace/local/study_data.yaml"
    );

    // Both files (T2): nvflare 2.9.0 prepares the kit, whose launchers then refuse every
    // job; flare-deploy refuses the kit.
    write_file(
        &kit.join("local/study_runtime.yaml"),
        "format_version: 2\nstudies: {}\n",
    );
    for (label, config) in [("docker", &docker), ("k8s", &k8s)] {
        let pair = prepare_both(oracle, &kit, config, &dir, &format!("both-{label}"));
        assert_eq!(pair.theirs.code, 0, "the oracle accepts it: {}", pair.theirs.stdout);
        assert_eq!(pair.ours.code, 4, "{}", pair.ours.stdout);
        let (code, message, _) = error_of(&pair.ours, &pair.our_out, &kit);
        assert_eq!(code, "INVALID_KIT");
        assert!(
            message.starts_with("The kit has both local/study_runtime.yaml and local/study_data.yaml"),
            "{message}"
        );
        assert!(!pair.our_out.exists());
    }
}

/// Code, message and hint of a failed run (JSON envelope), paths made equal.
fn error_of(run: &Run, out: &Path, kit: &Path) -> (String, String, String) {
    let doc = normalised(run, out, "<out>");
    let text = |k: &str| {
        doc[k]
            .as_str()
            .unwrap_or_default()
            .replace(&kit.display().to_string(), "<kit>")
    };
    assert_eq!(doc["status"], "error", "{doc}");
    (text("error_code"), text("message"), text("hint"))
}

#[test]
fn config_and_kit_errors_match_nvflare_2_9_0() {
    let Some(oracle) = oracle() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().canonicalize().expect("canonical");
    let shared_file = kit_copy(oracle, "site-1", &dir.join("kits-shared"));
    write_file(
        &shared_file.join("local/comm_config.json"),
        "{\"internal\": {\"scheme\": \"shared-file\", \"resources\": {\"root_dir\": \"/shared\"}}}",
    );
    let plain = oracle.prod.join("site-1");
    let cases: Vec<(&str, String, &Path)> = vec![
        ("docker security tls", format!("{DOCKER}  internal_connection_security: tls\n"), &plain),
        ("docker security MTLS", format!("{DOCKER}  internal_connection_security: MTLS\n"), &plain),
        ("docker security number", format!("{DOCKER}  internal_connection_security: 1\n"), &plain),
        ("docker unknown parent key", format!("{DOCKER}  bogus: 1\n"), &plain),
        (
            "docker reserved kwargs",
            format!("{DOCKER}job_launcher:\n  default_job_container_kwargs: {{image: x, auto_remove: true, shm_size: 1g}}\n"),
            &plain,
        ),
        (
            "docker reserved kwargs of 2.8",
            format!("{DOCKER}job_launcher:\n  default_job_container_kwargs: {{volumes: []}}\n"),
            &plain,
        ),
        ("docker shared-file kit", DOCKER.to_string(), &shared_file),
        ("k8s security bad", format!("{K8S}  internal_connection_security: none\n"), &plain),
        ("k8s bad pull secret", format!("{K8S}  image_pull_secrets: [Bad_Name]\n"), &plain),
        ("k8s bad job pull secret", format!("{K8S}job_launcher:\n  image_pull_secrets: ['a b']\n"), &plain),
        ("k8s negative timeout", format!("{K8S}job_launcher:\n  pending_timeout: -1\n"), &plain),
        ("k8s boolean timeout", format!("{K8S}job_launcher:\n  pending_timeout: true\n"), &plain),
        ("k8s namespace newline", "runtime: k8s\nnamespace: \"nvflare\\n\"\nparent:\n  docker_image: x:1\n".to_string(), &plain),
        ("k8s shared-file kit", K8S.to_string(), &shared_file),
    ];
    for (label, text, kit) in &cases {
        let config = write_file(&dir.join(format!("{}.yaml", label.replace(' ', "-"))), text);
        let pair = prepare_both(oracle, kit, &config, &dir, &label.replace(' ', "-"));
        assert_eq!(pair.theirs.code, 4, "{label}: the oracle: {}", pair.theirs.stdout);
        assert_eq!(pair.ours.code, 4, "{label}: flare-deploy: {}", pair.ours.stdout);
        assert_eq!(
            error_of(&pair.ours, &pair.our_out, kit),
            error_of(&pair.theirs, &pair.their_out, kit),
            "{label}"
        );
        assert_eq!(
            pair.ours.stderr, pair.theirs.stderr,
            "{label}: warnings before the error"
        );
        assert!(!pair.our_out.exists(), "{label}: no output");
    }
}

#[test]
fn a_null_connection_security_means_the_default() {
    // C1 for 2.9's key: nvflare 2.9.0 refuses `null`; flare-deploy reads it as unset.
    let Some(oracle) = oracle() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().canonicalize().expect("canonical");
    let config = write_file(
        &dir.join("null.yaml"),
        &format!("{DOCKER}  internal_connection_security: null\n"),
    );
    let pair = prepare_both(oracle, &oracle.prod.join("site-1"), &config, &dir, "null");
    assert_eq!(pair.theirs.code, 4, "the oracle refuses null: {}", pair.theirs.stdout);
    pair.ours.assert_ok();
    let comm: Value = serde_json::from_str(&read(&pair.our_out.join("local/comm_config.json"))).expect("json");
    assert_eq!(comm["internal"]["resources"]["connection_security"], "mtls");
}

#[test]
fn a_staged_kubernetes_output_is_not_replaced() {
    let Some(oracle) = oracle() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().canonicalize().expect("canonical");
    let k8s = write_file(&dir.join("k8s.yaml"), K8S);
    let docker = write_file(&dir.join("docker.yaml"), DOCKER);
    let kit = oracle.prod.join("site-1");
    let pair = prepare_both(oracle, &kit, &k8s, &dir, "staged");
    assert_same_output(&pair, "k8s");
    // Record staged names the way `deploy k8s stage` does.
    for out in [&pair.our_out, &pair.their_out] {
        let values = out.join("helm_chart/values.yaml");
        let text = read(&values).replace(
            "  local:\n    configMapName: null",
            "  local:\n    configMapName: nvflare-local-site-1",
        );
        assert!(text.contains("configMapName: nvflare-local-site-1"), "{text}");
        std::fs::write(&values, text).expect("write values");
    }
    for (label, config) in [("docker", &docker), ("k8s", &k8s)] {
        let again = prepare_both_at(oracle, &kit, config, pair.our_out.clone(), pair.their_out.clone());
        let (ours, theirs) = (again.ours, again.theirs);
        assert_eq!((ours.code, theirs.code), (4, 4), "{label}");
        let (code, message, hint) = error_of(&ours, &pair.our_out, &kit);
        let (their_code, their_message, their_hint) = error_of(&theirs, &pair.their_out, &kit);
        assert_eq!((&code, &message), (&their_code, &their_message), "{label}");
        // T5: the hint names our own unstage.
        assert_eq!(
            their_hint,
            "After Helm uninstall, run nvflare deploy k8 unstage <out> before replacing this output."
        );
        assert_eq!(
            hint,
            "After Helm uninstall, run flare-deploy k8s unstage <out> before replacing this output."
        );
        assert_eq!(ours.json()["error_code"], "OUTPUT_STAGED");
        assert!(
            pair.our_out.join("helm_chart/values.yaml").is_file(),
            "{label}: the output stays"
        );
    }
}
