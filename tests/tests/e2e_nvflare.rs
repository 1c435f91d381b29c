//! End to end with the real NVFlare runtime: provision a project with `nvflare
//! provision`, prepare the server and client kits for `runtime: docker` with our binary,
//! and start each parent exactly as its generated `start_docker.sh` would inside the
//! container, with the prepared kit at /var/tmp/nvflare/workspace in a private mount
//! namespace per process (there `/var/tmp` is a directory of the test's own, so nothing
//! is written to the host's `/var/tmp`). No Docker engine is needed. Ports come from
//! `flare_deploy_tests::ports`; a boot that finds its port taken is retried.
//!
//! Each release runs on its own: a project provisioned by NVFlare 2.8.1 with kits
//! prepared for 2.8, and one provisioned by NVFlare 2.9.0 with kits prepared for 2.9
//! (whose parent-job links use mTLS).
//!
//! Needs NVFlare 2.8.1 in `FLARE_DEPLOY_TOOLS/nvflare-venv` and 2.9.0 in
//! `FLARE_DEPLOY_TOOLS/nvflare29-venv` (`.ci/install-tools.sh`) and `unshare` able to
//! create mount namespaces (root, or unprivileged user namespaces). Without them the
//! tests skip with a message; under `CI=true` they fail.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flare_deploy_tests::flare_deploy;
use flare_deploy_tests::kitgen::read_json;
use flare_deploy_tests::ports::{self, PortTaken};
use flare_deploy_tests::stub_docker::{command, run_script};
use flare_deploy_tests::tools::require_path;

const WORKSPACE: &str = "/var/tmp/nvflare/workspace";
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the processes of a parent may take to end after a clean shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// The prerequisites, or `None` (after saying what is missing) outside CI.
struct Env {
    python: PathBuf,
    nvflare: PathBuf,
    unshare_prefix: Vec<String>,
    /// The `--nvflare-version` the kits are prepared with.
    release: &'static str,
}

/// NVFlare 2.8.1, kits prepared for 2.8.
fn environment() -> Option<Env> {
    environment_for("nvflare-venv", "2.8.1", "2.8")
}

/// NVFlare 2.9.0, kits prepared for 2.9.
fn environment_2_9() -> Option<Env> {
    environment_for("nvflare29-venv", "2.9.0", "2.9")
}

fn environment_for(venv: &str, version: &str, release: &'static str) -> Option<Env> {
    let nvflare = flare_deploy_tests::tools::nvflare_cli(venv, version)?;
    let venv = flare_deploy_tests::tools::tools_dir().join(venv).join("bin");
    let python = require_path(&venv.join("python"), &format!("NVFlare {version} virtual environment"))?;
    // Root can make mount namespaces directly; others need a user namespace too.
    let candidates: [&[&str]; 2] = [
        &["unshare", "--mount", "--propagation", "private"],
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
        ],
    ];
    let works = |prefix: &[&str]| {
        Command::new(prefix[0])
            .args(&prefix[1..])
            .args(["--", "true"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let Some(prefix) = candidates.iter().find(|p| works(p)) else {
        flare_deploy_tests::tools::missing("unshare with mount namespaces (run as root or enable user namespaces)");
        return None;
    };
    Some(Env {
        python,
        nvflare,
        unshare_prefix: prefix.iter().map(|s| s.to_string()).collect(),
        release,
    })
}

/// A parent process in its own process group; dropping it kills the whole group, so
/// nothing is left behind when a test fails.
struct Parent {
    name: String,
    child: Child,
    log: PathBuf,
    /// The parent's `/var/tmp` (its namespace mounts it there); removed after the parent.
    _var_tmp: tempfile::TempDir,
}

impl Parent {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }

    /// Polls until `needle` shows in the log; fails if the process exits first.
    fn wait_for_log(&mut self, needle: &str) {
        if let Err(PortTaken(log)) = self.wait_for_boot(needle, &[]) {
            panic!("{} could not bind its port:\n{}", self.name, tail(&log));
        }
    }

    /// Like [`Parent::wait_for_log`], and until the parent's processes listen on each of
    /// `listen_ports` (NVFlare logs `Server started` before it binds, and retries a taken
    /// port); a log saying a port was taken is returned as [`PortTaken`] (the caller
    /// retries with other ports).
    fn wait_for_boot(&mut self, needle: &str, listen_ports: &[u16]) -> Result<(), PortTaken> {
        let start = Instant::now();
        while start.elapsed() < BOOT_TIMEOUT {
            let log = self.log_text();
            let group = self.child.id();
            // Without `ss` the log is all there is to go by.
            let listening = || {
                listen_ports
                    .iter()
                    .all(|port| ports::listened_by_group(*port, group).unwrap_or(true))
            };
            if ports::reports_port_taken(&log) {
                self.kill_group("-KILL");
                let _ = self.child.wait();
                return Err(PortTaken(log));
            }
            if log.contains(needle) && listening() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before logging {needle:?}:\n{}",
                    self.name,
                    tail(&self.log_text())
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "{} did not log {needle:?} and listen on {listen_ports:?} within {BOOT_TIMEOUT:?}:\n{}",
            self.name,
            tail(&self.log_text())
        );
    }

    /// Waits for the process to exit on its own.
    fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        None
    }

    fn group_alive(&self) -> bool {
        Command::new("kill")
            .args(["-0", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Polls until no process of the group is left; false if some still run at `timeout`.
    fn wait_group_gone(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.group_alive() {
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }

    /// The processes of the group, for a failure message.
    fn group_processes(&self) -> String {
        Command::new("ps")
            .args([
                "-o",
                "pid,stat,args",
                "--no-headers",
                "-g",
                &self.child.id().to_string(),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        self.kill_group("-KILL");
        let _ = self.child.wait();
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// What `docker run` in the kit's start script would run in the container.
struct ContainerSpec {
    host_workspace: PathBuf,
    env: Vec<(String, String)>,
    command: Vec<String>,
}

fn container_spec(prepared: &Path) -> ContainerSpec {
    // The 2.9 script checks that the Docker socket is one: give it a real socket.
    let sockets = tempfile::tempdir().expect("tmp");
    let socket = sockets.path().join("docker.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("a unix socket");
    let socket_text = socket.to_string_lossy().into_owned();
    let script = run_script(
        &prepared.join("startup/start_docker.sh"),
        &[("NVFL_DOCKER_SOCK", socket_text.as_str())],
    );
    assert_eq!(script.status, 0, "start_docker.sh failed:\n{}", script.stdout);
    let argv = command(script.run_call());
    let mut host_workspace = None;
    let mut env = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        match argv[i].as_str() {
            "-v" => {
                if let Some(host) = argv[i + 1].strip_suffix(&format!(":{WORKSPACE}")) {
                    host_workspace = Some(PathBuf::from(host));
                }
                i += 2;
            }
            "-e" => {
                let (k, v) = argv[i + 1].split_once('=').expect("-e K=V");
                env.push((k.to_string(), v.to_string()));
                i += 2;
            }
            // The image follows --rm; the container command follows the image.
            "--rm" => {
                i += 2;
                break;
            }
            flag if flag.starts_with('-') && i + 1 < argv.len() && !argv[i + 1].starts_with('-') => i += 2,
            _ => i += 1,
        }
    }
    ContainerSpec {
        host_workspace: host_workspace.expect("workspace volume"),
        env,
        command: argv[i..].to_vec(),
    }
}

/// Starts the parent like the container would, with the venv's python standing in for
/// the image's `/usr/local/bin/python3`.
fn start_parent(env: &Env, name: &str, prepared: &Path, logs: &Path, extra_env: &[(&str, &str)]) -> Parent {
    let spec = container_spec(prepared);
    assert_eq!(spec.host_workspace, prepared.canonicalize().expect("prepared"));
    assert_eq!(spec.command[0], "/usr/local/bin/python3", "{:?}", spec.command);
    let log = logs.join(format!("{name}.log"));
    let out = File::create(&log).expect("log");
    // The namespace's /var/tmp: the workspace is bound into this directory first, then
    // the directory (with that mount: --rbind) over /var/tmp, so a workspace that lives
    // under the host's /var/tmp is still found and nothing is created there.
    let var_tmp = tempfile::tempdir().expect("tmp");
    let mount_point = var_tmp.path().join(WORKSPACE.trim_start_matches("/var/tmp/"));
    std::fs::create_dir_all(&mount_point).expect("mount point");
    let mut cmd = Command::new("setpriv");
    // The parent dies with this test process, whatever ends it.
    cmd.args(["--pdeathsig", "KILL", "--"]);
    cmd.args(&env.unshare_prefix)
        .arg("--")
        .arg("bash")
        .arg("-c")
        .arg("mount --bind \"$1\" \"$2\" && mount --rbind \"$3\" /var/tmp && shift 3 && exec \"$@\"");
    cmd.arg("_")
        .arg(&spec.host_workspace)
        .arg(&mount_point)
        .arg(var_tmp.path())
        .arg(&env.python)
        .args(&spec.command[1..]);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .process_group(0);
    let child = cmd.spawn().expect("start parent");
    Parent {
        name: name.to_string(),
        child,
        log,
        _var_tmp: var_tmp,
    }
}

struct Project {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    prod: PathBuf,
}

fn provision(env: &Env, fed_port: u16, admin_port: u16) -> Project {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().to_path_buf();
    let prod = flare_deploy_tests::provision::provision(
        &env.nvflare,
        &root,
        &flare_deploy_tests::provision::ProjectSpec {
            name: "e2e_project",
            server: "localhost",
            fed_learn_port: fed_port,
            admin_port: Some(admin_port),
        },
    );
    Project { _tmp: tmp, root, prod }
}

fn prepare_docker(env: &Env, project: &Project, kit: &str) -> PathBuf {
    let config = project.root.join("docker.yaml");
    std::fs::write(
        &config,
        format!(
            "runtime: docker\nnvflare_version: '{}'\nparent:\n  docker_image: nvflare/nvflare:{}\n",
            env.release, env.release
        ),
    )
    .expect("config");
    let output = project.root.join("prepared").join(kit);
    flare_deploy([
        "prepare".as_ref(),
        project.prod.join(kit).as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
        "--nvflare-version".as_ref(),
        env.release.as_ref(),
    ])
    .assert_ok();
    output
}

/// Asks the server through the admin kit's API; `shutdown` also stops the system.
fn admin_api(env: &Env, project: &Project, shutdown: bool) -> serde_json::Value {
    let script = r#"
import json, sys
from nvflare.fuel.flare_api.flare_api import new_secure_session
session = new_secure_session("admin@nvidia.com", sys.argv[1], timeout=60)
try:
    info = session.get_system_info()
    print(json.dumps({"server": str(info.server_info.status), "clients": sorted(c.name for c in info.client_info)}))
    sys.stdout.flush()
    if sys.argv[2] == "shutdown":
        try:
            session.shutdown_system()
        except Exception as e:  # the server may be gone before it answers
            print("shutdown:", type(e).__name__, file=sys.stderr)
finally:
    try:
        session.close()
    except Exception:
        pass
"#;
    let out = Command::new(&env.python)
        .arg("-c")
        .arg(script)
        .arg(project.prod.join("admin@nvidia.com"))
        .arg(if shutdown { "shutdown" } else { "status" })
        .output()
        .expect("admin api");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| {
        panic!(
            "admin API printed no status:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(line).expect("admin API JSON")
}

#[test]
fn prepared_docker_kits_boot_register_and_shut_down() {
    let Some(env) = environment() else { return };
    boot_register_and_shut_down(env);
}

#[test]
fn prepared_2_9_kits_boot_with_mtls_links_register_and_shut_down() {
    let Some(env) = environment_2_9() else { return };
    boot_register_and_shut_down(env);
}

/// Provisions with `env`'s NVFlare, prepares every kit for its release, boots the server
/// and both clients from the prepared kits, and shuts them down through the admin API.
fn boot_register_and_shut_down(env: Env) {
    // The ports are provisioned into the kits: a server that finds one taken means a new
    // project with new ports.
    let (project, server_kit, logs, server) = ports::with_ports(2, |ports| {
        let project = provision(&env, ports.get(0), ports.get(1));
        let server_kit = prepare_docker(&env, &project, "localhost");
        let logs = project.root.join("logs");
        std::fs::create_dir_all(&logs).expect("logs");
        // The server, with Python logging every module it loads (`python -v`).
        let mut server = start_parent(&env, "server", &server_kit, &logs, &[("PYTHONVERBOSE", "1")]);
        server.wait_for_boot("Server started", ports.all())?;
        Ok((project, server_kit, logs, server))
    });
    let clients: Vec<PathBuf> = ["site-1", "site-2"]
        .iter()
        .map(|k| prepare_docker(&env, &project, k))
        .collect();
    let resources = read_json(&server_kit.join("local/resources.json.default"));
    let launcher = resources["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "docker_launcher"))
        .expect("docker_launcher component");
    assert_eq!(
        launcher["path"],
        "nvflare.app_opt.job_launcher.docker_launcher.ServerDockerJobLauncher"
    );
    let loaded = |module: &str| server.log_text().contains(&format!("import '{module}'"));
    assert!(
        loaded("nvflare.app_opt.job_launcher.docker_launcher"),
        "the server did not load the Docker job launcher"
    );
    assert!(loaded(
        "nvflare.app_common.resource_managers.passthrough_resource_manager"
    ));
    assert!(
        !loaded("nvflare.app_common.job_launcher.server_process_launcher"),
        "the provisioned process launcher is still in use"
    );
    // Storage relocated into the mounted workspace: created inside the prepared kit.
    assert!(
        server_kit.join("jobs-storage").is_dir(),
        "jobs storage not in the workspace"
    );
    assert!(
        server_kit.join("snapshot-storage").is_dir(),
        "snapshot storage not in the workspace"
    );

    let mut parents: Vec<Parent> = clients
        .iter()
        .zip(["site-1", "site-2"])
        .map(|(kit, name)| start_parent(&env, name, kit, &logs, &[]))
        .collect();
    for parent in &mut parents {
        let needle = format!("Successfully registered client:{}", parent.name);
        parent.wait_for_log(&needle);
    }
    let status = admin_api(&env, &project, false);
    assert_eq!(status["clients"], serde_json::json!(["site-1", "site-2"]), "{status}");
    // The parent's listener for its jobs: mTLS (`stcp`) with 2.9, clear (`tcp`) with 2.8.
    let scheme = if env.release == "2.9" { "stcp" } else { "tcp" };
    for (name, log) in
        std::iter::once(("server", server.log_text())).chain(parents.iter().map(|p| (p.name.as_str(), p.log_text())))
    {
        let line = log
            .lines()
            .find(|l| l.contains("created backbone internal listener for"))
            .unwrap_or_else(|| panic!("{name} created no internal listener:\n{}", tail(&log)));
        assert!(line.contains(&format!("for {scheme}://")), "{name}: {line}");
    }
    for name in ["site-1", "site-2"] {
        assert!(
            server.log_text().contains(&format!("New client {name}@")),
            "server log lacks {name}"
        );
    }

    // A clean shutdown through the admin API stops every parent and every process it
    // started: checked before anything is killed (the kill only cleans up after a failure).
    admin_api(&env, &project, true);
    parents.push(server);
    for parent in &mut parents {
        let exited = parent.wait_exit(SHUTDOWN_TIMEOUT);
        assert!(
            exited.is_some(),
            "{} did not shut down:\n{}",
            parent.name,
            tail(&parent.log_text())
        );
    }
    for parent in &parents {
        assert!(
            parent.wait_group_gone(SHUTDOWN_TIMEOUT),
            "processes of {} survived the shutdown:\n{}",
            parent.name,
            parent.group_processes()
        );
    }
    // Dropping the parents kills their groups: the cleanup when an assertion failed.
}

#[test]
fn a_broken_launcher_path_fails_to_boot() {
    let Some(env) = environment() else { return };
    // The server never gets to bind: reserved ports, no retry.
    let ports = ports::reserve(2);
    let project = provision(&env, ports.get(0), ports.get(1));
    let server_kit = prepare_docker(&env, &project, "localhost");
    let resources_path = server_kit.join("local/resources.json.default");
    let text = std::fs::read_to_string(&resources_path).expect("resources");
    assert!(text.contains("ServerDockerJobLauncher"));
    std::fs::write(
        &resources_path,
        text.replace("ServerDockerJobLauncher", "NoSuchJobLauncher"),
    )
    .expect("break it");
    let logs = project.root.join("logs");
    std::fs::create_dir_all(&logs).expect("logs");
    let mut server = start_parent(&env, "server", &server_kit, &logs, &[]);
    let status = server.wait_exit(BOOT_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "a server with a broken launcher kept running:\n{}",
            tail(&server.log_text())
        )
    });
    assert!(!status.success(), "broken server exited 0");
    let log = server.log_text();
    assert!(log.contains("NoSuchJobLauncher"), "{}", tail(&log));
    assert!(!log.contains("Server started"), "{}", tail(&log));
}
