//! `runtime: slurm` (NVFlare 2.9; docs/dev/nvflare-2.9-behaviour.md section C, our
//! deviations SL1-SL9): every validation rule in nvflare 2.9.0's order with its code,
//! message and hint, in txt and json, with nothing written and the kit unchanged; the
//! output files, their modes and contents; the result fields; and the two scripts run by
//! bash on hostile paths (inert, exact arguments) and checked by shellcheck.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use flare_deploy_tests::fsutil::{os, read, write_file};
use flare_deploy_tests::harness::{run_exact, Run};
use flare_deploy_tests::{tools, Kit, Project, Snapshot};
use serde_json::{json, Value};
use tempfile::TempDir;

const FIX: &str = "Fix the runtime config.";
const UNKNOWN: &str = "Remove or rename unsupported keys.";
const JL_HINT: &str = "Fix slurm config.job_launcher.";
const PARENT_HINT: &str = "Fix the parent Slurm directives.";
const COMM_HINT: &str = "Fix the startup kit comm config.";
const HEAD: &str = "runtime: slurm\n";
const JL: &str = "job_launcher:\n  sandbox: none\n  python_path: /opt/py/bin/python\n";
const SERVER_LAUNCHER: &str = "nvflare.app_opt.job_launcher.slurm.ServerSlurmJobLauncher";
const CLIENT_LAUNCHER: &str = "nvflare.app_opt.job_launcher.slurm.ClientSlurmJobLauncher";

struct Fixture {
    _tmp: TempDir,
    root: PathBuf,
    client: Kit,
    server: Kit,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().canonicalize().expect("canonical");
    let project = Project::new("proj");
    let client = project.client("site-1").build(&root.join("kits"));
    let server = project.server("server1").build(&root.join("kits"));
    Fixture {
        _tmp: tmp,
        root,
        client,
        server,
    }
}

/// `[--format json] prepare <kit> --config <config> [--output <out>] --nvflare-version 2.9`.
fn prepare(kit: &Path, config: &Path, output: Option<&Path>, json: bool) -> Run {
    let mut args: Vec<OsString> = Vec::new();
    if json {
        args.extend(os(&[&"--format", &"json"]));
    }
    args.extend(os(&[&"prepare", &kit, &"--config", &config]));
    if let Some(out) = output {
        args.extend(os(&[&"--output", &out]));
    }
    args.extend(os(&[&"--nvflare-version", &"2.9"]));
    run_exact(None, args, &[])
}

/// The error in txt (default output under the kit) and json (explicit output), with
/// nothing written and the kit unchanged.
#[track_caller]
fn assert_refused(kit: &Kit, root: &Path, config: &str, code: &str, message: &str, hint: &str) {
    let config_path = write_file(&root.join("slurm.yaml"), config);
    let before = Snapshot::take(&kit.dir, &[]);
    let run = prepare(&kit.dir, &config_path, None, false);
    assert_eq!(run.code, 4, "config:\n{config}\nstderr:\n{}", run.stderr);
    // Warnings of steps before the failing one (kit errors) come first, nothing else.
    assert!(
        run.stdout.lines().all(|l| l.starts_with("Warning: ")),
        "config:\n{config}\nstdout:\n{}",
        run.stdout
    );
    assert!(
        run.stderr
            .ends_with(&format!("{message}\nHint: {hint}\nCode: {code} (exit 4)\n")),
        "config:\n{config}\nexpected: {message} / {hint}\ngot:\n{}",
        run.stderr
    );
    assert!(!kit.path("prepared/slurm").exists(), "config:\n{config}");
    let out = root.join("out-json");
    let run = prepare(&kit.dir, &config_path, Some(&out), true);
    assert_eq!(run.code, 4, "config:\n{config}\n{run:?}");
    let doc = run.json();
    assert_eq!(
        (
            doc["status"].as_str(),
            doc["error_code"].as_str(),
            doc["message"].as_str(),
            doc["hint"].as_str()
        ),
        (Some("error"), Some(code), Some(message), Some(hint)),
        "config:\n{config}"
    );
    assert!(!out.exists(), "config:\n{config}");
    assert!(
        Snapshot::take(&kit.dir, &[]) == before,
        "kit changed; config:\n{config}"
    );
}

fn jl(extra: &str) -> String {
    format!("{HEAD}{JL}{extra}")
}

#[test]
fn every_config_rule_is_refused_in_order_with_its_message() {
    let f = fixture();
    let parent = |body: &str| format!("{HEAD}parent:\n{body}{JL}");
    let sandbox = |body: &str| format!("{HEAD}job_launcher:\n{body}");
    let sif = f.root.join("img.sif");
    write_file(&sif, "sif");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{HEAD}bogus: 1\n{JL}"),
            "Unknown keys in slurm config: ['bogus']",
            UNKNOWN,
        ),
        (format!("{HEAD}parent: 3\n{JL}"), "parent must be a YAML mapping.", FIX),
        (parent("  x: 1\n"), "Unknown keys in parent: ['x']", UNKNOWN),
        (
            parent("  sbatch_directives: [a]\n"),
            "parent.sbatch_directives must be a mapping",
            PARENT_HINT,
        ),
        (
            parent("  sbatch_directives: {gpus: 1, acct: 2}\n"),
            "unsupported parent.sbatch_directives: ['acct', 'gpus']",
            PARENT_HINT,
        ),
        (
            parent("  sbatch_directives: {partition: true}\n"),
            "parent.sbatch_directives.partition must be a string or integer",
            PARENT_HINT,
        ),
        (
            parent("  sbatch_directives: {qos: 1.5}\n"),
            "parent.sbatch_directives.qos must be a string or integer",
            PARENT_HINT,
        ),
        (
            parent("  sbatch_directives: {partition: ''}\n"),
            "parent.sbatch_directives.partition must be a non-empty string",
            PARENT_HINT,
        ),
        (
            parent("  sbatch_directives: {time: \"a\\0b\"}\n"),
            "parent.sbatch_directives.time contains a forbidden NUL",
            PARENT_HINT,
        ),
        (
            parent("  sbatch_directives: {account: 'a b'}\n"),
            "parent.sbatch_directives.account must not contain whitespace",
            PARENT_HINT,
        ),
        (
            parent("  sbatch_directives: {account: \"a\\nb\"}\n"),
            "parent.sbatch_directives.account must not contain whitespace",
            PARENT_HINT,
        ),
        (
            parent("  environment_setup: 1\n"),
            "parent.environment_setup must be a string.",
            FIX,
        ),
        (
            parent("  environment_setup: \"a\\0\"\n"),
            "parent.environment_setup must not contain NUL characters.",
            FIX,
        ),
        (
            HEAD.to_string(),
            "slurm config.job_launcher is required.",
            "Add the Slurm launcher settings.",
        ),
        (
            format!("{HEAD}job_launcher:\n"),
            "job_launcher must be a YAML mapping.",
            FIX,
        ),
        (
            format!("{HEAD}job_launcher: [1]\n"),
            "job_launcher must be a YAML mapping.",
            FIX,
        ),
        (
            jl("  bogus: 1\n  zz: 2\n"),
            "Unknown keys in job_launcher: ['bogus', 'zz']",
            UNKNOWN,
        ),
        (
            jl("  internal_connection_security: tls\n"),
            "job_launcher.internal_connection_security must be 'clear' or 'mtls'.",
            "Set job_launcher.internal_connection_security to 'clear' or 'mtls'.",
        ),
        (
            jl("  internal_connection_security: null\n"),
            "job_launcher.internal_connection_security must be 'clear' or 'mtls'.",
            "Set job_launcher.internal_connection_security to 'clear' or 'mtls'.",
        ),
    ];
    // The normaliser's messages, all with the same hint.
    let launcher_cases: Vec<(String, &str)> = vec![
        (sandbox("  python_path: /p\n"), "sandbox must be a non-empty string"),
        (sandbox("  sandbox: ''\n"), "sandbox must be a non-empty string"),
        (sandbox("  sandbox: \"a\\0\"\n"), "sandbox contains a forbidden NUL"),
        (sandbox("  sandbox: none\n"), "python_path must be a non-empty string"),
        (
            sandbox("  sandbox: none\n  python_path: \"/a\\0\"\n"),
            "python_path contains a forbidden NUL",
        ),
        (
            sandbox("  sandbox: none\n  python_path: bin/python\n"),
            "python_path must be absolute",
        ),
        (
            jl("  internal_port: 0\n"),
            "internal_port must be an integer greater than or equal to 1",
        ),
        (
            jl("  internal_port: true\n"),
            "internal_port must be an integer greater than or equal to 1",
        ),
        (
            jl("  internal_port: '8102'\n"),
            "internal_port must be an integer greater than or equal to 1",
        ),
        (
            jl("  internal_port: null\n"),
            "internal_port must be an integer greater than or equal to 1",
        ),
        (jl("  internal_port: 65536\n"), "internal_port must be at most 65535"),
        (
            jl("  submit_timeout: 0\n"),
            "submit_timeout must be a finite positive number",
        ),
        (
            jl("  query_timeout: .inf\n"),
            "query_timeout must be a finite positive number",
        ),
        (
            jl("  cancel_timeout: true\n"),
            "cancel_timeout must be a finite positive number",
        ),
        (
            jl("  poll_interval: null\n"),
            "poll_interval must be a finite positive number",
        ),
        (
            jl("  pending_timeout: -1\n"),
            "pending_timeout must be a finite positive number",
        ),
        (
            jl("  submit_timeout: 0\n  setup: 1\n"),
            "submit_timeout must be a finite positive number",
        ),
        (jl("  setup: 1\n"), "setup must be a string"),
        (jl("  setup: \"a\\0\"\n"), "setup contains a forbidden NUL"),
        (jl("  forward_env: HOME\n"), "forward_env must be a list"),
        (
            jl("  forward_env: [1BAD]\n"),
            "forward_env entry must match [A-Za-z_][A-Za-z0-9_]*",
        ),
        (
            jl("  forward_env: [3]\n"),
            "forward_env entry must match [A-Za-z_][A-Za-z0-9_]*",
        ),
        (
            jl("  forward_env: [OK, PYTHONPATH]\n"),
            "forward_env entry 'PYTHONPATH' is launcher-owned",
        ),
        (
            jl("  forward_env: [SLURM_JOB_ID]\n"),
            "forward_env entry 'SLURM_JOB_ID' is launcher-owned",
        ),
        (
            jl("  forward_env: [_nvfl_x]\n"),
            "forward_env entry '_nvfl_x' is launcher-owned",
        ),
        (jl("  executables: []\n"), "executables must be a mapping"),
        (jl("  executables: false\n"), "executables must be a mapping"),
        (
            jl("  executables: {bogus: /x, sbatch: /y}\n"),
            "executables has unknown key(s): ['bogus']",
        ),
        (
            jl("  executables: {sbatch: bin/sbatch}\n"),
            "executables.sbatch must be absolute",
        ),
        (
            jl("  executables: {scancel: ''}\n"),
            "executables.scancel must be a non-empty string",
        ),
        (
            jl("  executables: {srun: 1}\n"),
            "executables.srun must be a non-empty string",
        ),
        (
            sandbox("  sandbox: docker\n  python_path: /p\n"),
            "sandbox must be one of ['apptainer', 'none', 'pyxis']",
        ),
        (
            sandbox("  sandbox: apptainer\n  python_path: /p\n"),
            "image is required for sandbox 'apptainer'",
        ),
        (
            sandbox("  sandbox: pyxis\n  python_path: /p\n  image: null\n"),
            "image is required for sandbox 'pyxis'",
        ),
        (jl("  image: ''\n"), "image must be a non-empty string"),
        (jl("  image: img.sif\n"), "image must be absolute"),
        (
            sandbox("  sandbox: apptainer\n  python_path: /p\n  image: /nonexistent/img.sif\n"),
            "image is not an existing regular file: /nonexistent/img.sif",
        ),
        (jl("  sbatch_directives: x\n"), "sbatch_directives must be a mapping"),
        (
            jl("  sbatch_directives: {gpus: 1}\n"),
            "unsupported sbatch_directives: ['gpus']",
        ),
        (
            jl("  sbatch_directives: {time: '1 h'}\n"),
            "sbatch_directives.time must not contain whitespace",
        ),
        (jl("  parent_host: ''\n"), "parent_host must be a non-empty string"),
        (
            jl("  multi_node_port_range: x\n"),
            "multi_node_port_range must have the form 'START-END'",
        ),
        (
            jl("  multi_node_port_range: '2000-'\n"),
            "multi_node_port_range must have the form 'START-END'",
        ),
        (
            jl("  multi_node_port_range: [2000]\n"),
            "multi_node_port_range must have the form 'START-END'",
        ),
        (
            jl("  multi_node_port_range: 2000\n"),
            "multi_node_port_range must have the form 'START-END'",
        ),
        (
            jl("  multi_node_port_range: [1000, 2000]\n"),
            "multi_node_port_range start must be an integer greater than or equal to 1024",
        ),
        (
            jl("  multi_node_port_range: [2000, true]\n"),
            "multi_node_port_range end must be an integer greater than or equal to 1024",
        ),
        (
            jl("  multi_node_port_range: '3000-2000'\n"),
            "multi_node_port_range must be within 1024..65535 with START <= END",
        ),
        (
            jl("  multi_node_port_range: [2000, 70000]\n"),
            "multi_node_port_range must be within 1024..65535 with START <= END",
        ),
        (
            jl("  multi_node_port_range: '8000-9000'\n"),
            "multi_node_port_range must not contain internal_port",
        ),
    ];
    for (config, message, hint) in &cases {
        assert_refused(&f.client, &f.root, config, "INVALID_CONFIG", message, hint);
    }
    for (config, message) in &launcher_cases {
        assert_refused(&f.client, &f.root, config, "INVALID_CONFIG", message, JL_HINT);
    }
    // A directory is not an image file.
    assert_refused(
        &f.client,
        &f.root,
        &sandbox(&format!(
            "  sandbox: apptainer\n  python_path: /p\n  image: {}\n",
            f.root.display()
        )),
        "INVALID_CONFIG",
        &format!("image is not an existing regular file: {}", f.root.display()),
        JL_HINT,
    );
    // An existing file passes this check (the output tests follow a symlink to one).
    let ok = sandbox(&format!(
        "  sandbox: pyxis\n  python_path: /p\n  image: {}\n  parent_host: ''\n",
        sif.display()
    ));
    assert_refused(
        &f.client,
        &f.root,
        &ok,
        "INVALID_CONFIG",
        "parent_host must be a non-empty string",
        JL_HINT,
    );
}

#[test]
fn nvflare_2_8_is_refused_because_slurm_needs_2_9() {
    let f = fixture();
    let config = write_file(
        &f.root.join("slurm.yaml"),
        &format!("{}nvflare_version: '2.8'\n", jl("")),
    );
    let before = Snapshot::take(&f.client.dir, &[]);
    let run = run_exact(None, os(&[&"prepare", &f.client.dir, &"--config", &config]), &[]);
    run.assert_txt_error(
        "INVALID_CONFIG",
        "Runtime 'slurm' does not support NVFlare 2.8; it supports 2.9.",
        "Set nvflare_version in the config (or --nvflare-version) to a release the runtime supports.",
    );
    assert!(!f.client.path("prepared").exists());
    assert!(Snapshot::take(&f.client.dir, &[]) == before);
}

#[test]
fn kit_and_output_rules_are_refused() {
    let f = fixture();
    let with_parent = format!("{HEAD}parent: {{}}\n{JL}");
    assert_refused(
        &f.server,
        &f.root,
        &with_parent,
        "INVALID_CONFIG",
        "Slurm server kits do not support parent configuration.",
        "Run the server parent on a stable login/service host and remove parent from slurm.yaml.",
    );
    // The output is the live workspace: characters Slurm cannot take are refused.
    let config = write_file(&f.root.join("ok.yaml"), &jl(""));
    for (dir, why) in [
        ("a:b", "must not contain the path-list separator ':'"),
        ("a,b", "must not contain ','"),
        ("a%jb", "must not contain '%' (sbatch reads it as a filename pattern)"),
    ] {
        let out = f.root.join(dir);
        let run = prepare(&f.client.dir, &config, Some(&out), false);
        run.assert_txt_error(
            "INVALID_ARGS",
            &format!("Invalid Slurm output workspace: workspace_path {why}"),
            "Choose a different --output path.",
        );
        assert!(!out.exists(), "{dir}");
    }
    let ok = jl("");
    // A shared-file kit needs an absolute root_dir and clear security (kept, SL3).
    let kit = Project::new("proj").client("site-2").build(&f.root.join("kits"));
    let comm = kit.path("local/comm_config.json");
    for (doc, code, message, hint) in [
        (
            json!({"internal": {"scheme": "shared-file", "resources": {"root_dir": "rel"}}}),
            "INVALID_KIT",
            "file transport requires an absolute internal.resources.root_dir.",
            COMM_HINT,
        ),
        (
            json!({"internal": {"scheme": "shared-file", "resources": {"root_dir": "/s", "connection_security": "mtls"}}}),
            "INVALID_KIT",
            "file transport supports only clear connection security.",
            COMM_HINT,
        ),
        (
            json!({"internal": "tcp"}),
            "INVALID_KIT",
            "comm_config.json internal must be a mapping.",
            COMM_HINT,
        ),
    ] {
        write_file(&comm, &doc.to_string());
        assert_refused(&kit, &f.root, &ok, code, message, hint);
    }
    write_file(
        &comm,
        &json!({"internal": {"scheme": "shared-file", "resources": {"root_dir": "/s"}}}).to_string(),
    );
    assert_refused(
        &kit,
        &f.root,
        &jl("  internal_connection_security: mtls\n"),
        "INVALID_CONFIG",
        "job_launcher.internal_connection_security is 'mtls', but the kit's internal.scheme 'shared-file' supports only clear connection security.",
        "Remove job_launcher.internal_connection_security (or set it to 'clear'), or use a kit whose internal.scheme is 'tcp'.",
    );
    std::fs::remove_file(&comm).expect("rm");
    // SL2: a legacy study_data.yaml, which the Slurm launcher refuses.
    let legacy = kit.path("local/study_data.yaml");
    write_file(&legacy, "default: {}\n");
    assert_refused(
        &kit,
        &f.root,
        &ok,
        "INVALID_KIT",
        "The kit has a legacy local/study_data.yaml, which NVFlare 2.9's Slurm job launcher refuses.",
        "Move its settings into local/study_runtime.yaml (format_version 2) and remove local/study_data.yaml.",
    );
    std::fs::remove_file(&legacy).expect("rm");
    // SL1: no sub_start.sh for start_slurm.sh to run.
    std::fs::remove_file(kit.path("startup/sub_start.sh")).expect("rm");
    assert_refused(
        &kit,
        &f.root,
        &ok,
        "INVALID_KIT",
        "The kit has no startup/sub_start.sh, which startup/start_slurm.sh runs.",
        "Prepare a kit provisioned by NVFlare 2.9 (not an output already prepared for another runtime).",
    );
}

fn without_warnings(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| !l.starts_with("Warning: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).expect("stat").permissions().mode() & 0o777
}

fn component<'a>(resources: &'a Value, id: &str) -> &'a Value {
    resources["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {resources}"))
}

const CLIENT_CONFIG: &str = "runtime: slurm
parent:
  sbatch_directives: {partition: cpu, time: 1:30:00, account: 42}
  environment_setup: \"module load python/3.11\\nsource /opt/nvflare/venv/bin/activate\"
job_launcher:
  sandbox: none
  python_path: /opt/nvflare/venv/bin/python
  sbatch_directives: {qos: high}
  setup: module load cuda
  forward_env: [HOME, MY_VAR]
  executables: {sbatch: /usr/bin/sbatch, srun: srun}
  internal_connection_security: clear
  internal_port: 9000
  submit_timeout: 5
  pending_timeout: 1.5
";

#[test]
fn client_with_parent_is_prepared_as_the_live_workspace() {
    let f = fixture();
    let config = write_file(&f.root.join("slurm.yaml"), CLIENT_CONFIG);
    let out = f.root.join("out").join("site-1");
    let before = Snapshot::take(&f.client.dir, &[]);
    let run = prepare(&f.client.dir, &config, Some(&out), false);
    run.assert_ok();
    assert!(Snapshot::take(&f.client.dir, &[]) == before, "input kit changed");
    let o = out.display();
    assert_eq!(
        without_warnings(&run.stdout),
        format!(
            "runtime: slurm\nrole: client\nname: site-1\noutput: {o}\nstart_command: cd {o} && ./startup/start_slurm.sh\n\
             start_script: {o}/startup/start_slurm.sh\nresources: {o}/local/resources.json.default\n\
             submit_command: sbatch --parsable --output={o}/parent-slurm-%j.out {o}/startup/parent.slurm\n"
        )
    );
    // Files and modes (C.7, C.8).
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&out.join("startup/start_slurm.sh")), 0o700);
    assert_eq!(mode(&out.join("startup/parent.slurm")), 0o700);
    assert_eq!(mode(&out.join("startup/sub_start.sh")), 0o755);
    for gone in ["start.sh", "stop_fl.sh"] {
        assert!(!out.join("startup").join(gone).exists(), "{gone}");
    }
    assert!(out.join("local/study_runtime.yaml").is_file());
    assert_eq!(
        read(&out.join("startup/start_slurm.sh")),
        format!("#!/usr/bin/env bash\nset -euo pipefail\nexport NVFL_WORKSPACE={o}\nexec \"$NVFL_WORKSPACE/startup/sub_start.sh\" --once\n")
    );
    // SL7: YAML 1.2 keeps 1:30:00 a string.
    assert_eq!(
        read(&out.join("startup/parent.slurm")),
        format!(
            "#!/usr/bin/env bash\n#SBATCH --partition=cpu\n#SBATCH --time=1:30:00\n#SBATCH --account=42\nset -euo pipefail\n\
             module load python/3.11\nsource /opt/nvflare/venv/bin/activate\nWORKSPACE_ROOT={o}\nexec \"$WORKSPACE_ROOT/startup/start_slurm.sh\"\n"
        )
    );
    let resources: Value = serde_json::from_str(&read(&out.join("local/resources.json.default"))).expect("json");
    let launcher = component(&resources, "slurm_launcher");
    assert_eq!(launcher["path"], CLIENT_LAUNCHER);
    assert_eq!(
        launcher["args"],
        json!({
            "sandbox": "none", "python_path": "/opt/nvflare/venv/bin/python",
            "executables": {"sbatch": "/usr/bin/sbatch", "squeue": null, "sacct": null, "scancel": null, "apptainer": null, "srun": "srun"},
            "image": null, "internal_port": 9000, "sbatch_directives": {"qos": "high"}, "setup": "module load cuda",
            "forward_env": ["HOME", "MY_VAR"], "parent_host": null, "submit_timeout": 5.0, "query_timeout": 10.0,
            "cancel_timeout": 10.0, "poll_interval": 10.0, "pending_timeout": 1.5, "workspace_path": out.display().to_string(),
        })
    );
    let text = read(&out.join("local/resources.json.default"));
    assert!(
        text.contains("\"submit_timeout\": 5.0,"),
        "floats as Python writes them"
    );
    assert_eq!(component(&resources, "resource_manager")["args"], json!({}));
    assert_eq!(
        serde_json::from_str::<Value>(&read(&out.join("local/comm_config.json"))).expect("json"),
        json!({"allow_adhoc_conns": false, "backbone_conn_gen": 2,
               "internal": {"scheme": "tcp", "resources": {"connection_security": "clear", "host": "0.0.0.0", "port": 9000}}})
    );
    // json envelope: the same fields, submit_command last.
    let run = prepare(&f.client.dir, &config, Some(&out), true);
    run.assert_ok();
    let doc = run.json();
    let keys: Vec<&String> = doc["data"].as_object().expect("data").keys().collect();
    assert_eq!(
        keys,
        [
            "runtime",
            "role",
            "name",
            "output",
            "start_command",
            "start_script",
            "resources",
            "submit_command"
        ]
    );
}

#[test]
fn server_storage_moves_into_the_output_and_parent_host_is_asked_for() {
    let f = fixture();
    let link = f.root.join("link.sif");
    write_file(&f.root.join("img.sif"), "sif");
    std::os::unix::fs::symlink(f.root.join("img.sif"), &link).expect("symlink");
    let config = write_file(
        &f.root.join("slurm.yaml"),
        &format!(
            "{HEAD}parent: null\njob_launcher:\n  sandbox: apptainer\n  python_path: /p\n  image: {}\n  multi_node_port_range: '40000-40100'\n",
            link.display()
        ),
    );
    let out = f.root.join("server-out");
    let run = prepare(&f.server.dir, &config, Some(&out), false);
    run.assert_ok();
    assert!(!run.stdout.contains("submit_command"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("Warning: Slurm server kit without job_launcher.parent_host"),
        "SL6: {}",
        run.stdout
    );
    assert!(!out.join("startup/parent.slurm").exists());
    let resources: Value = serde_json::from_str(&read(&out.join("local/resources.json.default"))).expect("json");
    let launcher = component(&resources, "slurm_launcher");
    assert_eq!(launcher["path"], SERVER_LAUNCHER);
    assert_eq!(launcher["args"]["image"], f.root.join("img.sif").display().to_string());
    assert_eq!(launcher["args"]["multi_node_port_range"], json!([40000, 40100]));
    assert_eq!(
        component(&resources, "job_manager")["args"]["uri_root"],
        format!("{}/jobs-storage", out.display())
    );
    assert_eq!(
        resources["snapshot_persistor"]["args"]["storage"]["args"]["root_dir"],
        format!("{}/snapshot-storage", out.display())
    );
    // With parent_host: no warning; multi_node_port_range null is not written (SL5).
    let config = write_file(
        &f.root.join("slurm2.yaml"),
        &jl("  parent_host: login1\n  multi_node_port_range: null\n"),
    );
    let run = prepare(&f.server.dir, &config, Some(&out), false);
    run.assert_ok();
    assert!(!run.stdout.contains("parent_host"), "{}", run.stdout);
    let resources: Value = serde_json::from_str(&read(&out.join("local/resources.json.default"))).expect("json");
    let args = &component(&resources, "slurm_launcher")["args"];
    assert!(args.get("multi_node_port_range").is_none(), "{args}");
    assert_eq!(args["parent_host"], "login1");
}

#[test]
fn shared_file_kits_keep_their_scheme() {
    let f = fixture();
    let comm = f.client.path("local/comm_config.json");
    write_file(
        &comm,
        &json!({"internal": {"scheme": "shared-file", "resources": {"root_dir": "/shared/nvfl"}}}).to_string(),
    );
    let config = write_file(&f.root.join("slurm.yaml"), &jl("  internal_port: 9000\n"));
    let out = f.root.join("out");
    let run = prepare(&f.client.dir, &config, Some(&out), false);
    run.assert_ok();
    assert!(
        run.stdout.contains("Warning: job_launcher.internal_port is not used"),
        "SL3: {}",
        run.stdout
    );
    assert_eq!(
        serde_json::from_str::<Value>(&read(&out.join("local/comm_config.json"))).expect("json"),
        json!({"internal": {"scheme": "shared-file", "resources": {"root_dir": "/shared/nvfl", "connection_security": "clear"}}})
    );
}

/// A directory of stubs: `sbatch` records its argv (one per line) in `$STUB_LOG`; the
/// kit's `sub_start.sh` records `$NVFL_WORKSPACE` and its argv.
fn stub_bin(dir: &Path) -> PathBuf {
    let bin = dir.join("stub-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let sbatch = write_file(
        &bin.join("sbatch"),
        "#!/usr/bin/env bash\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$STUB_LOG\"\necho 42\n",
    );
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

#[test]
fn hostile_paths_and_values_are_inert_in_the_scripts() {
    let f = fixture();
    let Some(shellcheck) = tools::require("shellcheck") else {
        return;
    };
    let sub_start = f.client.path("startup/sub_start.sh");
    write_file(
        &sub_start,
        "#!/usr/bin/env bash\nprintf '%s\\n' \"$NVFL_WORKSPACE\" \"$@\" > \"$SUB_LOG\"\n",
    );
    std::fs::set_permissions(&sub_start, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = write_file(
        &f.root.join("slurm.yaml"),
        &format!(
            "{HEAD}parent:\n  sbatch_directives: {{partition: \"$(touch${{IFS}}pwned)\", account: \"`touch`;'\\\"\"}}\n{JL}"
        ),
    );
    let work = f.root.join("cwd");
    std::fs::create_dir_all(&work).expect("mkdir");
    for name in [
        "it's a \"dir\"",
        "$(touch pwned)",
        "`touch pwned` ; & | * ? ~ !x {a} [b] <c> #d",
        "tab\there\nnewline",
        "-leading dash",
        "ünïcode $HOME \\ back",
    ] {
        let out = f.root.join("outs").join(name);
        let run = prepare(&f.client.dir, &config, Some(&out), true);
        run.assert_ok();
        let data = &run.json()["data"];
        for script in ["start_slurm.sh", "parent.slurm"] {
            let path = out.join("startup").join(script);
            let check = Command::new(&shellcheck).arg(&path).output().expect("shellcheck");
            assert!(
                check.status.success(),
                "{name}: shellcheck {script}:\n{}\n{}",
                String::from_utf8_lossy(&check.stdout),
                read(&path)
            );
        }
        // parent.slurm execs start_slurm.sh, which execs sub_start.sh --once.
        let sub_log = f.root.join("sub.log");
        let status = Command::new("bash")
            .arg(out.join("startup/parent.slurm"))
            .env("SUB_LOG", &sub_log)
            .current_dir(&work)
            .status()
            .expect("bash");
        assert!(status.success(), "{name}");
        assert_eq!(read(&sub_log), format!("{}\n--once\n", out.display()), "{name}");
        // The submit command, run by bash as printed, gives sbatch the exact arguments.
        let stub_log = f.root.join("sbatch.log");
        let path = format!(
            "{}:{}",
            stub_bin(&f.root).display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let submit = data["submit_command"].as_str().expect("submit_command");
        let run = Command::new("bash")
            .args(["-c", submit])
            .env("PATH", &path)
            .env("STUB_LOG", &stub_log)
            .current_dir(&work)
            .output()
            .expect("bash");
        assert!(run.status.success(), "{name}: {}", String::from_utf8_lossy(&run.stderr));
        assert_eq!(
            read(&stub_log),
            format!(
                "--parsable\n--output={o}/parent-slurm-%j.out\n{o}/startup/parent.slurm\n",
                o = out.display()
            ),
            "{name}"
        );
        // The start command too.
        let start = data["start_command"].as_str().expect("start_command");
        let status = Command::new("bash")
            .args(["-c", start])
            .env("SUB_LOG", &sub_log)
            .current_dir(&work)
            .status()
            .expect("bash");
        assert!(status.success(), "{name}");
        assert_eq!(read(&sub_log), format!("{}\n--once\n", out.display()), "{name}");
        let created: Vec<_> = std::fs::read_dir(&work).expect("read_dir").collect();
        assert!(created.is_empty(), "{name}: something ran: {created:?}");
        assert!(!f.root.join("pwned").exists() && !f.root.join("outs/pwned").exists());
    }
}
