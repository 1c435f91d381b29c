//! Runs the generated `start_docker.sh` under bash with a stub `docker` first on PATH
//! that records every invocation's argv, and checks the exact commands, also for
//! hostile site names, organisations, images and networks. The NVFlare 2.8 script is
//! checked first, then the 2.9 one (Docker socket discovery, pinned `--host`,
//! group-add rules, the `--mount` of the socket; docs/deviations.md S1-S9).

use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use flare_deploy_tests::stub_docker::{command, run_script, ScriptRun, Stub};
use flare_deploy_tests::{flare_deploy, tools, Project};
use serde_json::json;

fn id(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn group_add_args() -> Vec<String> {
    match std::fs::metadata("/var/run/docker.sock") {
        Ok(meta) if meta.gid() != 0 => vec!["--group-add".into(), meta.gid().to_string()],
        _ => Vec::new(),
    }
}

fn is_docker_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

struct Case {
    role: &'static str,
    name: &'static str,
    org: &'static str,
    image: &'static str,
    network: &'static str,
}

/// A prepared kit of a [`Case`], with `MARKER` in its values replaced by `marker`.
struct Prepared {
    output: PathBuf,
    script: PathBuf,
    marker: PathBuf,
    name: String,
    org: String,
    image: String,
    network: String,
}

/// Prepares the kit for `case` in `tmp` for NVFlare `release` (the harness's default
/// release, 2.8, when `None`).
fn prepare_case(case: &Case, tmp: &Path, release: Option<&str>) -> Prepared {
    let marker = tmp.join("INJECTED");
    let subst = |s: &str| s.replace("MARKER", &marker.display().to_string());
    let (name, org, image, network) = (
        subst(case.name),
        subst(case.org),
        subst(case.image),
        subst(case.network),
    );
    let project = Project::new("example_project");
    let kit = match case.role {
        "server" => project.server(&name).dir_name("server-kit").org(Some(&org)).build(tmp),
        _ => project
            .client(&name)
            .dir_name("client-kit")
            .fqsn(json!(name))
            .org(Some(&org))
            .build(tmp),
    };
    let config = tmp.join("docker.yaml");
    let yaml =
        serde_yaml::to_string(&json!({"runtime": "docker", "parent": {"docker_image": image, "network": network}}))
            .expect("yaml");
    std::fs::write(&config, yaml).expect("config");
    let output = tmp.join("out dir").join("prepared");
    let mut args: Vec<&OsStr> = vec![
        "prepare".as_ref(),
        kit.dir.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ];
    if let Some(release) = release {
        args.extend([OsStr::new("--nvflare-version"), OsStr::new(release)]);
    }
    flare_deploy(args).assert_ok();
    let script = output.join("startup/start_docker.sh");
    let mode = std::fs::metadata(&script).expect("script").permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "script is executable");
    Prepared {
        output,
        script,
        marker,
        name,
        org,
        image,
        network,
    }
}

/// The parent process command line the script runs in the container.
fn parent_command(role: &str, name: &str, org: &str) -> Vec<String> {
    let mut command: Vec<String> = vec!["/usr/local/bin/python3".into(), "-u".into(), "-m".into()];
    if role == "server" {
        command.extend([
            "nvflare.private.fed.app.server.server_train".into(),
            "-m".into(),
            "/var/tmp/nvflare/workspace".into(),
            "-s".into(),
            "fed_server.json".into(),
            "--set".into(),
            "secure_train=true".into(),
            "config_folder=config".into(),
            format!("org={org}"),
        ]);
    } else {
        command.extend([
            "nvflare.private.fed.app.client.client_train".into(),
            "-m".into(),
            "/var/tmp/nvflare/workspace".into(),
            "-s".into(),
            "fed_client.json".into(),
            "--set".into(),
            "secure_train=true".into(),
            format!("uid={name}"),
            format!("org={org}"),
            "config_folder=config".into(),
        ]);
    }
    command
}

/// Prepares the kit for `case`, runs its script and checks every docker invocation.
fn check_case(case: &Case) {
    let tmp = tempfile::tempdir().expect("tmp");
    let Prepared {
        output,
        script,
        marker,
        name,
        org,
        image,
        network,
    } = prepare_case(case, tmp.path(), None);

    let result = run_script(&script, &[]);
    assert_eq!(result.status, 0, "script failed; stdout:\n{}", result.stdout);
    assert!(!marker.exists(), "an injected command ran for case {}", case.name);
    let expected_echo = format!("Starting NVFlare {} {name} with image {image}\n", case.role);
    assert!(
        result.stdout.starts_with(&expected_echo),
        "echo line:\n{}",
        result.stdout
    );

    let workspace = output.canonicalize().expect("output").display().to_string();
    assert_eq!(result.calls.len(), 5, "calls: {:?}", result.calls);
    assert_eq!(result.calls[0], vec!["info".to_string()]);
    assert_eq!(
        result.calls[1],
        vec!["network".to_string(), "inspect".into(), network.clone()]
    );
    assert_eq!(
        result.calls[2],
        vec!["network".to_string(), "create".into(), network.clone()]
    );
    // No parent container of that name runs yet: nothing to replace.
    assert_eq!(result.calls[3][..2], ["container".to_string(), "inspect".into()]);
    assert_eq!(
        result.calls[3][2], result.calls[4][2],
        "the inspected name is the container's"
    );

    let run_call = &result.calls[4];
    assert_eq!(run_call[0], "run");
    assert_eq!(run_call[1], "--name");
    let container = &run_call[2];
    assert!(is_docker_name(container), "container name {container:?}");
    if is_docker_name(&name) {
        assert_eq!(container, &name);
    }
    let mut expected: Vec<String> = vec!["run".into(), "--name".into(), container.clone()];
    expected.extend(["--user".into(), format!("{}:{}", id("-u"), id("-g"))]);
    expected.extend(group_add_args());
    expected.extend(["--network".into(), network.clone()]);
    if case.role == "server" {
        expected.extend(["--network-alias".into(), "server".into()]);
    }
    expected.extend([
        "-v".into(),
        format!("{workspace}:/var/tmp/nvflare/workspace"),
        "-v".into(),
        "/var/run/docker.sock:/var/run/docker.sock".into(),
        "-e".into(),
        format!("NVFL_DOCKER_WORKSPACE={workspace}"),
    ]);
    if case.role == "server" {
        expected.extend(["-p".into(), "8002:8002".into(), "-p".into(), "8003:8003".into()]);
    }
    expected.extend(["--rm".into(), image.clone()]);
    expected.extend(parent_command(case.role, &name, &org));
    assert_eq!(run_call, &expected);

    // The image can still be overridden at start time.
    let overridden = run_script(&script, &[("NVFL_P_IMAGE", "registry.local/other:1")]);
    let run_call = overridden.calls.last().expect("docker run");
    assert!(run_call.iter().any(|a| a == "registry.local/other:1"), "{run_call:?}");
    assert!(!run_call.contains(&image), "{run_call:?}");
}

#[test]
fn plain_client_script_runs_the_reference_command() {
    check_case(&Case {
        role: "client",
        name: "site-1",
        org: "nvidia",
        image: "nvflare/nvflare:2.8.1",
        network: "nvflare-test",
    });
}

#[test]
fn plain_server_script_publishes_ports_and_alias() {
    check_case(&Case {
        role: "server",
        name: "abc.aws.com",
        org: "nvidia",
        image: "localhost:5000/nvflare@sha256:0123",
        network: "nvflare-network",
    });
}

/// Hostile client values: (site name, organisation, image, network); `MARKER` is the
/// path of a file that an injected command would create.
const HOSTILE_CLIENT_VALUES: [(&str, &str, &str, &str); 6] = [
    (
        "site $(touch MARKER)",
        "org`touch MARKER`",
        "img\"; touch MARKER; echo \"",
        "net$(touch MARKER)",
    ),
    ("it's \"quoted\" \\ back", "O'Brien & Co", "img with space", "net'work"),
    ("line1\nline2", "org\nnext", "img$HOME", "net;touch MARKER"),
    ("-leading-dash", "--org", "-img", "-net"),
    ("Hôpital Ünï 医院", "Société Générale", "img:ü", "réseau"),
    ("${PATH}`id`$'\\x41'", "$(id)", "${IFS}x", "!!*?[a]"),
];

/// A hostile server name and organisation.
const HOSTILE_SERVER: Case = Case {
    role: "server",
    name: "srv `touch MARKER` $(touch MARKER) 'q'",
    org: "nvidia; touch MARKER",
    image: "img",
    network: "n",
};

#[test]
fn hostile_client_values_are_taken_literally() {
    for (name, org, image, network) in HOSTILE_CLIENT_VALUES {
        check_case(&Case {
            role: "client",
            name,
            org,
            image,
            network,
        });
    }
}

#[test]
fn hostile_server_name_is_taken_literally() {
    check_case(&HOSTILE_SERVER);
}

#[test]
fn output_path_with_spaces_and_quotes_runs() {
    // The script finds its workspace from its own location, whatever the path holds.
    let tmp = tempfile::tempdir().expect("tmp");
    let project = Project::new("p");
    let kit = project.client("site-1").build(tmp.path());
    kit.write_config("runtime: docker\nparent:\n  docker_image: img\n");
    let output: PathBuf = tmp.path().join("we'ird $(dir) `x`").join("site 1");
    flare_deploy([
        "prepare".as_ref(),
        kit.dir.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ])
    .assert_ok();
    let result = run_script(&output.join("startup/start_docker.sh"), &[]);
    assert_eq!(result.status, 0);
    let run_call = result.calls.last().expect("docker run");
    let workspace = output.canonicalize().expect("output").display().to_string();
    assert!(
        run_call.contains(&format!("{workspace}:/var/tmp/nvflare/workspace")),
        "{run_call:?}"
    );
}

/// The committed 2.8 template with `substitutions` applied, as the existing suites expect.
fn template_2_8(substitutions: &[(&str, &str)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/docker/start_docker.sh");
    let mut text = std::fs::read_to_string(path).expect("2.8 template");
    for (token, value) in substitutions {
        text = text.replace(token, value);
    }
    text
}

#[test]
fn release_2_8_script_is_the_committed_template_byte_for_byte() {
    let tmp = tempfile::tempdir().expect("tmp");
    let common = [
        ("@@DOCKER_IMAGE@@", "\"nvflare/nvflare:2.8.1\""),
        ("@@NETWORK_NAME@@", "\"nvflare-test\""),
    ];
    for (case, lines) in [
        (
            Case {
                role: "client",
                name: "site-1",
                org: "nvidia",
                image: "nvflare/nvflare:2.8.1",
                network: "nvflare-test",
            },
            vec![
                ("@@ROLE@@", "client"),
                ("@@SITE_NAME@@", "site-1"),
                ("@@CONTAINER_NAME@@", "site-1"),
                ("    @@SERVER_NETWORK_ARGS@@\n", ""),
                ("    @@PUBLISH_PORTS@@\n", ""),
            ],
        ),
        (
            Case {
                role: "server",
                name: "abc.aws.com",
                org: "nvidia",
                image: "nvflare/nvflare:2.8.1",
                network: "nvflare-test",
            },
            vec![
                ("@@ROLE@@", "server"),
                ("@@SITE_NAME@@", "abc.aws.com"),
                ("@@CONTAINER_NAME@@", "abc.aws.com"),
                ("@@SERVER_NETWORK_ARGS@@", "--network-alias server \\"),
                ("@@PUBLISH_PORTS@@", "-p 8002:8002 \\\n    -p 8003:8003 \\"),
            ],
        ),
    ] {
        let dir = tmp.path().join(case.role);
        let prepared = prepare_case(&case, &dir, Some("2.8"));
        let command = parent_command(case.role, case.name, case.org).join(" \\\n    ");
        let mut substitutions = lines;
        substitutions.extend(common);
        substitutions.push(("@@PARENT_COMMAND@@", &command));
        let expected = template_2_8(&substitutions);
        assert!(!expected.contains("@@"), "{expected}");
        let actual = std::fs::read_to_string(&prepared.script).expect("script");
        assert_eq!(actual, expected, "the 2.8 script changed");
    }
}

// ---- NVFlare 2.9 -------------------------------------------------------------------

/// Creates a unix socket at `path` (its parent directories too).
fn make_socket(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("socket dir");
    // Closing the listener leaves the socket file in place.
    std::os::unix::net::UnixListener::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
    path.to_path_buf()
}

/// Gives `path` (not a symlink it names) the group `gid`; false (after saying why) when
/// this user may not.
fn chgrp(path: &Path, gid: u32) -> bool {
    match std::os::unix::fs::lchown(path, None, Some(gid)) {
        Ok(()) => true,
        Err(e) => {
            flare_deploy_tests::tools::unavailable(&format!(
                "cannot give {} the group {gid} ({e}); run as root",
                path.display()
            ));
            false
        }
    }
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `--group-add` for a local socket owned by `gid` on Linux.
fn local_group_add(gid: u32) -> Vec<String> {
    strings(&["--group-add", &gid.to_string()])
}

fn socket_gid(path: &Path) -> u32 {
    std::fs::metadata(path).expect("socket").gid()
}

/// The `--group-add` arguments of a parent `docker run` (between `--user <ids>` and
/// `--network`).
fn group_add_of(run_call: &[String]) -> Vec<String> {
    let user = run_call.iter().position(|a| a == "--user").expect("--user");
    let network = run_call.iter().position(|a| a == "--network").expect("--network");
    run_call[user + 2..network].to_vec()
}

/// The `--mount` value that binds `sock` to the container's docker socket.
fn mount_word(sock: &str) -> String {
    format!("type=bind,src={sock},dst=/var/run/docker.sock")
}

/// The docker call `args` as the 2.9 script makes it: pinned to `unix://<sock>` for a
/// local daemon, as is for a remote one.
fn pinned(host_sock: Option<&str>, args: &[&str]) -> Vec<String> {
    let mut call = match host_sock {
        Some(sock) => vec!["--host".to_string(), format!("unix://{sock}")],
        None => Vec::new(),
    };
    call.extend(strings(args));
    call
}

/// The parent `docker run` of a 2.9 script.
struct Run29<'a> {
    prepared: &'a Prepared,
    role: &'a str,
    host_sock: Option<&'a str>,
    group_add: Vec<String>,
    mount: String,
}

impl Run29<'_> {
    fn argv(&self, container: &str) -> Vec<String> {
        let p = self.prepared;
        let workspace = text(&p.output.canonicalize().expect("output"));
        let mut expected = pinned(self.host_sock, &["run", "--name", container]);
        expected.extend(["--user".into(), format!("{}:{}", id("-u"), id("-g"))]);
        expected.extend(self.group_add.iter().cloned());
        expected.extend(["--network".into(), p.network.clone()]);
        if self.role == "server" {
            expected.extend(strings(&["--network-alias", "server"]));
        }
        expected.extend([
            "-v".into(),
            format!("{workspace}:/var/tmp/nvflare/workspace"),
            "--mount".into(),
            self.mount.clone(),
            "-e".into(),
            format!("NVFL_DOCKER_WORKSPACE={workspace}"),
        ]);
        if self.role == "server" {
            expected.extend(strings(&["-p", "8002:8002", "-p", "8003:8003"]));
        }
        expected.extend(["--rm".into(), p.image.clone()]);
        expected.extend(parent_command(self.role, &p.name, &p.org));
        expected
    }
}

/// A plain client prepared for 2.9 in `tmp`.
fn plain_client_29(tmp: &Path) -> Prepared {
    plain_client(tmp, "2.9")
}

/// A plain client prepared for 2.8 in `tmp`.
fn plain_client_28(tmp: &Path) -> Prepared {
    plain_client(tmp, "2.8")
}

fn plain_client(tmp: &Path, release: &str) -> Prepared {
    prepare_case(
        &Case {
            role: "client",
            name: "site-1",
            org: "nvidia",
            image: "nvflare/nvflare:2.9.0",
            network: "nvflare-network",
        },
        tmp,
        Some(release),
    )
}

#[track_caller]
fn assert_shellcheck_clean(script: &Path) {
    let Some(shellcheck) = tools::require("shellcheck") else {
        return;
    };
    let check = Command::new(shellcheck).arg(script).output().expect("shellcheck");
    assert!(
        check.status.success() && check.stdout.is_empty(),
        "shellcheck {}:\n{}",
        script.display(),
        String::from_utf8_lossy(&check.stdout)
    );
}

/// Asserts a failed start: exit 1, `stdout` ends with `message`, the parent never ran.
#[track_caller]
fn assert_refused(result: &ScriptRun, message: &str) {
    assert_eq!(
        result.status, 1,
        "stdout:\n{}\nstderr:\n{}",
        result.stdout, result.stderr
    );
    assert!(
        result.stdout.ends_with(message),
        "stdout does not end with\n{message}\ngot:\n{}",
        result.stdout
    );
    assert!(!result.ran_parent(), "calls: {:?}", result.calls);
}

/// Prepares `case` for 2.9, runs its script on a local socket named by
/// NVFL_DOCKER_SOCK and checks every docker call, the output and shellcheck.
fn check_case_29(case: &Case) {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = prepare_case(case, tmp.path(), Some("2.9"));
    let sock = make_socket(&tmp.path().join("docker.sock"));
    let sock_text = text(&sock);
    let result = Stub::new().env("NVFL_DOCKER_SOCK", &sock_text).run(&prepared.script);
    assert_eq!(
        result.status, 0,
        "stdout:\n{}\nstderr:\n{}",
        result.stdout, result.stderr
    );
    assert!(
        !prepared.marker.exists(),
        "an injected command ran for case {}",
        case.name
    );
    let workspace = text(&prepared.output.canonicalize().expect("output"));
    assert_eq!(
        result.stdout,
        format!(
            "Starting NVFlare {} {} with image {}\nHost workspace: {workspace}\nCreated Docker network: {}\n",
            case.role, prepared.name, prepared.image, prepared.network
        )
    );
    let host = Some(sock_text.as_str());
    let network = prepared.network.as_str();
    assert_eq!(result.calls.len(), 6, "calls: {:?}", result.calls);
    assert_eq!(result.calls[0], strings(&["context", "show"]));
    assert_eq!(result.calls[1], pinned(host, &["info"]));
    assert_eq!(result.calls[2], pinned(host, &["network", "inspect", network]));
    assert_eq!(result.calls[3], pinned(host, &["network", "create", network]));
    let run_call = &result.calls[5];
    let container = &run_call[4];
    assert_eq!(result.calls[4], pinned(host, &["container", "inspect", container]));
    assert!(is_docker_name(container), "container name {container:?}");
    if is_docker_name(&prepared.name) {
        assert_eq!(container, &prepared.name);
    }
    // Linux: the socket's group, also when it is root's (0).
    let expected = Run29 {
        prepared: &prepared,
        role: case.role,
        host_sock: host,
        group_add: local_group_add(socket_gid(&sock)),
        mount: mount_word(&sock_text),
    };
    assert_eq!(run_call, &expected.argv(container));

    // The image can still be overridden at start time.
    let overridden = Stub::new()
        .env("NVFL_DOCKER_SOCK", &sock_text)
        .env("NVFL_P_IMAGE", "registry.local/other:1")
        .run(&prepared.script);
    let run_call = overridden.run_call();
    assert!(run_call.iter().any(|a| a == "registry.local/other:1"), "{run_call:?}");
    assert!(!run_call.contains(&prepared.image), "{run_call:?}");
    assert!(
        !prepared.marker.exists(),
        "an injected command ran for case {}",
        case.name
    );

    assert_shellcheck_clean(&prepared.script);
}

#[test]
fn release_2_9_plain_client_script_runs_the_reference_command() {
    check_case_29(&Case {
        role: "client",
        name: "site-1",
        org: "nvidia",
        image: "nvflare/nvflare:2.9.0",
        network: "nvflare-test",
    });
}

#[test]
fn release_2_9_plain_server_script_publishes_ports_and_alias() {
    check_case_29(&Case {
        role: "server",
        name: "abc.aws.com",
        org: "nvidia",
        image: "localhost:5000/nvflare@sha256:0123",
        network: "nvflare-network",
    });
}

#[test]
fn release_2_9_hostile_values_are_taken_literally() {
    for (name, org, image, network) in HOSTILE_CLIENT_VALUES {
        check_case_29(&Case {
            role: "client",
            name,
            org,
            image,
            network,
        });
    }
    check_case_29(&HOSTILE_SERVER);
}

#[test]
fn release_2_9_socket_from_docker_host_is_pinned() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = plain_client_29(tmp.path());
    let sock = text(&make_socket(&tmp.path().join("run/docker.sock")));
    let result = Stub::new()
        .env("DOCKER_HOST", &format!("unix://{sock}"))
        .run(&prepared.script);
    assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
    // DOCKER_HOST names the daemon: the docker context is not asked.
    assert_eq!(result.calls[0], pinned(Some(&sock), &["info"]));
    assert!(
        result.calls.iter().all(|c| c[..2] == pinned(Some(&sock), &[])[..]),
        "{:?}",
        result.calls
    );
    assert_eq!(
        result.run_call(),
        Run29 {
            prepared: &prepared,
            role: "client",
            host_sock: Some(&sock),
            group_add: local_group_add(socket_gid(Path::new(&sock))),
            mount: mount_word(&sock),
        }
        .argv("site-1")
    );

    // NVFL_DOCKER_SOCK wins over the endpoint's path.
    let other = text(&make_socket(&tmp.path().join("other/docker.sock")));
    let result = Stub::new()
        .env("DOCKER_HOST", &format!("unix://{sock}"))
        .env("NVFL_DOCKER_SOCK", &other)
        .run(&prepared.script);
    assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
    assert!(
        result.calls.iter().all(|c| c[..2] == pinned(Some(&other), &[])[..]),
        "{:?}",
        result.calls
    );
    let run_call = result.run_call();
    let mount = run_call.iter().position(|a| a == "--mount").expect("--mount");
    assert_eq!(run_call[mount + 1], mount_word(&other));
}

#[test]
fn release_2_9_socket_from_docker_context_is_pinned() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = plain_client_29(tmp.path());
    let sock = text(&make_socket(&tmp.path().join("desktop/docker.sock")));
    let result = Stub::new()
        .context("desktop-linux", &format!("unix://{sock}"))
        .run(&prepared.script);
    assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
    assert_eq!(result.calls[0], strings(&["context", "show"]));
    assert_eq!(
        result.calls[1],
        strings(&[
            "context",
            "inspect",
            "desktop-linux",
            "--format",
            "{{.Endpoints.docker.Host}}"
        ])
    );
    assert_eq!(result.calls[2], pinned(Some(&sock), &["info"]));
    let run_call = result.run_call();
    assert_eq!(&run_call[..2], &pinned(Some(&sock), &[])[..]);
    let mount = run_call.iter().position(|a| a == "--mount").expect("--mount");
    assert_eq!(run_call[mount + 1], mount_word(&sock));
}

#[test]
fn release_2_9_symlinked_socket_is_resolved_one_level() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().canonicalize().expect("tmp");
    let prepared = plain_client_29(&root);
    let real = make_socket(&root.join("real/docker.sock"));
    let real_text = text(&real);
    std::fs::create_dir_all(root.join("links")).expect("links");
    let absolute = root.join("links/absolute.sock");
    std::os::unix::fs::symlink(&real, &absolute).expect("absolute link");
    let relative = root.join("links/relative.sock");
    std::os::unix::fs::symlink("../real/docker.sock", &relative).expect("relative link");
    // A relative target is read from the link's physical directory, as the kernel does:
    // through `alias` (-> deep/a), `..` is `deep`, not `root`.
    std::fs::create_dir_all(root.join("deep/a")).expect("deep");
    std::os::unix::fs::symlink("deep/a", root.join("alias")).expect("alias");
    let physical = make_socket(&root.join("deep/real/docker.sock"));
    std::os::unix::fs::symlink("../real/docker.sock", root.join("deep/a/up.sock")).expect("up link");
    for (endpoint, resolved) in [
        (text(&absolute), real_text.clone()),
        (text(&relative), real_text.clone()),
        (text(&root.join("alias/up.sock")), text(&physical)),
    ] {
        let result = Stub::new()
            .env("DOCKER_HOST", &format!("unix://{endpoint}"))
            .run(&prepared.script);
        assert_eq!(result.status, 0, "{endpoint}: {}{}", result.stdout, result.stderr);
        let run_call = result.run_call();
        assert_eq!(&run_call[..2], &pinned(Some(&resolved), &[])[..], "{endpoint}");
        let mount = run_call.iter().position(|a| a == "--mount").expect("--mount");
        assert_eq!(run_call[mount + 1], mount_word(&resolved), "{endpoint}");
    }

    // A socket named by NVFL_DOCKER_SOCK is used as named, but its group is the
    // socket's, not the link's (the link is root's; the socket's group is 4242).
    if chgrp(&real, 4242) {
        let link = text(&absolute);
        let result = Stub::new().env("NVFL_DOCKER_SOCK", &link).run(&prepared.script);
        assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
        assert_eq!(
            result.run_call(),
            Run29 {
                prepared: &prepared,
                role: "client",
                host_sock: Some(&link),
                group_add: local_group_add(4242),
                mount: mount_word(&link),
            }
            .argv("site-1")
        );
    }
}

#[test]
fn release_2_9_relative_socket_path_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = plain_client_29(tmp.path());
    // Even a socket that exists relative to the working directory.
    make_socket(&tmp.path().join("rel/docker.sock"));
    for stub in [
        Stub::new().env("NVFL_DOCKER_SOCK", "rel/docker.sock"),
        Stub::new().env("DOCKER_HOST", "unix://rel/docker.sock"),
        Stub::new().context("default", "unix://rel/docker.sock"),
    ] {
        let result = stub.cwd(tmp.path()).run(&prepared.script);
        assert_refused(&result, "ERROR: Docker socket path must be absolute: rel/docker.sock\n");
        assert!(
            result.calls.iter().all(|c| c[0] == "context"),
            "only the context is asked: {:?}",
            result.calls
        );
    }
}

#[test]
fn release_2_9_missing_or_non_socket_path_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = plain_client_29(tmp.path());
    let file = tmp.path().join("regular-file");
    std::fs::write(&file, "").expect("file");
    let missing = tmp.path().join("missing.sock");
    for (stub, path) in [
        (Stub::new().env("NVFL_DOCKER_SOCK", &text(&file)), text(&file)),
        (
            Stub::new().env("DOCKER_HOST", &format!("unix://{}", text(&missing))),
            text(&missing),
        ),
    ] {
        let result = stub.run(&prepared.script);
        assert_refused(
            &result,
            &format!(
                "ERROR: Docker socket not found or not a socket: {path}\nSet NVFL_DOCKER_SOCK=/path/to/docker.sock to override the Docker socket path.\n"
            ),
        );
        assert!(result.calls.iter().all(|c| c[0] == "context"), "{:?}", result.calls);
    }
}

#[test]
fn release_2_9_local_group_add_follows_the_socket_group() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = plain_client_29(tmp.path());
    let sock = make_socket(&tmp.path().join("docker.sock"));
    let sock_text = text(&sock);
    let darwin = "#!/bin/sh\necho Darwin\n";
    let group_add = |stub: Stub| -> Vec<String> {
        let result = stub.env("NVFL_DOCKER_SOCK", &sock_text).run(&prepared.script);
        assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
        group_add_of(result.run_call())
    };
    if !chgrp(&sock, 0) {
        return;
    }
    // Owned by root's group: the container joins group 0.
    assert_eq!(group_add(Stub::new()), strings(&["--group-add", "0"]));
    assert_eq!(
        group_add(Stub::new().program("uname", darwin)),
        strings(&["--group-add", "0"])
    );
    // A docker group: the container joins it; on macOS group 0 as well.
    assert!(chgrp(&sock, 4242));
    assert_eq!(group_add(Stub::new()), strings(&["--group-add", "4242"]));
    assert_eq!(
        group_add(Stub::new().program("uname", darwin)),
        strings(&["--group-add", "0", "--group-add", "4242"])
    );
}

#[test]
fn release_2_9_remote_daemon_with_configured_socket_gid() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = plain_client_29(tmp.path());
    let workspace = text(&prepared.output.canonicalize().expect("output"));
    for (stub, sock) in [
        (
            Stub::new().env("DOCKER_HOST", "tcp://10.0.0.5:2376"),
            "/var/run/docker.sock",
        ),
        // The path is on the daemon host: it need not exist here.
        (
            Stub::new()
                .context("remote", "ssh://deploy@gpu-host")
                .env("NVFL_DOCKER_SOCK", "/srv/docker/docker.sock"),
            "/srv/docker/docker.sock",
        ),
    ] {
        let result = stub.env("NVFL_DOCKER_SOCK_GID", "987").run(&prepared.script);
        assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
        assert_eq!(
            result.stdout,
            format!(
                "Using Docker socket on daemon host: {sock}\nStarting NVFlare client site-1 with image nvflare/nvflare:2.9.0\nHost workspace: {workspace}\nCreated Docker network: nvflare-network\nUsing configured daemon-host Docker socket GID: 987\n"
            )
        );
        // No --host: docker uses DOCKER_HOST or the context itself. No probe container.
        let calls: Vec<&Vec<String>> = result.calls.iter().filter(|c| c[0] != "context").collect();
        assert_eq!(calls.len(), 5, "{:?}", result.calls);
        assert_eq!(calls[0], &strings(&["info"]));
        assert_eq!(calls[1], &strings(&["network", "inspect", "nvflare-network"]));
        assert_eq!(calls[2], &strings(&["network", "create", "nvflare-network"]));
        assert_eq!(calls[3], &strings(&["container", "inspect", "site-1"]));
        assert_eq!(
            calls[4],
            &Run29 {
                prepared: &prepared,
                role: "client",
                host_sock: None,
                group_add: strings(&["--group-add", "987"]),
                mount: mount_word(sock),
            }
            .argv("site-1")
        );
    }
}

#[test]
fn release_2_9_remote_socket_gid_must_be_numeric() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = plain_client_29(tmp.path());
    for gid in ["docker", "12a", "-1", " 5", "$(touch MARKER)"] {
        let gid = gid.replace("MARKER", &text(&prepared.marker));
        let result = Stub::new()
            .env("DOCKER_HOST", "tcp://10.0.0.5:2376")
            .env("NVFL_DOCKER_SOCK_GID", &gid)
            .run(&prepared.script);
        assert_refused(&result, "ERROR: NVFL_DOCKER_SOCK_GID must be a numeric group ID.\n");
        assert!(!prepared.marker.exists());
    }
}

#[test]
fn release_2_9_remote_daemon_probes_the_socket_gid() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = plain_client_29(tmp.path());
    let remote = || Stub::new().env("DOCKER_HOST", "tcp://10.0.0.5:2376");
    let probe_call = |sock: &str| -> Vec<String> {
        let mut call = strings(&["run", "--rm", "--mount"]);
        call.push(mount_word(sock));
        call.extend(strings(&[
            "--entrypoint",
            "/usr/local/bin/python3",
            "nvflare/nvflare:2.9.0",
            "-c",
        ]));
        call
    };

    let result = remote().probe_answers("998", 0).run(&prepared.script);
    assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
    let probe = &result.calls[3];
    assert_eq!(probe[..probe.len() - 1], probe_call("/var/run/docker.sock")[..]);
    assert_eq!(result.calls.len(), 6, "{:?}", result.calls);
    assert_eq!(group_add_of(result.run_call()), strings(&["--group-add", "998"]));

    // The probe fails (no socket there) or answers nonsense: refused before the parent runs.
    let result = remote().probe_answers("", 1).run(&prepared.script);
    assert_refused(
        &result,
        "ERROR: Docker socket could not be validated on the daemon host: /var/run/docker.sock\nSet NVFL_DOCKER_SOCK_GID to the verified numeric socket GID to bypass this probe.\n",
    );
    for answer in ["x1", ""] {
        let result = remote().probe_answers(answer, 0).run(&prepared.script);
        assert_eq!(result.status, 1, "{}", result.stdout);
        assert!(
            result.stdout.ends_with(&format!(
                "ERROR: invalid Docker socket GID reported by daemon-host probe: {answer}\n"
            )),
            "{}",
            result.stdout
        );
        assert_eq!(result.calls.len(), 4, "no parent container: {:?}", result.calls);
    }

    // The probe's own python, run by the stub against a path on this machine: the
    // group of a socket, and a refusal for anything else.
    let sock = make_socket(&tmp.path().join("daemon-host/docker.sock"));
    if chgrp(&sock, 4242) {
        let result = remote().env("NVFL_DOCKER_SOCK", &text(&sock)).run(&prepared.script);
        assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
        assert_eq!(group_add_of(result.run_call()), strings(&["--group-add", "4242"]));
    }
    let file = tmp.path().join("daemon-host/not-a-socket");
    std::fs::write(&file, "").expect("file");
    let result = remote().env("NVFL_DOCKER_SOCK", &text(&file)).run(&prepared.script);
    assert_refused(
        &result,
        &format!(
            "ERROR: Docker socket could not be validated on the daemon host: {}\nSet NVFL_DOCKER_SOCK_GID to the verified numeric socket GID to bypass this probe.\n",
            text(&file)
        ),
    );
    assert!(result.stderr.contains("not a socket"), "{}", result.stderr);
}

#[test]
fn release_2_9_daemon_down_stops_before_anything_runs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = plain_client_29(tmp.path());
    let sock = text(&make_socket(&tmp.path().join("docker.sock")));
    let result = Stub::new()
        .env("NVFL_DOCKER_SOCK", &sock)
        .daemon_down()
        .run(&prepared.script);
    assert_refused(
        &result,
        "ERROR: cannot connect to Docker daemon. Make sure your user has permission to run docker.\n  Option 1 (docker group): sudo usermod -aG docker $USER  then log out and back in.\n  Option 2 (rootless Docker): https://docs.docker.com/engine/security/rootless/\n",
    );
    assert_eq!(result.calls.last(), Some(&pinned(Some(&sock), &["info"])));
}

#[test]
fn release_2_9_existing_network_is_not_created() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = plain_client_29(tmp.path());
    let sock = text(&make_socket(&tmp.path().join("docker.sock")));
    let result = Stub::new()
        .env("NVFL_DOCKER_SOCK", &sock)
        .network_exists()
        .run(&prepared.script);
    assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
    assert!(!result.stdout.contains("Created Docker network"), "{}", result.stdout);
    let commands: Vec<&[String]> = result.calls.iter().map(|c| command(c)).collect();
    assert_eq!(commands[2], strings(&["network", "inspect", "nvflare-network"]));
    assert_eq!(commands[3], strings(&["container", "inspect", "site-1"]));
    assert_eq!(commands[4][..2], strings(&["run", "--name"])[..]);
}

#[test]
fn running_the_script_again_replaces_the_running_parent_container() {
    // Found on the real Docker Engine (docker_real.rs): a second `docker run --name`
    // failed with a name conflict while the first parent ran.
    let tmp = tempfile::tempdir().expect("tmp");
    for release in ["2.8", "2.9"] {
        let prepared = if release == "2.8" {
            plain_client_28(tmp.path())
        } else {
            plain_client_29(&tmp.path().join("r29"))
        };
        let sock = text(&make_socket(&tmp.path().join(format!("docker-{release}.sock"))));
        let result = Stub::new()
            .env("NVFL_DOCKER_SOCK", &sock)
            .container_exists()
            .run(&prepared.script);
        assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
        assert!(
            result.stdout.contains("Replacing the existing container site-1\n"),
            "{release}: {}",
            result.stdout
        );
        let commands: Vec<&[String]> = result.calls.iter().map(|c| command(c)).collect();
        let inspect = commands
            .iter()
            .position(|c| *c == strings(&["container", "inspect", "site-1"]))
            .expect("container inspect");
        assert_eq!(commands[inspect + 1], strings(&["rm", "-f", "site-1"]), "{release}");
        assert_eq!(
            commands[inspect + 2][..3],
            strings(&["run", "--name", "site-1"])[..],
            "{release}"
        );
    }
}

#[test]
fn release_2_9_hostile_socket_paths_are_taken_literally() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().canonicalize().expect("tmp");
    let prepared = plain_client_29(&root);
    let marker = text(&prepared.marker);
    for dir in [
        "s $(touch MARKER)",
        "b `touch MARKER` ;|&",
        "q'\"x",
        "c,dst=.,ro",
        "n\nl",
        "-d *?[",
    ] {
        let dir = dir.replace("MARKER", &marker);
        let sock = make_socket(&root.join(&dir).join("d.sock"));
        let sock_text = text(&sock);
        // --mount reads comma-separated fields: a comma, quote or newline is quoted.
        let mount = if sock_text.contains([',', '"', '\n']) {
            format!(
                "type=bind,\"src={}\",dst=/var/run/docker.sock",
                sock_text.replace('"', "\"\"")
            )
        } else {
            mount_word(&sock_text)
        };
        for stub in [
            Stub::new().env("NVFL_DOCKER_SOCK", &sock_text),
            Stub::new().env("DOCKER_HOST", &format!("unix://{sock_text}")),
        ] {
            let result = stub.run(&prepared.script);
            assert_eq!(result.status, 0, "{dir:?}: {}{}", result.stdout, result.stderr);
            assert!(!prepared.marker.exists(), "an injected command ran for {dir:?}");
            assert_eq!(
                result.run_call(),
                Run29 {
                    prepared: &prepared,
                    role: "client",
                    host_sock: Some(&sock_text),
                    group_add: local_group_add(socket_gid(&sock)),
                    mount: mount.clone(),
                }
                .argv("site-1"),
                "{dir:?}"
            );
        }
        // A remote daemon: the same path goes to the probe's --mount.
        let result = Stub::new()
            .env("DOCKER_HOST", "tcp://10.0.0.5:2376")
            .env("NVFL_DOCKER_SOCK", &sock_text)
            .probe_answers("7", 0)
            .run(&prepared.script);
        assert_eq!(result.status, 0, "{dir:?}: {}{}", result.stdout, result.stderr);
        assert_eq!(result.calls[3][3], mount, "{dir:?}");
        assert!(!prepared.marker.exists(), "an injected command ran for {dir:?}");
    }
}

#[test]
fn release_2_9_script_runs_under_set_u() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prepared = plain_client_29(tmp.path());
    let sock = text(&make_socket(&tmp.path().join("docker.sock")));
    for stub in [
        Stub::new().env("NVFL_DOCKER_SOCK", &sock),
        Stub::new().env("DOCKER_HOST", &format!("unix://{sock}")),
        Stub::new().context("default", &format!("unix://{sock}")),
        Stub::new()
            .env("DOCKER_HOST", "tcp://h:2376")
            .env("NVFL_DOCKER_SOCK_GID", "5"),
        Stub::new().env("DOCKER_HOST", "tcp://h:2376").probe_answers("5", 0),
    ] {
        let result = stub.bash_option("-u").run(&prepared.script);
        assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
        assert!(result.stderr.is_empty(), "{}", result.stderr);
    }
}

/// Whether this process may run a command in its own mount namespace.
fn mount_namespace_available() -> bool {
    let ok = Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        flare_deploy_tests::tools::unavailable("unshare -m is not permitted here (needs root or CAP_SYS_ADMIN)");
    }
    ok
}

#[test]
fn release_2_9_default_socket_and_remote_daemons_in_a_private_var_run() {
    // /var/run is replaced, for the script only, by a directory whose docker.sock is a
    // symlink to a socket elsewhere.
    if !mount_namespace_available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().canonicalize().expect("tmp");
    let prepared = plain_client_29(&root);
    let real = text(&make_socket(&root.join("elsewhere/docker.sock")));
    let var_run = root.join("var-run");
    std::fs::create_dir_all(&var_run).expect("var-run");
    std::os::unix::fs::symlink(&real, var_run.join("docker.sock")).expect("link");
    let wrapper = "mount --bind \"$0\" /var/run && exec \"$@\"";
    let in_namespace = |stub: Stub| -> ScriptRun {
        stub.wrap(&[
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            wrapper,
            &text(&var_run),
        ])
        .run(&prepared.script)
    };

    // No configuration at all: the default socket, resolved through its link.
    let result = in_namespace(Stub::new());
    assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
    let run_call = result.run_call();
    assert_eq!(&run_call[..2], &pinned(Some(&real), &[])[..]);
    let mount = run_call.iter().position(|a| a == "--mount").expect("--mount");
    assert_eq!(run_call[mount + 1], mount_word(&real));

    // A remote daemon: /var/run/docker.sock is a path on the daemon host; this machine's
    // link says nothing about it.
    let result = in_namespace(
        Stub::new()
            .env("DOCKER_HOST", "tcp://10.0.0.5:2376")
            .env("NVFL_DOCKER_SOCK_GID", "987"),
    );
    assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
    assert!(
        result
            .stdout
            .starts_with("Using Docker socket on daemon host: /var/run/docker.sock\n"),
        "{}",
        result.stdout
    );
    let run_call = result.run_call();
    let mount = run_call.iter().position(|a| a == "--mount").expect("--mount");
    assert_eq!(run_call[mount + 1], mount_word("/var/run/docker.sock"));
}
