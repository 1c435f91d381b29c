//! `runtime: slurm` checked against the released package: kits provisioned by nvflare
//! 2.9.0 are prepared by `nvflare deploy prepare` 2.9.0 (the oracle) and by flare-deploy
//! on the same configs, into the same output path (the path is written into the kit),
//! one after the other. Envelopes, warnings and every file must agree except what
//! docs/deviations.md lists (named below by id); errors compare code, message and hint.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use flare_deploy_tests::fsutil::{os, read, write_file};
use flare_deploy_tests::harness::run_exact;
use flare_deploy_tests::tools;
use flare_deploy_tests::Run;
use serde_json::{json, Value};

struct Provisioned {
    nvflare: PathBuf,
    prod: PathBuf,
    _tmp: tempfile::TempDir,
}

/// One server and one client, provisioned once per test process.
fn provisioned() -> Option<&'static Provisioned> {
    static KITS: OnceLock<Option<Provisioned>> = OnceLock::new();
    KITS.get_or_init(|| {
        let nvflare = tools::nvflare_2_9()?;
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().canonicalize().expect("canonical");
        write_file(
            &root.join("project.yml"),
            "api_version: 3\nname: slurm29\ndescription: slurm differential tests\nparticipants:\n  \
             - {name: server1, type: server, org: nvidia, fed_learn_port: 8002}\n  \
             - {name: site-1, type: client, org: nvidia}\n  \
             - {name: admin@nvidia.com, type: admin, org: nvidia, role: project_admin}\nbuilders:\n  \
             - path: nvflare.lighter.impl.workspace.WorkspaceBuilder\n  \
             - {path: nvflare.lighter.impl.static_file.StaticFileBuilder, args: {config_folder: config}}\n  \
             - path: nvflare.lighter.impl.cert.CertBuilder\n  \
             - path: nvflare.lighter.impl.signature.SignatureBuilder\n",
        );
        let out = Command::new(&nvflare)
            .args(["provision", "-p", "project.yml", "-w", "ws"])
            .current_dir(&root)
            .output()
            .expect("run nvflare provision");
        assert!(
            out.status.success(),
            "nvflare 2.9.0 provision failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Provisioned {
            nvflare,
            prod: root.join("ws/slurm29/prod_00"),
            _tmp: tmp,
        })
    })
    .as_ref()
}

/// The two runs of one prepare into `<dir>/<label>/out`: the oracle's output moved to
/// `<dir>/<label>/theirs` before flare-deploy writes its own at the same path.
struct Both {
    ours: Run,
    theirs: Run,
    out: PathBuf,
    their_files: PathBuf,
}

fn prepare_both(p: &Provisioned, kit: &Path, config_yaml: &str, dir: &Path, label: &str) -> Both {
    let base = dir.join(label);
    std::fs::create_dir_all(&base).expect("mkdir");
    let config = write_file(&base.join("slurm.yaml"), config_yaml);
    let out = base.join("out");
    let their_files = base.join("theirs");
    let args = os(&[
        &"prepare",
        &kit,
        &"--config",
        &config,
        &"--output",
        &out,
        &"--format",
        &"json",
    ]);
    let o = Command::new(&p.nvflare)
        .arg("deploy")
        .args(&args)
        .output()
        .expect("run nvflare");
    let theirs = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    if out.exists() {
        std::fs::rename(&out, &their_files).expect("move the oracle's output");
    }
    let ours = run_exact(None, args.iter().chain(&os(&[&"--nvflare-version", &"2.9"])), &[]);
    Both {
        ours,
        theirs,
        out,
        their_files,
    }
}

/// Relative path → bytes and permission bits (directories end in `/`).
fn files(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let rel = path.strip_prefix(root).expect("under root").display().to_string();
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                out.insert(format!("{rel}/"), (Vec::new(), mode));
                stack.push(path);
            } else {
                out.insert(rel, (std::fs::read(&path).expect("read"), mode));
            }
        }
    }
    out.insert(
        "./".into(),
        (
            Vec::new(),
            std::fs::metadata(root).expect("stat").permissions().mode() & 0o777,
        ),
    );
    out
}

/// Compares one successful prepare; `resources` may adjust the oracle's launcher args
/// for a listed deviation before they are compared.
#[track_caller]
fn assert_same(both: &Both, what: &str, adjust: impl Fn(&mut Value)) {
    assert_eq!(
        both.theirs.code, 0,
        "{what}: oracle failed: {}\n{}",
        both.theirs.stdout, both.theirs.stderr
    );
    assert_eq!(
        both.ours.code, 0,
        "{what}: flare-deploy failed: {}\n{}",
        both.ours.stdout, both.ours.stderr
    );
    assert_eq!(both.ours.json(), both.theirs.json(), "{what}: envelope");
    assert_eq!(both.ours.stderr, both.theirs.stderr, "{what}: warnings");
    let (mut ours, theirs) = (files(&both.out), files(&both.their_files));
    // O9: our receipt.
    assert!(ours.remove(".flare-deploy.json").is_some(), "{what}: receipt");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{what}: the same files"
    );
    for (rel, (bytes, mode)) in &theirs {
        let (our_bytes, our_mode) = &ours[rel];
        assert_eq!(mode, our_mode, "{what}: mode of {rel}");
        match rel.as_str() {
            // T1: our own comments; the YAML data is the same.
            "local/study_runtime.yaml" => assert_eq!(
                serde_yaml::from_slice::<serde_yaml::Value>(bytes).expect("yaml"),
                serde_yaml::from_slice::<serde_yaml::Value>(our_bytes).expect("yaml"),
                "{what}: {rel}"
            ),
            "local/resources.json.default" => {
                let mut their_doc: Value = serde_json::from_slice(bytes).expect("json");
                adjust(&mut their_doc);
                let our_doc: Value = serde_json::from_slice(our_bytes).expect("json");
                assert_eq!(our_doc, their_doc, "{what}: {rel}");
            }
            _ => assert!(
                bytes == our_bytes,
                "{what}: {rel} differs\n--- nvflare 2.9.0\n{}\n--- flare-deploy\n{}",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(our_bytes)
            ),
        }
    }
    // Unadjusted, resources.json.default is byte for byte the oracle's.
    let rel = "local/resources.json.default";
    let mut unchanged = serde_json::from_slice::<Value>(&theirs[rel].0).expect("json");
    adjust(&mut unchanged);
    if unchanged == serde_json::from_slice::<Value>(&theirs[rel].0).expect("json") {
        assert!(theirs[rel].0 == ours[rel].0, "{what}: {rel} bytes");
    }
}

fn no_adjustment(_: &mut Value) {}

/// A copy of the provisioned client kit at `to`, for a test to change.
fn kit_copy(p: &Provisioned, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(p.prod.join("site-1"))
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
}

const CLIENT: &str = "runtime: slurm
parent:
  sbatch_directives: {partition: cpu, time: \"7-00:00:00\", account: 42}
  environment_setup: \"module load python/3.11\\nsource /opt/nvflare/venv/bin/activate\"
job_launcher:
  sandbox: none
  python_path: /opt/nvflare/venv/bin/python
";

#[test]
fn prepared_kits_match_nvflare_2_9_0() {
    let Some(p) = provisioned() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().canonicalize().expect("canonical");
    let image = write_file(&dir.join("img.sif"), "sif");
    let link = dir.join("link.sif");
    std::os::unix::fs::symlink(&image, &link).expect("symlink");
    let full = format!(
        "runtime: slurm\njob_launcher:\n  sandbox: apptainer\n  image: {}\n  python_path: /usr/bin/python3\n  \
         internal_port: 30000\n  internal_connection_security: clear\n  sbatch_directives: {{qos: high, account: 7}}\n  \
         setup: 'module load cuda # $X'\n  forward_env: [HOME, MY_VAR]\n  parent_host: login1.example\n  \
         executables: {{sbatch: /usr/bin/sbatch, srun: srun, apptainer: /opt/apptainer}}\n  submit_timeout: 5\n  \
         query_timeout: 2.5\n  cancel_timeout: 1\n  poll_interval: 0.5\n  pending_timeout: 1000.0\n  \
         multi_node_port_range: '40000-40100'\n",
        link.display()
    );
    let with_host = "runtime: slurm\njob_launcher: {sandbox: none, python_path: /p, parent_host: h, multi_node_port_range: [2000, 3000]}\n";
    let cases = [
        ("site-1", "client-parent", CLIENT.to_string()),
        ("site-1", "client-full", full.clone()),
        ("server1", "server-full", full),
        ("server1", "server-host", with_host.to_string()),
        ("site-1", "client-null-parent", format!("{}parent: null\n", with_host)),
    ];
    for (kit, label, config) in &cases {
        let both = prepare_both(p, &p.prod.join(kit), config, &dir, label);
        assert_same(&both, label, no_adjustment);
    }
    // The apptainer image is stored resolved, as the oracle does.
    let resources: Value =
        serde_json::from_str(&read(&dir.join("client-full/out/local/resources.json.default"))).expect("json");
    assert!(resources
        .to_string()
        .contains(&format!("\"image\":\"{}\"", image.display())));
}

#[test]
fn kits_with_shared_file_transport_match() {
    let Some(p) = provisioned() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().canonicalize().expect("canonical");
    let kit = dir.join("kit");
    kit_copy(p, &kit);
    write_file(
        &kit.join("local/comm_config.json"),
        &json!({"internal": {"scheme": "shared-file", "resources": {"root_dir": "/shared/nvfl"}}}).to_string(),
    );
    let config =
        "runtime: slurm\njob_launcher: {sandbox: none, python_path: /p, internal_connection_security: clear}\n";
    let both = prepare_both(p, &kit, config, &dir, "shared");
    assert_same(&both, "shared-file", no_adjustment);
}

/// Where the two differ on purpose, each by its deviation id.
#[test]
fn listed_deviations_differ_as_documented() {
    let Some(p) = provisioned() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().canonicalize().expect("canonical");
    let base = "runtime: slurm\njob_launcher:\n  sandbox: none\n  python_path: /p\n";

    // SL5: an explicit null range is not frozen into the kit.
    let both = prepare_both(
        p,
        &p.prod.join("site-1"),
        &format!("{base}  multi_node_port_range: null\n"),
        &dir,
        "s5",
    );
    assert_same(&both, "SL5", |doc| {
        for c in doc["components"].as_array_mut().expect("components") {
            if c["id"] == "slurm_launcher" {
                let args = c["args"].as_object_mut().expect("args");
                assert_eq!(args.remove("multi_node_port_range"), Some(json!([29400, 30399])));
            }
        }
    });

    // SL6: a server without parent_host gets a warning (the files are the same).
    let both = prepare_both(p, &p.prod.join("server1"), base, &dir, "s6");
    assert_eq!((both.ours.code, both.theirs.code), (0, 0));
    assert_eq!(both.theirs.stderr, "");
    assert!(
        both.ours
            .stderr
            .contains("Warning: Slurm server kit without job_launcher.parent_host"),
        "{}",
        both.ours.stderr
    );

    // SL4: a falsy non-mapping for executables; SL3: mtls on a shared-file kit.
    let kit = dir.join("kit-shared");
    kit_copy(p, &kit);
    write_file(
        &kit.join("local/comm_config.json"),
        &json!({"internal": {"scheme": "shared-file", "resources": {"root_dir": "/s"}}}).to_string(),
    );
    let refused = [
        (
            p.prod.join("site-1"),
            format!("{base}  executables: []\n"),
            "SL4",
            "INVALID_CONFIG",
        ),
        (
            kit.clone(),
            format!("{base}  internal_connection_security: mtls\n"),
            "SL3",
            "INVALID_CONFIG",
        ),
    ];
    for (kit, config, id, code) in &refused {
        let both = prepare_both(p, kit, config, &dir, id);
        assert_eq!(both.theirs.code, 0, "{id}: the oracle accepts it");
        assert_eq!(both.ours.json()["error_code"], *code, "{id}: {}", both.ours.stdout);
        assert!(!both.out.exists(), "{id}");
    }

    // SL1: no sub_start.sh; SL2: a legacy study_data.yaml.
    let no_sub = dir.join("kit-nosub");
    kit_copy(p, &no_sub);
    std::fs::remove_file(no_sub.join("startup/sub_start.sh")).expect("rm");
    let legacy = dir.join("kit-legacy");
    kit_copy(p, &legacy);
    write_file(&legacy.join("local/study_data.yaml"), "default: {}\n");
    for (kit, id) in [(&no_sub, "SL1"), (&legacy, "SL2")] {
        let both = prepare_both(p, kit, base, &dir, id);
        assert_eq!(both.theirs.code, 0, "{id}: the oracle accepts it");
        assert_eq!(
            both.ours.json()["error_code"],
            "INVALID_KIT",
            "{id}: {}",
            both.ours.stdout
        );
    }
}

#[test]
fn config_and_kit_errors_match_nvflare_2_9_0() {
    let Some(p) = provisioned() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().canonicalize().expect("canonical");
    let jl = |extra: &str| format!("runtime: slurm\njob_launcher:\n  sandbox: none\n  python_path: /p\n{extra}");
    let client = p.prod.join("site-1");
    let server = p.prod.join("server1");
    let cases: Vec<(&Path, String)> = vec![
        (&client, format!("{}bogus: 1\n", jl(""))),
        (&client, "runtime: slurm\nparent: {x: 1}\n".into()),
        (
            &client,
            "runtime: slurm\nparent: {sbatch_directives: {gpus: 1, acct: 2}}\n".into(),
        ),
        (
            &client,
            "runtime: slurm\nparent: {sbatch_directives: {partition: 'a b'}}\n".into(),
        ),
        (&client, "runtime: slurm\nparent: {environment_setup: 3}\n".into()),
        (&client, "runtime: slurm\n".into()),
        (&client, "runtime: slurm\njob_launcher: null\n".into()),
        (&client, jl("  internal_connection_security: tls\n")),
        (&client, "runtime: slurm\njob_launcher: {python_path: /p}\n".into()),
        (
            &client,
            "runtime: slurm\njob_launcher: {sandbox: none, python_path: p}\n".into(),
        ),
        (&client, jl("  internal_port: 65536\n")),
        (&client, jl("  internal_port: true\n")),
        (&client, jl("  poll_interval: 0\n")),
        (&client, jl("  setup: 1\n")),
        (&client, jl("  forward_env: [SLURM_X]\n")),
        (&client, jl("  forward_env: [1x]\n")),
        (&client, jl("  executables: {bogus: 1, zz: 2}\n")),
        (&client, jl("  executables: {sacct: rel}\n")),
        (
            &client,
            "runtime: slurm\njob_launcher: {sandbox: docker, python_path: /p}\n".into(),
        ),
        (
            &client,
            "runtime: slurm\njob_launcher: {sandbox: pyxis, python_path: /p}\n".into(),
        ),
        (
            &client,
            "runtime: slurm\njob_launcher: {sandbox: apptainer, python_path: /p, image: /none.sif}\n".into(),
        ),
        (&client, jl("  sbatch_directives: {qos: true}\n")),
        (&client, jl("  parent_host: ''\n")),
        (&client, jl("  multi_node_port_range: '1-2'\n")),
        (&client, jl("  multi_node_port_range: [3000, 2000]\n")),
        (&client, jl("  multi_node_port_range: 8000-9000\n")),
        (&server, format!("{}parent: {{}}\n", jl(""))),
    ];
    for (i, (kit, config)) in cases.iter().enumerate() {
        let both = prepare_both(p, kit, config, &dir, &format!("e{i}"));
        let fields = |run: &Run| {
            let doc = run.json();
            (doc["error_code"].clone(), doc["message"].clone(), doc["hint"].clone())
        };
        assert_eq!(both.theirs.code, 4, "oracle accepted:\n{config}");
        assert_eq!(fields(&both.ours), fields(&both.theirs), "config:\n{config}");
        assert!(!both.out.exists(), "config:\n{config}");
    }
    // The output workspace rules: the same message (the oracle may leave the parent).
    let config = jl("");
    for (i, name) in ["a:b", "a,b"].iter().enumerate() {
        let both = prepare_both(p, &client, &config, &dir.join(name), &format!("w{i}"));
        let doc = (both.ours.json(), both.theirs.json());
        assert_eq!(
            (&doc.0["error_code"], &doc.0["message"], &doc.0["hint"]),
            (&doc.1["error_code"], &doc.1["message"], &doc.1["hint"]),
            "{name}"
        );
        assert_eq!(doc.0["error_code"], "INVALID_ARGS");
    }
}
