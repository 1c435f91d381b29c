//! Runs the generated `start_docker.sh` under bash with a stub `docker` first on PATH
//! that records every invocation's argv, and checks the exact commands, also for
//! hostile site names, organisations, images and networks.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;

use flare_deploy_tests::stub_docker::run_script;
use flare_deploy_tests::{flare_deploy, Project};
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

/// Prepares the kit for `case`, runs its script and checks every docker invocation.
fn check_case(case: &Case) {
    let tmp = tempfile::tempdir().expect("tmp");
    let marker = tmp.path().join("INJECTED");
    let subst = |s: &str| s.replace("MARKER", &marker.display().to_string());
    let (name, org, image, network) = (
        subst(case.name),
        subst(case.org),
        subst(case.image),
        subst(case.network),
    );
    let project = Project::new("example_project");
    let kit = match case.role {
        "server" => project
            .server(&name)
            .dir_name("server-kit")
            .org(Some(&org))
            .build(tmp.path()),
        _ => project
            .client(&name)
            .dir_name("client-kit")
            .fqsn(json!(name))
            .org(Some(&org))
            .build(tmp.path()),
    };
    let config = tmp.path().join("docker.yaml");
    let yaml =
        serde_yaml::to_string(&json!({"runtime": "docker", "parent": {"docker_image": image, "network": network}}))
            .expect("yaml");
    std::fs::write(&config, yaml).expect("config");
    let output = tmp.path().join("out dir").join("prepared");
    let run = flare_deploy([
        "prepare".as_ref(),
        kit.dir.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ]);
    run.assert_ok();
    let script = output.join("startup/start_docker.sh");
    let mode = std::fs::metadata(&script).expect("script").permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "script is executable");

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
    assert_eq!(result.calls.len(), 4, "calls: {:?}", result.calls);
    assert_eq!(result.calls[0], vec!["info".to_string()]);
    assert_eq!(
        result.calls[1],
        vec!["network".to_string(), "inspect".into(), network.clone()]
    );
    assert_eq!(
        result.calls[2],
        vec!["network".to_string(), "create".into(), network.clone()]
    );

    let run_call = &result.calls[3];
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
    expected.extend([
        "--rm".into(),
        image.clone(),
        "/usr/local/bin/python3".into(),
        "-u".into(),
        "-m".into(),
    ]);
    if case.role == "server" {
        expected.extend([
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
        expected.extend([
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

#[test]
fn hostile_client_values_are_taken_literally() {
    for (name, org, image, network) in [
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
    ] {
        check_case(&Case {
            role: "client",
            name: Box::leak(name.to_string().into_boxed_str()),
            org: Box::leak(org.to_string().into_boxed_str()),
            image: Box::leak(image.to_string().into_boxed_str()),
            network: Box::leak(network.to_string().into_boxed_str()),
        });
    }
}

#[test]
fn hostile_server_name_is_taken_literally() {
    check_case(&Case {
        role: "server",
        name: "srv `touch MARKER` $(touch MARKER) 'q'",
        org: "nvidia; touch MARKER",
        image: "img",
        network: "n",
    });
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
