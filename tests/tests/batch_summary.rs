//! The `prepare --all` text summary: each prepared kit's output and the next step its
//! target describes (the same command a single-kit prepare prints), the runtime of kits
//! that failed after their config was read; and the refusal of a federation whose sites
//! would take one runtime name (nothing is prepared).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::Path;

use flare_deploy_tests::fsutil::{tempdir, write_file};
use flare_deploy_tests::harness::{prepare_all_argv, prepare_argv};
use flare_deploy_tests::kitgen;
use flare_deploy_tests::{flare_deploy, Project, Run, Snapshot};
use serde_json::{json, Value};

const DOCKER: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";
const K8S: &str = "runtime: k8s\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";

fn run(args: &[&dyn AsRef<OsStr>]) -> Run {
    flare_deploy(args.iter().map(|a| a.as_ref()))
}

/// `kit: key: value` lines after the table, by kit, in order.
fn kit_lines(stdout: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let after_table = stdout.split("\n\n").nth(1).unwrap_or_default();
    for line in after_table.lines().skip(1) {
        let Some((kit, rest)) = line.split_once(": ") else {
            continue;
        };
        let Some((key, value)) = rest.split_once(": ") else {
            continue;
        };
        out.entry(kit.to_string())
            .or_default()
            .push((key.to_string(), value.to_string()));
    }
    out
}

/// The table row of `kit` as its whitespace-separated cells.
fn row<'a>(stdout: &'a str, kit: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&kit))
        .unwrap_or_else(|| panic!("no row for {kit}:\n{stdout}"))
}

/// The fields a single-kit `prepare --format json` prints for `kit` into `output`.
fn single_result(kit: &Path, config: &Path, output: &Path) -> Value {
    let mut argv: Vec<OsString> = vec!["--format".into(), "json".into()];
    argv.extend(prepare_argv(kit, config, output));
    let single = flare_deploy(argv);
    single.assert_ok();
    single.json()["data"].clone()
}

#[test]
fn docker_summary_shows_each_output_and_its_start_command() {
    let (_tmp, root) = tempdir();
    let dir = kitgen::federation(&root, &["site-1", "site-2"], true);
    let config = write_file(&root.join("docker.yaml"), DOCKER);
    let out_root = root.join("out");
    let batch = flare_deploy(prepare_all_argv(&dir, &config, &out_root));
    batch.assert_ok();
    let lines = kit_lines(&batch.stdout);
    assert_eq!(
        lines.keys().collect::<Vec<_>>(),
        ["server1", "site-1", "site-2"],
        "{}",
        batch.stdout
    );
    assert!(!lines.contains_key("admin@x.com"), "a skipped kit has no next step");
    for kit in ["server1", "site-1", "site-2"] {
        let output = out_root.join(kit);
        let steps = &lines[kit];
        assert_eq!(steps[0], ("output".to_string(), output.display().to_string()), "{kit}");
        let (key, command) = &steps[1];
        assert_eq!(key, "start_command", "{kit}: {steps:?}");
        assert!(
            command.starts_with("cd ") && command.ends_with(" && ./startup/start_docker.sh"),
            "{command}"
        );
        assert!(output.join("startup/start_docker.sh").is_file());
        // The same next step a single-kit prepare of that kit prints.
        let single = single_result(&dir.join(kit), &config, &output);
        assert_eq!(single["start_command"], command.as_str(), "{kit}");
        let others: Vec<_> = steps[2..].iter().filter(|(key, _)| key != "Warning").collect();
        assert!(others.is_empty(), "{kit}: only the output and one command: {steps:?}");
    }
}

#[test]
fn k8s_summary_shows_the_helm_command() {
    let (_tmp, root) = tempdir();
    let dir = kitgen::federation(&root, &["site-1"], true);
    let config = write_file(&root.join("k8s.yaml"), K8S);
    let batch = run(&[&"prepare", &"--all", &dir, &"--config", &config]);
    batch.assert_ok();
    let lines = kit_lines(&batch.stdout);
    for kit in ["server1", "site-1"] {
        let output = dir.join(kit).join("prepared/k8s");
        let steps = &lines[kit];
        assert_eq!(steps[0], ("output".to_string(), output.display().to_string()));
        let (key, command) = &steps[1];
        assert_eq!(key, "helm_command");
        assert!(
            command.starts_with(&format!("helm upgrade --install {kit} ")) && command.ends_with(" --namespace default"),
            "{command}"
        );
        let single = single_result(&dir.join(kit), &config, &output);
        assert_eq!(single["helm_command"], command.as_str());
    }
}

#[test]
fn failed_kits_show_their_runtime_when_the_config_named_one() {
    let (_tmp, root) = tempdir();
    let dir = kitgen::federation(&root, &["site-1", "site-nokey", "site-noconf"], true);
    // Each kit uses its own config.yaml: site-noconf has none.
    for kit in ["server1", "site-1", "site-nokey"] {
        write_file(&dir.join(kit).join("config.yaml"), DOCKER);
    }
    std::fs::remove_file(dir.join("site-nokey/startup/client.key")).expect("rm key");
    let batch = run(&[&"prepare", &"--all", &dir]);
    assert_eq!(batch.code, 4, "{batch:?}");
    assert_eq!(
        row(&batch.stdout, "site-nokey"),
        ["site-nokey", "client", "docker", "INVALID_KIT"]
    );
    assert_eq!(
        row(&batch.stdout, "site-noconf"),
        ["site-noconf", "client", "-", "CONFIG_NOT_FOUND"]
    );
    assert_eq!(row(&batch.stdout, "site-1"), ["site-1", "client", "docker", "ok"]);
    let lines = kit_lines(&batch.stdout);
    assert!(!lines.contains_key("site-nokey") && !lines.contains_key("site-noconf"));
    assert!(lines.contains_key("site-1"));

    let json = run(&[&"--format", &"json", &"prepare", &"--all", &dir]);
    assert_eq!(json.code, 4);
    let doc = json.json();
    let runtime = |kit: &str| -> Value {
        doc["data"]["kits"]
            .as_array()
            .and_then(|k| k.iter().find(|i| i["kit"] == kit))
            .map(|i| i["runtime"].clone())
            .unwrap_or_else(|| panic!("{kit} not listed: {doc}"))
    };
    assert_eq!(runtime("site-nokey"), "docker");
    assert_eq!(runtime("site-noconf"), Value::Null);
    assert_eq!(runtime("site-1"), "docker");
}

// ---------------------------------------------------------------------------------------
// colliding runtime names

#[track_caller]
fn assert_refused(root: &Path, dir: &Path, config: &Path, message: &str) {
    let out_root = root.join("outputs");
    let before = Snapshot::take(root, &[]);
    let hint = "Runtime names are derived from site names and must differ within a federation: rename one of the sites in the project file and provision again, or prepare the two kits for different namespaces or hosts one at a time.";
    let txt = flare_deploy(prepare_all_argv(dir, config, &out_root));
    txt.assert_txt_error("INVALID_ARGS", message, hint);
    assert_eq!(txt.stdout, "", "no table: nothing was prepared");
    let json = run(&[&"--format", &"json", &"prepare", &"--all", &dir, &"--config", &config]);
    assert_eq!(json.code, 4);
    let doc = json.json();
    assert_eq!(
        (doc["status"].clone(), doc["error_code"].clone(), doc["message"].clone()),
        (json!("error"), json!("INVALID_ARGS"), json!(message))
    );
    // Not one kit prepared, no output root, no prepared/ in any kit.
    Snapshot::take(root, &[]).assert_same_as(&before, "the federation after the refusal");
    assert!(!out_root.exists());
}

#[test]
fn sites_that_collide_in_kubernetes_are_refused_naming_both() {
    let (_tmp, root) = tempdir();
    // `Site_1` is not a Kubernetes name, so it becomes `site-1-<digest>`: the reference's
    // own test vector gives `site-1-ab7f9d10`, which another site may be called.
    let dir = kitgen::federation(&root, &["Site_1", "site-1-ab7f9d10", "site-2"], true);
    let config = write_file(&root.join("k8s.yaml"), K8S);
    let message = "Sites 'Site_1' (kit Site_1) and 'site-1-ab7f9d10' (kit site-1-ab7f9d10) would both get the Helm release name 'site-1-ab7f9d10' (namespace 'default'); nothing was prepared.";
    assert_refused(&root, &dir, &config, message);
    // Each kit alone is fine: it is the pair that collides.
    let single = root.join("single");
    run(&[
        &"prepare",
        &dir.join("Site_1"),
        &"--config",
        &config,
        &"--output",
        &single,
    ])
    .assert_ok();
}

#[test]
fn sites_that_collide_as_docker_containers_are_refused() {
    let (_tmp, root) = tempdir();
    let config = write_file(&root.join("docker.yaml"), DOCKER);
    // The container name a site with a space in its name gets, read from its own start
    // script; a second site is then called exactly that.
    let probe_dir = root.join("probe");
    let probe = Project::new("p").client("site 1").build(&probe_dir);
    let probe_out = root.join("probe-out");
    run(&[&"prepare", &probe.dir, &"--config", &config, &"--output", &probe_out]).assert_ok();
    let script = std::fs::read_to_string(probe_out.join("startup/start_docker.sh")).expect("script");
    let container = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("docker run --name "))
        .map(|rest| rest.trim_end_matches(" \\").trim().to_string())
        .unwrap_or_else(|| panic!("no docker run --name in\n{script}"));
    assert!(container.starts_with("site-1-"), "{container}");
    std::fs::remove_dir_all(&probe_dir).expect("rm probe");
    std::fs::remove_dir_all(&probe_out).expect("rm probe output");

    let dir = kitgen::federation(&root, &["site 1", &container], true);
    let message = format!(
        "Sites 'site 1' (kit site 1) and '{container}' (kit {container}) would both get the Docker container name '{container}'; nothing was prepared."
    );
    assert_refused(&root, &dir, &config, &message);
}

#[test]
fn a_dry_run_refuses_the_same_collision() {
    let (_tmp, root) = tempdir();
    let dir = kitgen::federation(&root, &["Site_1", "site-1-ab7f9d10"], true);
    let config = write_file(&root.join("k8s.yaml"), K8S);
    let before = Snapshot::take(&root, &[]);
    let dry = run(&[&"prepare", &"--all", &dir, &"--config", &config, &"--dry-run"]);
    assert_eq!(dry.code, 4, "{dry:?}");
    assert!(
        dry.stderr
            .contains("would both get the Helm release name 'site-1-ab7f9d10'"),
        "{}",
        dry.stderr
    );
    Snapshot::take(&root, &[]).assert_same_as(&before, "after the refused dry run");
}

#[test]
fn the_same_names_in_different_namespaces_do_not_collide() {
    // Kits with their own configs: the two colliding sites in different namespaces are fine.
    let (_tmp, root) = tempdir();
    let dir = kitgen::federation(&root, &["Site_1", "site-1-ab7f9d10"], true);
    write_file(&dir.join("server1/config.yaml"), K8S);
    write_file(&dir.join("Site_1/config.yaml"), &format!("{K8S}namespace: team-a\n"));
    write_file(
        &dir.join("site-1-ab7f9d10/config.yaml"),
        &format!("{K8S}namespace: team-b\n"),
    );
    run(&[&"prepare", &"--all", &dir]).assert_ok();
    assert!(dir.join("Site_1/prepared/k8s/helm_chart").is_dir());
    assert!(dir.join("site-1-ab7f9d10/prepared/k8s/helm_chart").is_dir());
}
