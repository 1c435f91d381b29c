//! `runtime: slurm` end to end on a real one-node Slurm cluster
//! (scripts/slurm-test/cluster.sh: munge, MariaDB, slurmdbd, slurmctld, slurmd, private
//! config): NVFlare 2.9.0 provisions a server and two clients; the server runs as a local
//! process; both clients are prepared with `parent` directives and `sandbox: none`, and the
//! printed `submit_command` is run as it is, so each client parent is a Slurm job that
//! registers. A FedAvg job submitted through the admin API runs as one Slurm job per client
//! (sacct shows them with the launcher's directives), finishes, and its result is in the
//! server's job storage. `scancel` of a client's parent makes the server drop that client;
//! nothing is left in the queue.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flare_deploy_tests::fsutil::{os, read, repo, write_file};
use flare_deploy_tests::harness::run_exact;
use flare_deploy_tests::ports::{self, PortTaken};
use flare_deploy_tests::tools;
use serde_json::Value;

const CLUSTER_SCRIPT: &str = "scripts/slurm-test/cluster.sh";

/// The private cluster; stopped (jobs cancelled, state removed) when dropped.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let out = Command::new("bash")
            .arg(repo().join(CLUSTER_SCRIPT))
            .arg("start")
            .env("FLARE_DEPLOY_SLURM_DIR", dir)
            .output()
            .expect("run cluster.sh");
        assert!(
            out.status.success(),
            "cluster.sh start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
        }
    }

    /// A Slurm command against this cluster; its stdout.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sacct` rows (allocations only): job id, name, state, partition, time limit.
    fn jobs(&self) -> Vec<Vec<String>> {
        self.run(
            "sacct",
            &[
                "-X",
                "-n",
                "-P",
                "-a",
                "-o",
                "JobID,JobName%64,State,Partition,Timelimit",
            ],
        )
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join(CLUSTER_SCRIPT))
            .arg("stop")
            .env("FLARE_DEPLOY_SLURM_DIR", &self.dir)
            .status();
    }
}

/// The server process, in its own process group, killed with it when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// Waits for the server to start and listen on `listen_ports` (NVFlare logs `Server
/// started` before it binds, and retries a taken port); its log saying a port was taken
/// is [`PortTaken`].
fn wait_for_server(server: &mut Server, log: &Path, listen_ports: &[u16]) -> Result<(), PortTaken> {
    let start = Instant::now();
    let group = server.child.id();
    while start.elapsed() < Duration::from_secs(120) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if ports::reports_port_taken(&text) {
            return Err(PortTaken(text));
        }
        // Without `ss` the log is all there is to go by.
        let listening = listen_ports
            .iter()
            .all(|port| ports::listened_by_group(*port, group).unwrap_or(true));
        if text.contains("Server started") && listening {
            return Ok(());
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the server exited ({status}) before it started:\n{}", read_tail(log));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("the server did not start within 120 s:\n{}", read_tail(log));
}

const ADMIN: &str = r#"
import json, sys, time
from nvflare.fuel.flare_api.flare_api import new_secure_session
s = new_secure_session("admin@nvidia.com", sys.argv[1], timeout=60)
try:
    if sys.argv[2] == "status":
        info = s.get_system_info()
        print(json.dumps({"clients": sorted(c.name for c in info.client_info)}))
    else:
        job = s.submit_job(sys.argv[3])
        start, status = time.time(), None
        while time.time() - start < 600:
            status = s.get_job_meta(job).get("status")
            if status and status.startswith("FINISHED"):
                break
            time.sleep(3)
        print(json.dumps({"job": job, "status": status}))
finally:
    s.close()
"#;

fn admin(python: &Path, admin_kit: &Path, args: &[&str]) -> Value {
    let out = Command::new(python)
        .arg("-c")
        .arg(ADMIN)
        .arg(admin_kit)
        .args(args)
        .output()
        .expect("admin API");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rfind(|l| l.starts_with('{')).unwrap_or_else(|| {
        panic!(
            "admin API printed nothing:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(line).expect("admin API JSON")
}

/// Polls the admin API until the connected clients are `expected`.
fn wait_for_clients(python: &Path, admin_kit: &Path, expected: &[&str], timeout: Duration, logs: &[&Path]) {
    let start = Instant::now();
    let mut last = Value::Null;
    while start.elapsed() < timeout {
        last = admin(python, admin_kit, &["status"]);
        if last["clients"] == serde_json::json!(expected) {
            return;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let tails: Vec<String> = logs
        .iter()
        .map(|p| format!("{}:\n{}", p.display(), read_tail(p)))
        .collect();
    panic!(
        "clients are {last}, not {expected:?}, after {timeout:?}\n{}",
        tails.join("\n")
    );
}

fn read_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&read(path)).expect("json")
}

/// Provisions the federation in `root` with these ports and starts its server as a local
/// process: (prod dir, server log, jobs storage, server).
fn boot_server(
    nvflare: &Path,
    venv_bin: &Path,
    root: &Path,
    fed_port: u16,
    admin_port: u16,
) -> Result<(PathBuf, PathBuf, PathBuf, Server), PortTaken> {
    std::fs::create_dir_all(root).expect("federation dir");
    write_file(
        &root.join("project.yml"),
        &format!(
            "api_version: 3\nname: slurm_e2e\ndescription: flare-deploy Slurm end to end\nparticipants:\n  \
             - {{name: localhost, type: server, org: nvidia, fed_learn_port: {fed_port}, admin_port: {admin_port}}}\n  \
             - {{name: site-1, type: client, org: nvidia}}\n  - {{name: site-2, type: client, org: nvidia}}\n  \
             - {{name: admin@nvidia.com, type: admin, org: nvidia, role: project_admin}}\nbuilders:\n  \
             - path: nvflare.lighter.impl.workspace.WorkspaceBuilder\n  \
             - {{path: nvflare.lighter.impl.static_file.StaticFileBuilder, args: {{config_folder: config}}}}\n  \
             - path: nvflare.lighter.impl.cert.CertBuilder\n"
        ),
    );
    let out = Command::new(nvflare)
        .args(["provision", "-p", "project.yml", "-w", "ws"])
        .current_dir(root)
        .output()
        .expect("provision");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let prod = root.join("ws/slurm_e2e/prod_00");

    // The server as a local process: storage in the test's directory, and a short heartbeat
    // timeout (600 s by default) so that a cancelled client is dropped within the test.
    let server_kit = prod.join("localhost");
    let resources_path = server_kit.join("local/resources.json.default");
    let mut resources = json_file(&resources_path);
    let jobs_storage = root.join("jobs-storage");
    resources["snapshot_persistor"]["args"]["storage"]["args"]["root_dir"] =
        root.join("snapshot-storage").display().to_string().into();
    for c in resources["components"].as_array_mut().expect("components") {
        if c["id"] == "job_manager" {
            c["args"]["uri_root"] = jobs_storage.display().to_string().into();
        }
    }
    write_file(&resources_path, &resources.to_string());
    // Without SignatureBuilder the startup kit has no signature.json, so it may be edited.
    let fed_server = server_kit.join("startup/fed_server.json");
    let mut doc = json_file(&fed_server);
    doc["servers"][0]["heart_beat_timeout"] = 30.into();
    write_file(&fed_server, &doc.to_string());
    let server_log = root.join("server.log");
    let log = File::create(&server_log).expect("log");
    let child = Command::new("bash")
        .arg(server_kit.join("startup/sub_start.sh"))
        .arg("--once")
        .env(
            "PATH",
            format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start server");
    let mut server = Server { child };
    wait_for_server(&mut server, &server_log, &[fed_port, admin_port])?;
    Ok((prod, server_log, jobs_storage, server))
}

#[test]
fn client_parents_and_jobs_run_as_slurm_jobs() {
    for tool in [
        "sbatch",
        "sacct",
        "squeue",
        "scancel",
        "slurmctld",
        "slurmd",
        "slurmdbd",
        "munged",
        "mariadbd",
    ] {
        if tools::require(tool).is_none() {
            return;
        }
    }
    let Some(nvflare) = tools::nvflare_2_9() else { return };
    let venv_bin = nvflare.parent().expect("venv bin").to_path_buf();
    let python = venv_bin.join("python");
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().canonicalize().expect("canonical");
    let cluster = Cluster::start(&root.join("cluster"));

    // Provision a server and two clients, and start the server; its ports are provisioned
    // into the kits, so a server that finds one taken means a new project with new ports.
    let (prod, server_log, jobs_storage, _server) = ports::with_ports(2, |ports| {
        let (fed_port, admin_port) = (ports.get(0), ports.get(1));
        let root = root.join(format!("fed-{fed_port}"));
        boot_server(&nvflare, &venv_bin, &root, fed_port, admin_port)
    });
    let admin_kit = prod.join("admin@nvidia.com");
    // The clients' internal ports, claimed for the whole test.
    let internal_ports = ports::reserve(2);

    // Prepare both clients and submit their parents as printed.
    let mut parents = Vec::new();
    for (index, site) in ["site-1", "site-2"].into_iter().enumerate() {
        let config = write_file(
            &root.join(format!("{site}.yaml")),
            &format!(
                "runtime: slurm\nparent:\n  sbatch_directives: {{partition: debug, time: 30}}\n  \
                 environment_setup: 'export PATH={}:$PATH'\njob_launcher:\n  sandbox: none\n  python_path: {}\n  \
                 internal_port: {}\n  sbatch_directives: {{partition: debug, time: 10}}\n",
                venv_bin.display(),
                python.display(),
                internal_ports.get(index)
            ),
        );
        let output = root.join("prepared").join(site);
        let run = run_exact(
            None,
            os(&[
                &"prepare",
                &prod.join(site),
                &"--config",
                &config,
                &"--output",
                &output,
                &"--nvflare-version",
                &"2.9",
                &"--format",
                &"json",
            ]),
            &[],
        );
        run.assert_ok();
        let submit = run.json()["data"]["submit_command"]
            .as_str()
            .expect("submit_command")
            .to_string();
        let out = Command::new("bash")
            .args(["-c", &submit])
            .env("SLURM_CONF", &cluster.conf)
            .output()
            .expect("submit");
        assert!(
            out.status.success(),
            "{submit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
            "job id {id:?}"
        );
        parents.push((site, id, output.join(format!("parent-slurm-{}.out", "%j"))));
    }
    let logs: Vec<PathBuf> = parents
        .iter()
        .map(|(_, id, p)| PathBuf::from(p.display().to_string().replace("%j", id)))
        .chain([server_log.clone()])
        .collect();
    let log_refs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
    wait_for_clients(
        &python,
        &admin_kit,
        &["site-1", "site-2"],
        Duration::from_secs(180),
        &log_refs,
    );

    // A FedAvg job: one Slurm job per client, with the launcher's directives. Submitting
    // signs the job folder in place, so a copy is submitted.
    let job_dir = root.join("numpy-fedavg");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(repo().join("tests/jobs/numpy-fedavg"))
        .arg(&job_dir)
        .status()
        .expect("cp");
    assert!(copied.success());
    let result = admin(&python, &admin_kit, &["submit", job_dir.to_str().expect("utf-8")]);
    assert_eq!(
        result["status"],
        "FINISHED:COMPLETED",
        "{result}\n{}",
        read_tail(&server_log)
    );
    let job = result["job"].as_str().expect("job id");
    let jobs = cluster.jobs();
    for (site, id, _) in &parents {
        let parent = jobs
            .iter()
            .find(|r| &r[0] == id)
            .unwrap_or_else(|| panic!("no parent {id}: {jobs:?}"));
        assert_eq!(
            parent[1..],
            ["parent.slurm", "RUNNING", "debug", "00:30:00"],
            "{site} parent"
        );
        let name = format!("nvfl-{site}-");
        let run = jobs
            .iter()
            .find(|r| r[1].starts_with(&name))
            .unwrap_or_else(|| panic!("no Slurm job {name}: {jobs:?}"));
        assert_eq!(run[2..], ["COMPLETED", "debug", "00:10:00"], "{name}");
    }
    let stored = jobs_storage.join(job);
    assert!(stored.join("workspace").exists(), "no result in {}", stored.display());

    // A cancelled parent is dropped by the server.
    cluster.run("scancel", &[&parents[0].1]);
    wait_for_clients(&python, &admin_kit, &["site-2"], Duration::from_secs(180), &log_refs);
    cluster.run("scancel", &[&parents[1].1]);
    let start = Instant::now();
    while !cluster.run("squeue", &["-h"]).trim().is_empty() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(cluster.run("squeue", &["-h"]).trim(), "", "the queue is empty");
}
