//! The prepared kits on a real Docker Engine: a private `dockerd`
//! (`scripts/docker-test/dockerd.sh`), NVFlare images built here without a registry
//! (`scripts/docker-test/build-images.sh`), and for each release a federation provisioned
//! by that NVFlare, prepared by flare-deploy for `runtime: docker`, started with each
//! kit's unmodified `startup/start_docker.sh`. A numpy FedAvg job submitted through the
//! admin API must run in job containers that NVFlare's Docker job launcher starts from
//! the job image, finish, and leave its result in the server's job storage inside the
//! prepared kit. Then the faults: a job container killed mid-job, the start script run
//! again, and two negative controls that the checks must catch.
//!
//! One test function owns the engine (its Drop stops the daemon and removes every
//! container, network and volume, also when an assertion fails). Needs root, Debian's
//! docker.io and debootstrap (`.ci/install-tools.sh`), and NVFlare 2.8.1 and 2.9.0 in
//! the tools venvs; without them it skips, under `CI=true` it fails. Design and timings:
//! docs/testing.md.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flare_deploy_tests::fsutil::{os, read, repo, write_file};
use flare_deploy_tests::harness::run_exact;
use flare_deploy_tests::provision::{provision, ProjectSpec};
use flare_deploy_tests::tools;
use serde_json::{json, Value};

const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// The private daemon: started (after clearing leftovers of an interrupted run) with the
/// images built; stopped, with everything it ran, on drop.
struct Engine {
    script: PathBuf,
    state: PathBuf,
    /// `DOCKER_HOST=unix://...`
    host: String,
}

impl Engine {
    fn start() -> Option<Engine> {
        if !nix_root() {
            tools::missing("root (the private Docker Engine runs as root)");
            return None;
        }
        tools::require("dockerd")?;
        tools::require("docker")?;
        tools::require("debootstrap")?;
        let dir = repo().join("scripts/docker-test");
        let script = dir.join("dockerd.sh");
        let state = std::env::temp_dir().join(format!("flare-deploy-dockerd-{}", std::process::id()));
        let mut engine = Engine {
            script,
            state,
            host: String::new(),
        };
        engine.control("stop");
        let started = Command::new("bash")
            .arg(&engine.script)
            .arg("start")
            // The daemon stops by itself when this test process dies, however it dies.
            .arg("--owner-pid")
            .arg(std::process::id().to_string())
            .env("FLARE_DEPLOY_DOCKERD_DIR", &engine.state)
            .output()
            .expect("run dockerd.sh start");
        assert!(
            started.status.success(),
            "dockerd.sh start failed:\n{}\n{}",
            String::from_utf8_lossy(&started.stdout),
            String::from_utf8_lossy(&started.stderr)
        );
        let env_file = read(&engine.state.join("env"));
        let host = env_file
            .lines()
            .map(|l| l.trim_start_matches("export "))
            .find_map(|l| l.strip_prefix("DOCKER_HOST="))
            .map(|v| v.trim_matches(['\'', '"']).to_string())
            .expect("DOCKER_HOST in the env file");
        engine.host = host;
        let started = Instant::now();
        let built = Command::new("bash")
            .arg(dir.join("build-images.sh"))
            .env("DOCKER_HOST", &engine.host)
            .output()
            .expect("run build-images.sh");
        assert!(
            built.status.success(),
            "build-images.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&built.stdout),
            String::from_utf8_lossy(&built.stderr)
        );
        eprintln!("images ready in {:.0} s", started.elapsed().as_secs_f64());
        Some(engine)
    }

    fn control(&self, verb: &str) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg(verb)
            .env("FLARE_DEPLOY_DOCKERD_DIR", &self.state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// `docker ARGS` against the private daemon; stdout (panics on failure).
    fn docker(&self, args: &[&str]) -> String {
        let out = self.docker_raw(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn docker_raw(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .output()
            .expect("run docker")
    }

    fn running(&self, name: &str) -> bool {
        self.docker_raw(&["container", "inspect", "--format", "{{.State.Running}}", name])
            .stdout
            .starts_with(b"true")
    }

    fn container_id(&self, name: &str) -> Option<String> {
        let out = self.docker_raw(&["container", "inspect", "--format", "{{.Id}}", name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.control("stop");
    }
}

fn nix_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// One release's federation.
struct Federation<'e> {
    engine: &'e Engine,
    release: &'static str,
    root: PathBuf,
    prod: PathBuf,
    network: String,
    image: String,
    /// Prepared outputs by site.
    outputs: Vec<(String, PathBuf)>,
    /// `start_docker.sh` processes (each attached to its parent container).
    parents: Vec<(String, Child)>,
}

const SITES: [&str; 3] = ["server1", "site-1", "site-2"];

impl<'e> Federation<'e> {
    fn new(engine: &'e Engine, root: &Path, release: &'static str, version: &'static str, venv: &str) -> Option<Self> {
        let nvflare = tools::nvflare_cli(venv, version)?;
        let root = root.join(format!("nvflare-{version}"));
        std::fs::create_dir_all(&root).expect("mkdir");
        let prod = provision(
            &nvflare,
            &root,
            &ProjectSpec {
                name: "fd_docker",
                server: "server1",
                fed_learn_port: 8002,
                admin_port: Some(8003),
            },
        );
        let network = format!("fdtest-{}-{}", release.replace('.', ""), std::process::id());
        Some(Federation {
            engine,
            release,
            prod,
            root,
            image: format!("flare-deploy-test/nvflare:{version}"),
            network,
            outputs: Vec::new(),
            parents: Vec::new(),
        })
    }

    fn output(&self, site: &str) -> &Path {
        &self
            .outputs
            .iter()
            .find(|(s, _)| s == site)
            .unwrap_or_else(|| panic!("{site} not prepared"))
            .1
    }

    /// Prepares every site for Docker with this release.
    fn prepare_all(&mut self) {
        let config = write_file(
            &self.root.join("docker.yaml"),
            &format!(
                "runtime: docker\nnvflare_version: '{}'\nparent:\n  docker_image: {}\n  network: {}\n",
                self.release, self.image, self.network
            ),
        );
        for site in SITES {
            let output = self.root.join("prepared").join(site);
            run_exact(
                None,
                os(&[
                    &"prepare",
                    &self.prod.join(site),
                    &"--config",
                    &config,
                    &"--output",
                    &output,
                    &"--nvflare-version",
                    &self.release,
                ]),
                &[],
            )
            .assert_ok();
            self.outputs.push((site.to_string(), output));
        }
    }

    /// `cd <output> && ./startup/start_docker.sh`, unmodified, with the daemon named the
    /// standard Docker way (`DOCKER_HOST`).
    fn start(&mut self, site: &str) {
        let output = self.output(site).to_path_buf();
        let log = File::create(self.root.join(format!("{site}-start.log"))).expect("log");
        let child = Command::new("./startup/start_docker.sh")
            .current_dir(&output)
            .env("DOCKER_HOST", &self.engine.host)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("run start_docker.sh");
        self.parents.push((site.to_string(), child));
    }

    fn start_log(&self, site: &str) -> String {
        std::fs::read_to_string(self.root.join(format!("{site}-start.log"))).unwrap_or_default()
    }

    /// The parent's own log in the prepared kit (the container writes the workspace).
    fn site_log(&self, site: &str) -> String {
        std::fs::read_to_string(self.output(site).join("log.txt")).unwrap_or_default()
    }

    /// Waits until the server's log shows `site` registered.
    fn wait_registered(&self, site: &str, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let needle = format!("New client {site}@");
        while Instant::now() < deadline {
            if self.site_log("server1").contains(&needle) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(format!(
            "{site} did not register within {within:?}\nits start log:\n{}\nserver log tail:\n{}",
            tail(&self.start_log(site)),
            tail(&self.site_log("server1"))
        ))
    }

    /// Runs an admin API script in a container on the federation's network (the server
    /// is `server1` there); returns its last JSON line.
    fn admin(&self, script: &str, job: Option<&Path>) -> Value {
        let admin = self.prod.join("admin@nvidia.com");
        let mut args = vec![
            "run".to_string(),
            "--rm".into(),
            "--network".into(),
            self.network.clone(),
            "-v".into(),
            format!("{}:/admin:ro", admin.display()),
        ];
        if let Some(job) = job {
            // The admin client signs the job folder in place before it sends it.
            // Under a parent of its own: the job's name is its folder's name.
            let name = job.file_name().expect("job name").to_string_lossy().into_owned();
            args.extend([
                "-v".into(),
                format!("{}:/jobs/{name}", job.display()),
                "-e".into(),
                format!("JOB_FOLDER=/jobs/{name}"),
            ]);
        }
        args.extend([
            self.image.clone(),
            "/usr/local/bin/python3".into(),
            "-c".into(),
            admin_program(script),
        ]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.engine.docker_raw(&refs);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| {
            panic!(
                "admin script printed no JSON (exit {:?}):\n{stdout}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        serde_json::from_str(line).expect("admin JSON")
    }

    /// Submits a copy of the test job (with this release's image) and waits for it.
    fn run_job(&self, label: &str, sleep_time: u64, rounds: u64) -> Value {
        let job = self.job_dir(label, sleep_time, rounds);
        self.admin(&format!("{SUBMIT}\n{WAIT}"), Some(&job))
    }

    /// Submits a copy of the test job and returns its id at once.
    fn submit_job(&self, label: &str, sleep_time: u64, rounds: u64) -> String {
        let job = self.job_dir(label, sleep_time, rounds);
        let answer = self.admin(SUBMIT, Some(&job));
        answer["submitted"].as_str().expect("job id").to_string()
    }

    /// Waits for a submitted job.
    fn wait_job(&self, job_id: &str) -> Value {
        self.admin(&format!("job_id = {job_id:?}\n{WAIT}"), None)
    }

    fn job_dir(&self, label: &str, sleep_time: u64, rounds: u64) -> PathBuf {
        let job = self.root.join("jobs").join(label);
        std::fs::create_dir_all(job.parent().expect("parent")).expect("mkdir jobs");
        let status = Command::new("cp")
            .arg("-a")
            .arg(repo().join("tests/jobs/numpy-fedavg"))
            .arg(&job)
            .status()
            .expect("cp");
        assert!(status.success());
        let mut meta: Value = serde_json::from_str(&read(&job.join("meta.json"))).expect("meta");
        meta["name"] = json!(label);
        meta["launcher_spec"] = json!({"default": {"docker": {"image": self.image}}});
        write_file(&job.join("meta.json"), &meta.to_string());
        let client_config = job.join("app/config/config_fed_client.json");
        let text = read(&client_config).replace("\"sleep_time\": 0", &format!("\"sleep_time\": {sleep_time}"));
        write_file(&client_config, &text);
        let server_config = job.join("app/config/config_fed_server.json");
        let text = read(&server_config).replace("\"num_rounds\": 2", &format!("\"num_rounds\": {rounds}"));
        write_file(&server_config, &text);
        job
    }

    /// Container creations since `since` (docker events), as (name, image).
    fn created_containers(&self, since: &str) -> Vec<(String, String)> {
        let until = self.engine.docker(&["system", "info", "--format", "{{.SystemTime}}"]);
        let text = self.engine.docker(&[
            "events",
            "--since",
            since,
            "--until",
            until.trim(),
            "--filter",
            "type=container",
            "--filter",
            "event=create",
            "--format",
            "{{json .}}",
        ]);
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| {
                let attributes = &e["Actor"]["Attributes"];
                (
                    attributes["name"].as_str().unwrap_or_default().to_string(),
                    attributes["image"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    fn stop_all(&mut self) {
        for (site, mut child) in self.parents.drain(..) {
            let _ = self.engine.docker_raw(&["rm", "-f", &container_name(&site)]);
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.engine.docker_raw(&["network", "rm", &self.network]);
    }
}

impl Drop for Federation<'_> {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The parent container of a site (its name is Docker-valid as it is).
fn container_name(site: &str) -> String {
    site.to_string()
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The admin program: log in, wait for both clients, run `script`; any failure prints
/// a JSON line with the error. The process exits at once either way (the admin API's
/// threads would keep it alive).
fn admin_program(script: &str) -> String {
    let body: String = script.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        r#"
import json, os, sys, time, traceback
from nvflare.fuel.flare_api.flare_api import new_secure_session
code = 0
try:
    session = new_secure_session("admin@nvidia.com", "/admin", timeout=120)
    def clients():
        return sorted(c.name for c in session.get_system_info().client_info)
    deadline = time.time() + 120
    while clients() != ["site-1", "site-2"] and time.time() < deadline:
        time.sleep(2)
{body}
except Exception as e:
    traceback.print_exc()
    print(json.dumps({{"error": repr(e)}}), flush=True)
    code = 1
sys.stdout.flush()
os._exit(code)
"#
    )
}

/// Submits $JOB_FOLDER and prints its id.
const SUBMIT: &str = r#"
job_id = session.submit_job(os.environ["JOB_FOLDER"])
print(json.dumps({"submitted": job_id}), flush=True)
"#;

/// Waits for `job_id` and prints its status.
const WAIT: &str = r#"
deadline = time.time() + 600
meta = {}
while time.time() < deadline:
    meta = session.get_job_meta(job_id)
    if str(meta.get("status", "")).startswith("FINISHED"):
        break
    time.sleep(3)
print(json.dumps({"job_id": job_id, "status": str(meta.get("status")), "clients": clients()}), flush=True)
"#;

/// Whether each site's part of `job_id` ran in a job container that the Docker job
/// launcher created from the job image (docker events since `since`).
fn jobs_ran_in_containers(fed: &Federation, since: &str, job_id: &str) -> Result<(), String> {
    let created = fed.created_containers(since);
    let mut missing = Vec::new();
    // The launcher names a job container `<site>-<job id>`; the server's site is `server`.
    for site in ["server", "site-1", "site-2"] {
        let name = format!("{site}-{job_id}");
        match created.iter().find(|(n, _)| *n == name) {
            Some((_, image)) if *image == fed.image => {}
            Some((_, image)) => missing.push(format!("{name} ran from {image}, not {}", fed.image)),
            None => missing.push(format!("no container {name}")),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{}; containers created: {created:?}", missing.join("; ")))
    }
}

fn now(engine: &Engine) -> String {
    engine
        .docker(&["system", "info", "--format", "{{.SystemTime}}"])
        .trim()
        .to_string()
}

/// Names in a zip file (Python's zipfile: no unzip needed).
fn zip_entries(zip: &Path) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ])
        .arg(zip)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// One entry of a zip file, as text.
fn zip_entry(zip: &Path, name: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())",
        ])
        .arg(zip)
        .arg(name)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The job's log lines of `site`, from the job workspace inside the prepared kit.
fn job_log(fed: &Federation, site: &str, job_id: &str) -> String {
    std::fs::read_to_string(fed.output(site).join(job_id).join("log.txt")).unwrap_or_default()
}

fn run_release(engine: &Engine, root: &Path, release: &'static str, version: &'static str, venv: &str) {
    let Some(mut fed) = Federation::new(engine, root, release, version, venv) else {
        return;
    };
    fed.prepare_all();
    let since = now(engine);
    // The server first, as an operator starts a federation: three first starts at once
    // race to create the missing network, and Docker accepts two networks of one name.
    fed.start("server1");
    let deadline = Instant::now() + BOOT_TIMEOUT;
    while !engine.running("server1") {
        assert!(
            Instant::now() < deadline,
            "{release}: server1 never ran:\n{}",
            fed.start_log("server1")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for site in ["site-1", "site-2"] {
        fed.start(site);
    }
    for site in ["site-1", "site-2"] {
        fed.wait_registered(site, BOOT_TIMEOUT)
            .unwrap_or_else(|e| panic!("{release}: {e}"));
    }

    // A federated job: both clients train in job containers; the result is stored in
    // the server's job storage, inside the prepared kit.
    let started = Instant::now();
    let answer = fed.run_job("fedavg", 0, 2);
    eprintln!(
        "{release}: job finished in {:.0} s: {answer}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        answer["status"],
        "FINISHED:COMPLETED",
        "{release}: {answer}\nserver log:\n{}",
        tail(&fed.site_log("server1"))
    );
    assert_eq!(answer["clients"], json!(["site-1", "site-2"]));
    let job_id = answer["job_id"].as_str().expect("job id").to_string();
    jobs_ran_in_containers(&fed, &since, &job_id).unwrap_or_else(|e| panic!("{release}: {e}"));
    for site in SITES {
        assert!(
            fed.site_log(site)
                .contains(&format!("launching job {job_id} as container")),
            "{release}: {site}'s Docker job launcher did not launch the job:\n{}",
            tail(&fed.site_log(site))
        );
    }
    // The finished job's workspace, zipped into the server's job storage in the kit:
    // the aggregated model, and a contribution from each client in every round.
    let stored = fed
        .output("server1")
        .join("jobs-storage")
        .join(&job_id)
        .join("workspace");
    assert!(
        stored.is_file(),
        "{release}: no {} in the server's job storage",
        stored.display()
    );
    let entries = zip_entries(&stored);
    assert!(
        entries.iter().any(|e| e == "models/server.npy"),
        "{release}: {entries:?}"
    );
    let server_job_log = zip_entry(&stored, "log.txt");
    for round in 0..2 {
        for site in ["site-1", "site-2"] {
            assert!(
                server_job_log.contains(&format!(
                    "Contribution from {site} ACCEPTED by the aggregator at round {round}"
                )),
                "{release}: no contribution from {site} in round {round}:\n{}",
                tail(&server_job_log)
            );
        }
    }
    // Each client job's link to its parent: mTLS with 2.9, clear with 2.8.
    let scheme = if release == "2.9" { "stcp" } else { "tcp" };
    for site in ["site-1", "site-2"] {
        let log = job_log(&fed, site, &job_id);
        let needle = format!("created backbone internal connector to {scheme}://{site}:");
        assert!(
            log.contains(&needle),
            "{release}: {site}'s job did not connect with {scheme}:\n{}",
            tail(&log)
        );
    }

    if release == "2.9" {
        faults(&mut fed);
    }
    fed.stop_all();
}

/// A job container killed mid-job, the start script run again, and the negative controls.
fn faults(fed: &mut Federation) {
    let engine = fed.engine;
    // Kill site-2's job container while it trains.
    let job_id = fed.submit_job("killed", 8, 4);
    let victim = format!("site-2-{job_id}");
    let deadline = Instant::now() + BOOT_TIMEOUT;
    while !engine.running(&victim) {
        assert!(Instant::now() < deadline, "{victim} never ran");
        std::thread::sleep(Duration::from_millis(500));
    }
    engine.docker(&["kill", &victim]);
    let answer = fed.wait_job(&job_id);
    let status = answer["status"].as_str().unwrap_or_default();
    assert!(
        status.starts_with("FINISHED:") && status != "FINISHED:COMPLETED",
        "a job whose container was killed is reported {status}"
    );
    assert!(engine.running("site-2"), "site-2's parent must keep running");
    // The parent accepts the next job.
    let next = fed.run_job("after-kill", 0, 1);
    assert_eq!(next["status"], "FINISHED:COMPLETED", "{next}");

    // Running start_docker.sh again replaces the running parent container.
    let before = engine.container_id("site-1").expect("site-1 runs");
    fed.start("site-1");
    let deadline = Instant::now() + BOOT_TIMEOUT;
    loop {
        match engine.container_id("site-1") {
            Some(id) if id != before && engine.running("site-1") => break,
            _ if Instant::now() > deadline => panic!("site-1 was not replaced:\n{}", fed.start_log("site-1")),
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    let answer = fed.run_job("after-restart", 0, 1);
    assert_eq!(answer["status"], "FINISHED:COMPLETED", "{answer}");

    // Negative control 1: site-2 with the provisioned process launcher. Its jobs no
    // longer run in containers, and the check must say so.
    let resources = fed.output("site-2").join("local/resources.json.default");
    let prepared = read(&resources);
    let mut doc: Value = serde_json::from_str(&prepared).expect("resources");
    let launcher = doc["components"]
        .as_array_mut()
        .expect("components")
        .iter_mut()
        .find(|c| c["id"] == "docker_launcher")
        .expect("docker_launcher");
    *launcher = json!({
        "id": "process_launcher",
        "path": "nvflare.app_common.job_launcher.client_process_launcher.ClientProcessJobLauncher",
        "args": {}
    });
    let process = serde_json::to_string_pretty(&doc).expect("json");
    std::fs::write(&resources, process).expect("sabotage");
    let before = registrations(fed, "site-2");
    fed.start("site-2");
    registered_again(fed, "site-2", before, BOOT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let since = now(engine);
    let answer = fed.run_job("process-launcher", 0, 1);
    let job_id = answer["job_id"].as_str().expect("job id");
    let verdict = jobs_ran_in_containers(fed, &since, job_id);
    assert!(
        verdict.is_err(),
        "the container check missed a job run by the process launcher"
    );
    assert!(
        verdict.as_ref().is_err_and(|e| e.contains("no container site-2-")),
        "{verdict:?}"
    );
    std::fs::write(&resources, prepared).expect("restore");

    // Negative control 2: site-2's start script without the workspace mount; the parent
    // cannot start, and the registration check must say so.
    let script = fed.output("site-2").join("startup/start_docker.sh");
    let text = read(&script);
    let broken: String = text
        .lines()
        .filter(|l| !l.contains(":/var/tmp/nvflare/workspace"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(broken, text, "the workspace mount line");
    std::fs::write(&script, broken).expect("sabotage");
    let before = registrations(fed, "site-2");
    fed.start("site-2");
    let verdict = registered_again(fed, "site-2", before, Duration::from_secs(45));
    assert!(verdict.is_err(), "a parent without its workspace registered");
    assert!(
        !engine.running("site-2"),
        "a parent without its workspace keeps running"
    );
    std::fs::write(&script, text).expect("restore");
}

/// How often the server has logged `site` joining.
fn registrations(fed: &Federation, site: &str) -> usize {
    fed.site_log("server1").matches(&format!("New client {site}@")).count()
}

/// Whether `site` joins again (more than `before` times) within `within`.
fn registered_again(fed: &Federation, site: &str, before: usize, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if registrations(fed, site) > before {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!(
        "{site} did not register again within {within:?}:\n{}",
        tail(&fed.start_log(site))
    ))
}

#[test]
fn prepared_kits_run_federated_jobs_on_a_real_docker_engine() {
    let Some(engine) = Engine::start() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    // FLARE_DEPLOY_KEEP_TEST_DIR=1 keeps the federations' files for a look after a failure.
    let tmp_path = if std::env::var_os("FLARE_DEPLOY_KEEP_TEST_DIR").is_some() {
        tmp.keep()
    } else {
        tmp.path().to_path_buf()
    };
    let root = tmp_path.canonicalize().expect("canonical");
    run_release(&engine, &root, "2.8", "2.8.1", "nvflare-venv");
    run_release(&engine, &root, "2.9", "2.9.0", "nvflare29-venv");
    // Nothing of the test is left on the engine.
    let containers = engine.docker(&["ps", "-aq"]);
    assert_eq!(containers.trim(), "", "containers left");
    let networks: BTreeSet<String> = engine
        .docker(&["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .map(str::to_string)
        .collect();
    let defaults: BTreeSet<String> = ["bridge", "host", "none"].iter().map(|s| s.to_string()).collect();
    assert!(networks.is_subset(&defaults), "networks left: {networks:?}");
    assert_eq!(engine.docker(&["volume", "ls", "-q"]).trim(), "", "volumes left");
}
