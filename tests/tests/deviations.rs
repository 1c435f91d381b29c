//! One test per entry of docs/deviations.md that no other suite pinned (issue 16): each
//! runs the built binary (and, for the scripts, the generated `start_docker.sh` under the
//! stub `docker` of tests/src/stub_docker.rs, the only stand-in: no Docker daemon is
//! involved) and checks what the entry claims. Expected values are literals: container
//! names carry the first 8 hex digits of `printf %s NAME | sha256sum`, computed with
//! coreutils, not with the code under test; Python's `json`/`yaml` are the oracles for
//! float formatting and YAML 1.1 reading.

use std::ffi::OsStr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use flare_deploy_tests::fsutil::{os, read, tempdir, write_file};
use flare_deploy_tests::harness::{binary, prepare_argv, run_exact, run_program};
use flare_deploy_tests::kitgen::{provisioned_server_resources, read_json};
use flare_deploy_tests::stub_docker::{command, ScriptRun, Stub};
use flare_deploy_tests::{tools, Kit, Project, Run, Snapshot};
use serde_json::{json, Value};

const DOCKER: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";

/// `prepare <kit> --config <config> --output <output> --nvflare-version <release>`, killed
/// after 60 s by coreutils `timeout` (exit 124), so that a hang fails the test.
fn prepare(kit: &Path, config: &Path, output: &Path, release: &str) -> Run {
    let mut argv = os(&[&"60", &binary()]);
    argv.extend(prepare_argv(kit, config, output));
    argv.extend(os(&[&"--nvflare-version", &release]));
    let run = run_program(Path::new("timeout"), None, &argv, &[]);
    assert_ne!(run.code, 124, "prepare hung (killed after 60 s): {}", run.stderr);
    run
}

fn config(dir: &Path, text: &str) -> PathBuf {
    write_file(&dir.join("runtime.yaml"), text)
}

/// Asserts a refusal: exit 4, the code, the exact message and hint, no output.
#[track_caller]
fn assert_refused(run: &Run, code: &str, message: &str, hint: &str, output: &Path) {
    run.assert_txt_error(code, message, hint);
    assert!(!output.exists(), "an output was written: {}", output.display());
}

// ---- K5 ----------------------------------------------------------------------------

#[test]
fn k5_fifo_socket_device_refused() {
    let (_tmp, root) = tempdir();
    let project = Project::new("p");
    let cfg = config(&root, DOCKER);
    let hint = "A kit holds only regular files, directories and links inside the kit.";

    // A FIFO without a writer: opening it for reading would block forever.
    let kit = project.client("site-1").dir_name("fifo-kit").build(&root);
    let fifo = kit.path("local/pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    // The snapshot reads files, so it leaves the FIFO out; its metadata is compared apart.
    let before = Snapshot::take(&kit.dir, &["local/pipe"]);
    let fifo_before = std::fs::symlink_metadata(&fifo).expect("fifo");
    let output = root.join("out-fifo");
    let run = prepare(&kit.dir, &cfg, &output, "2.8");
    assert_refused(
        &run,
        "INVALID_KIT",
        &format!("Unsupported file type in the startup kit: {}", fifo.display()),
        hint,
        &output,
    );
    Snapshot::take(&kit.dir, &["local/pipe"]).assert_same_as(&before, "kit with a FIFO");
    let fifo_after = std::fs::symlink_metadata(&fifo).expect("fifo");
    assert!(fifo_after.file_type().is_fifo());
    assert_eq!(
        (fifo_after.mode(), fifo_after.mtime(), fifo_after.mtime_nsec()),
        (fifo_before.mode(), fifo_before.mtime(), fifo_before.mtime_nsec())
    );
    assert_no_leftovers(&root, "out-fifo");

    // A unix socket (a listener that has closed leaves its file behind).
    let kit = project.client("site-2").dir_name("socket-kit").build(&root);
    let socket = kit.path("startup/control.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind a unix socket"));
    assert!(std::fs::symlink_metadata(&socket)
        .expect("socket")
        .file_type()
        .is_socket());
    let before = Snapshot::take(&kit.dir, &[]);
    let output = root.join("out-socket");
    let run = prepare(&kit.dir, &cfg, &output, "2.9");
    assert_refused(
        &run,
        "INVALID_KIT",
        &format!("Unsupported file type in the startup kit: {}", socket.display()),
        hint,
        &output,
    );
    Snapshot::take(&kit.dir, &[]).assert_same_as(&before, "kit with a socket");

    // A link to a device outside the kit (what a kit could carry without privileges) is
    // refused as a link leaving the kit; nothing of /dev is read or copied.
    let kit = project.client("site-3").dir_name("devlink-kit").build(&root);
    let link = kit.path("local/null");
    std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
    let output = root.join("out-devlink");
    let run = prepare(&kit.dir, &cfg, &output, "2.8");
    assert_refused(
        &run,
        "INVALID_KIT",
        &format!(
            "Symlink points outside the startup kit: {} -> /dev/null",
            link.display()
        ),
        "Replace the link with the file it points to, or point it inside the kit.",
        &output,
    );

    // A device node itself (mknod needs CAP_MKNOD: root in this project's CI): the same
    // null device, 1:3, inside the kit.
    let kit = project.client("site-4").dir_name("device-kit").build(&root);
    let device = kit.path("local/null");
    let made = Command::new("mknod")
        .arg(&device)
        .args(["c", "1", "3"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        tools::missing("mknod of a character device (CAP_MKNOD, i.e. root)");
        return;
    }
    assert!(std::fs::symlink_metadata(&device)
        .expect("device")
        .file_type()
        .is_char_device());
    let before = Snapshot::take(&kit.dir, &[]);
    let output = root.join("out-device");
    let run = prepare(&kit.dir, &cfg, &output, "2.8");
    assert_refused(
        &run,
        "INVALID_KIT",
        &format!("Unsupported file type in the startup kit: {}", device.display()),
        hint,
        &output,
    );
    Snapshot::take(&kit.dir, &[]).assert_same_as(&before, "kit with a device");
}

/// No staging directory, lock or output named after `output_name` beside it.
#[track_caller]
fn assert_no_leftovers(dir: &Path, output_name: &str) {
    let prefix = format!(".{output_name}.");
    let left: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix) || n == output_name)
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

// ---- K4 ----------------------------------------------------------------------------

/// Python's `repr` of the float nearest to `literal` (the reference's own formatting of
/// floats in kit JSON).
fn python_float(literal: &str) -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import json, sys; print(json.dumps(float(sys.argv[1])))", literal])
        .output()
        .ok()
        .filter(|o| o.status.success());
    match out {
        Some(out) => Some(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        None => {
            tools::missing("python3 (the float formatting oracle)");
            None
        }
    }
}

#[test]
fn k4_nan_infinity_refused_and_big_integers_read_as_floats() {
    let (_tmp, root) = tempdir();
    let project = Project::new("p");
    let cfg = config(&root, DOCKER);
    let kit = project.server("server1").build(&root);
    let resources = kit.path("local/resources.json.default");
    let good = read(&resources);
    for bad in ["NaN", "Infinity", "-Infinity"] {
        write_file(
            &resources,
            &good.replace("\"heart_beat_timeout\": 600", &format!("\"heart_beat_timeout\": {bad}")),
        );
        assert!(read(&resources).contains(bad));
        let before = Snapshot::take(&kit.dir, &[]);
        let output = root.join("out-bad");
        let run = prepare(&kit.dir, &cfg, &output, "2.8");
        run.assert_error_code("INVALID_KIT", "Failed to parse resources.json.default: ");
        assert!(
            run.stderr.contains("\nHint: Fix the startup kit JSON.\n"),
            "{bad}: {}",
            run.stderr
        );
        assert!(!output.exists(), "{bad}: output written");
        Snapshot::take(&kit.dir, &[]).assert_same_as(&before, bad);
    }

    // Integers past 64 bits become floats; the 64-bit extremes stay integers.
    let huge = "123456789012345678901234567890";
    let mut doc = provisioned_server_resources();
    doc["servers"][0]["max_num_clients"] = json!(0);
    doc["servers"][0]["u64_max"] = json!(0);
    doc["servers"][0]["i64_min"] = json!(0);
    doc["servers"][0]["past_u64"] = json!(0);
    doc["servers"][0]["past_i64"] = json!(0);
    let text = serde_json::to_string_pretty(&doc)
        .expect("json")
        .replace("\"max_num_clients\": 0", &format!("\"max_num_clients\": {huge}"))
        .replace("\"u64_max\": 0", "\"u64_max\": 18446744073709551615")
        .replace("\"i64_min\": 0", "\"i64_min\": -9223372036854775808")
        .replace("\"past_u64\": 0", "\"past_u64\": 18446744073709551616")
        .replace("\"past_i64\": 0", "\"past_i64\": -9223372036854775809");
    write_file(&resources, &text);
    let output = root.join("out-big");
    prepare(&kit.dir, &cfg, &output, "2.8").assert_ok();
    let written = read(&output.join("local/resources.json.default"));
    let Some(huge_float) = python_float(huge) else { return };
    let (Some(past_u64), Some(past_i64)) = (
        python_float("18446744073709551616"),
        python_float("-9223372036854775809"),
    ) else {
        return;
    };
    // The oracle's values, as literals too: a changed oracle must not pass silently.
    assert_eq!(huge_float, "1.2345678901234568e+29");
    assert_eq!(past_u64, "1.8446744073709552e+19");
    assert_eq!(past_i64, "-9.223372036854776e+18");
    for line in [
        format!("\"max_num_clients\": {huge_float},"),
        "\"u64_max\": 18446744073709551615,".to_string(),
        "\"i64_min\": -9223372036854775808,".to_string(),
        format!("\"past_u64\": {past_u64},"),
        format!("\"past_i64\": {past_i64}"),
    ] {
        assert!(written.contains(&line), "no {line:?} in:\n{written}");
    }
}

// ---- C4 ----------------------------------------------------------------------------

#[test]
fn c4_yaml_1_2_reads_0777_as_a_string_never_octal() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("p").client("site-1").build(&root);
    // Unquoted scalars that YAML 1.1 (PyYAML, the reference) reads as 511, true, true,
    // 90 and a string '0o17'; flare-deploy's YAML 1.2 reader reads them as written below.
    let cfg = config(
        &root,
        "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\njob_launcher:\n  default_job_env:\n    \
         UMASK: 0777\n    DEBUG: yes\n    VERBOSE: on\n    WINDOW: 1:30\n    MODE: 0o17\n    EMPTY: ~\n",
    );
    let output = root.join("out");
    prepare(&kit.dir, &cfg, &output, "2.8").assert_ok();
    let resources = read_json(&output.join("local/resources.json.default"));
    let launcher = resources["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "docker_launcher"))
        .expect("docker_launcher");
    assert_eq!(
        launcher["args"]["default_job_env"],
        json!({"UMASK": "0777", "DEBUG": "yes", "VERBOSE": "on", "WINDOW": "1:30", "MODE": 15, "EMPTY": null}),
        "docs/deviations.md C4: yes/on/1:30 strings, 0o17 = 15, 0777 the string it looks like"
    );
    // A key that needs an integer refuses 0777 rather than guessing 511 or 777.
    let cfg = config(
        &root,
        "runtime: k8s\nparent:\n  docker_image: nvflare/nvflare:2.8.1\njob_launcher:\n  pending_timeout: 0777\n",
    );
    let output = root.join("out-k8s");
    let before = Snapshot::take(&kit.dir, &[]);
    prepare(&kit.dir, &cfg, &output, "2.8").assert_txt_error(
        "INVALID_CONFIG",
        "job_launcher.pending_timeout must be an integer.",
        "Fix the runtime config.",
    );
    assert!(!output.exists());
    assert_eq!(Snapshot::take(&kit.dir, &[]), before, "kit changed");
    // Written plainly it is the integer.
    let cfg = config(
        &root,
        "runtime: k8s\nparent:\n  docker_image: nvflare/nvflare:2.8.1\njob_launcher:\n  pending_timeout: 777\n",
    );
    prepare(&kit.dir, &cfg, &output, "2.8").assert_ok();
    let resources = read_json(&output.join("local/resources.json.default"));
    let launcher = resources["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "k8s_launcher"))
        .expect("k8s_launcher");
    assert_eq!(launcher["args"]["pending_timeout"], json!(777));
}

// ---- O7 ----------------------------------------------------------------------------

#[test]
fn o7_leftover_staging_dir_removed_by_next_run() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("p").client("site-1").build(&root);
    let cfg = config(&root, DOCKER);
    let output = root.join("out");
    let staging = root.join(".out.prepare-staging");
    // What a run killed mid-copy leaves: a partial tree, with a read-only directory.
    let marker = write_file(&staging.join("startup/half-copied.txt"), "partial\n");
    write_file(&staging.join("local/deep/x.json"), "{\n");
    std::fs::set_permissions(
        staging.join("local/deep"),
        std::os::unix::fs::PermissionsExt::from_mode(0o500),
    )
    .expect("chmod");
    // No output yet: the staging directory must not be taken for one either.
    let run = prepare(&kit.dir, &cfg, &output, "2.8");
    run.assert_ok();
    assert!(!staging.exists(), "the leftover staging directory is still there");
    assert!(!marker.exists());
    assert!(output.join("startup/start_docker.sh").is_file());
    assert!(!output.join("startup/half-copied.txt").exists());
    assert!(!output.join("local/deep").exists());
    assert_no_leftovers_but_output(&root);

    // Again with an earlier output in place: replaced, and the leftover gone.
    write_file(&staging.join("junk"), "left by a killed run\n");
    let run = prepare(&kit.dir, &cfg, &output, "2.9");
    run.assert_ok();
    assert!(!staging.exists(), "the leftover staging directory is still there");
    assert!(!output.join("junk").exists());
    assert_eq!(read_json(&output.join(".flare-deploy.json"))["nvflare_release"], "2.9");
    assert_no_leftovers_but_output(&root);
}

#[track_caller]
fn assert_no_leftovers_but_output(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".out."))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

// ---- L2 ----------------------------------------------------------------------------

#[test]
fn l2_format_human_is_txt_and_others_are_usage_errors() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("p").client("site-1").build(&root);
    let cfg = config(&root, DOCKER);
    let run_with = |format: &str, output: &Path| -> Run {
        run_exact(
            None,
            os(&[
                &"--format",
                &format,
                &"prepare",
                &kit.dir,
                &"--config",
                &cfg,
                &"--output",
                &output,
                &"--nvflare-version",
                &"2.8",
            ]),
            &[],
        )
    };
    // Success: the same `key: value` lines, the path aside.
    let txt = run_with("txt", &root.join("a"));
    txt.assert_ok();
    let human = run_with("human", &root.join("b"));
    human.assert_ok();
    assert!(txt.stdout.contains("output: "), "{}", txt.stdout);
    assert!(
        !human.stdout.trim_start().starts_with('{'),
        "human printed JSON: {}",
        human.stdout
    );
    assert_eq!(
        human.stdout.replace(&root.join("b").display().to_string(), "OUT"),
        txt.stdout.replace(&root.join("a").display().to_string(), "OUT")
    );
    // An error: byte-identical message, hint and code lines.
    let missing = root.join("no-such-kit");
    let error_with = |format: &str| {
        run_exact(
            None,
            os(&[&"prepare", &missing, &"--format", &format, &"--config", &cfg]),
            &[],
        )
    };
    let (txt, human) = (error_with("txt"), error_with("human"));
    assert_eq!(human.code, 4, "{}", human.stderr);
    assert_eq!((&human.stdout, &human.stderr), (&txt.stdout, &txt.stderr));
    assert!(human.stderr.contains("\nCode: "), "{}", human.stderr);
    // Anything else, jsonl included (the reference's streaming format), is INVALID_ARGS.
    for other in ["jsonl", "JSON", "Human", "yaml"] {
        let run = run_with(other, &root.join("c"));
        assert_eq!(run.code, 4, "--format {other:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "Invalid arguments. — invalid value '{other}' for '--format <FORMAT>'"
            )),
            "--format {other:?}: {}",
            run.stderr
        );
        assert!(run.stderr.ends_with("Code: INVALID_ARGS (exit 4)\n"), "{}", run.stderr);
        assert!(!root.join("c").exists());
    }
}

// ---- Docker start script: D2, D3, D4 -----------------------------------------------

/// A client kit named `name` prepared for Docker and `release`; the script's path.
fn docker_client(root: &Path, name: &str, network: &str, release: &str) -> PathBuf {
    let dir = root.join(format!("kit-{release}"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let kit = Project::new("p")
        .client(name)
        .dir_name("kit")
        .fqsn(json!(name))
        .build(&dir);
    let yaml = serde_yaml::to_string(&json!({
        "runtime": "docker",
        "parent": {"docker_image": "nvflare/nvflare:2.8.1", "network": network}
    }))
    .expect("yaml");
    let cfg = write_file(&dir.join("docker.yaml"), &yaml);
    let output = dir.join("out");
    prepare(&kit.dir, &cfg, &output, release).assert_ok();
    output.join("startup/start_docker.sh")
}

/// A unix socket file at `path` (a listener that has closed leaves its file behind).
fn make_socket(path: &Path) -> PathBuf {
    drop(std::os::unix::net::UnixListener::bind(path).expect("bind a unix socket"));
    path.to_path_buf()
}

/// A unix socket file at `path`, owned by group `gid`.
fn socket_with_group(path: &Path, gid: u32) -> Option<PathBuf> {
    make_socket(path);
    match std::os::unix::fs::lchown(path, None, Some(gid)) {
        Ok(()) => Some(path.to_path_buf()),
        Err(e) => {
            tools::missing(&format!("permission to chgrp a socket to {gid} ({e}; run as root)"));
            None
        }
    }
}

/// Runs `script` under the stub with a 2.9 socket (when given); asserts success.
fn run_script(script: &Path, stub: Stub, socket: Option<&Path>) -> ScriptRun {
    let stub = match socket {
        Some(s) => stub.env("NVFL_DOCKER_SOCK", &s.display().to_string()),
        None => stub,
    };
    let result = stub.run(script);
    assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
    result
}

/// The subcommands (without the 2.9 `--host` pin) of every call.
fn commands(result: &ScriptRun) -> Vec<Vec<String>> {
    result.calls.iter().map(|c| command(c).to_vec()).collect()
}

fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn d2_container_name_cleanup_format() {
    let (_tmp, root) = tempdir();
    // (site name, container name): valid names unchanged; others cleaned, with the
    // first 8 hex digits of sha256(raw name).
    let cases = [
        ("site-1", "site-1"),
        ("site_1.a", "site_1.a"),
        ("Hospital A", "Hospital-A-d86e5a54"),
        ("Hospital A/ICU: east", "Hospital-A-ICU-east-820db2ca"),
        ("a", "a-ca978112"),
        ("-x", "x-a4209624"),
        ("über.site", "ber.site-92b49bdf"),
        ("---", "nvflare-cb3f91d5"),
        (
            "Very Long Hospital Name With Spaces Everywhere In It And More Words",
            "Very-Long-Hospital-Name-With-Spaces-Everywhere-In-It-A-4a0085b4",
        ),
    ];
    for release in ["2.8", "2.9"] {
        let socket = (release == "2.9").then(|| make_socket(&root.join("docker.sock")));
        for (i, (name, container)) in cases.iter().enumerate() {
            let dir = root.join(format!("d2-{i}"));
            let script = docker_client(&dir, name, "nvflare-network", release);
            let result = run_script(&script, Stub::new().container_exists(), socket.as_deref());
            let calls = commands(&result);
            let run = calls
                .iter()
                .find(|c| c.starts_with(&argv(&["run", "--name"])))
                .unwrap_or_else(|| panic!("{name}: no docker run --name in {calls:?}"));
            assert_eq!(run[2], *container, "{release} {name:?}");
            assert!(calls.contains(&argv(&["container", "inspect", container])), "{calls:?}");
            assert!(calls.contains(&argv(&["rm", "-f", container])), "{calls:?}");
            // The site identity itself is unchanged: the raw name is what NVFlare uses.
            assert!(
                result
                    .stdout
                    .contains(&format!("Starting NVFlare client {name} with image ")),
                "{}",
                result.stdout
            );
        }
    }
}

#[test]
fn d3_existing_network_not_recreated() {
    let (_tmp, root) = tempdir();
    let socket = make_socket(&root.join("docker.sock"));
    for release in ["2.8", "2.9"] {
        let sock = (release == "2.9").then_some(socket.as_path());
        for network in ["nvflare-network", "fl.net"] {
            let script = docker_client(&root.join(format!("{release}-{network}")), "site-1", network, release);
            let created = |result: &ScriptRun| {
                commands(result).contains(&argv(&["network", "create", network]))
                    && result.stdout.contains(&format!("Created Docker network: {network}\n"))
            };
            // The exact name exists: not created.
            let result = run_script(&script, Stub::new().networks(&[network]), sock);
            assert!(!created(&result), "{release} {network}: re-created\n{:?}", result.calls);
            assert!(
                !commands(&result)
                    .iter()
                    .any(|c| c.starts_with(&argv(&["network", "create"]))),
                "{:?}",
                result.calls
            );
            // Only names a regex or prefix match would take for it (`grep -w` of
            // `network ls`): it is created.
            let lookalikes = ["nvflare-network-2", "my-nvflare-network", "flXnet", "fl.net.old"];
            let result = run_script(&script, Stub::new().networks(&lookalikes), sock);
            assert!(
                created(&result),
                "{release} {network}: taken for one of {lookalikes:?}, not created\n{:?}",
                result.calls
            );
            // Looked up by its exact name (`network inspect`), nothing else.
            assert!(
                commands(&result).contains(&argv(&["network", "inspect", network])),
                "{:?}",
                result.calls
            );
            // No network at all: created, and the parent joins it.
            let result = run_script(&script, Stub::new(), sock);
            assert!(created(&result), "{release} {network}: not created");
            let run = command(result.run_call());
            let at = run.iter().position(|a| a == "--network").expect("--network");
            assert_eq!(run[at + 1], network);
        }
    }
}

/// The words between `--user <ids>` and `--network` of the parent's `docker run`.
fn group_add_words(result: &ScriptRun) -> Vec<String> {
    let run = command(result.run_call());
    let user = run.iter().position(|a| a == "--user").expect("--user");
    let network = run.iter().position(|a| a == "--network").expect("--network");
    run[user + 2..network].to_vec()
}

#[test]
fn d4_group_add_is_an_array() {
    let (_tmp, root) = tempdir();
    // Both scripts pass the group as `"${GROUP_ADD_ARGS[@]}"`, never a plain variable.
    let script_28 = docker_client(&root.join("a"), "site-1", "nvflare-network", "2.8");
    let script_29 = docker_client(&root.join("b"), "site-1", "nvflare-network", "2.9");
    for script in [&script_28, &script_29] {
        let text = read(script);
        assert!(text.contains("    \"${GROUP_ADD_ARGS[@]}\" \\\n"), "{text}");
        assert!(!text.contains("$GROUP_ADD_ARG "), "{text}");
    }

    // 2.9: the socket named by NVFL_DOCKER_SOCK, owned by a non-root group: exactly
    // these two words.
    let Some(sock) = socket_with_group(&root.join("docker.sock"), 4242) else {
        return;
    };
    let result = run_script(&script_29, Stub::new(), Some(&sock));
    assert_eq!(group_add_words(&result), argv(&["--group-add", "4242"]));

    // 2.8 reads the fixed /var/run/docker.sock: a private mount namespace puts a socket
    // of group 4242 there, then one of group 0 (root's group adds nothing: not even an
    // empty word, which a quoted plain variable would give).
    let ok = Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        tools::missing("unshare -m (a private mount namespace; run as root)");
        return;
    }
    let var_run = root.join("var-run");
    std::fs::create_dir_all(&var_run).expect("mkdir");
    let sock = var_run.join("docker.sock");
    for (gid, expected) in [(4242, argv(&["--group-add", "4242"])), (0, Vec::new())] {
        let _ = std::fs::remove_file(&sock);
        if socket_with_group(&sock, gid).is_none() {
            return;
        }
        let wrapper = "mount --bind \"$0\" /var/run && exec \"$@\"";
        let var_run_text = var_run.display().to_string();
        let result = Stub::new()
            .wrap(&[
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                wrapper,
                &var_run_text,
            ])
            .run(&script_28);
        assert_eq!(result.status, 0, "{}{}", result.stdout, result.stderr);
        assert_eq!(group_add_words(&result), expected, "socket group {gid}");
        assert!(
            result
                .run_call()
                .contains(&"/var/run/docker.sock:/var/run/docker.sock".to_string()),
            "{:?}",
            result.run_call()
        );
    }
}

// ---- Helm chart: H6, H7 ------------------------------------------------------------

/// A k8s kit prepared for `release`: the chart directory.
fn k8s_chart(root: &Path, kit: &Kit, yaml: &str, release: &str, label: &str) -> PathBuf {
    let cfg = write_file(&root.join(format!("{label}.yaml")), yaml);
    let output = root.join(format!("out-{label}"));
    prepare(&kit.dir, &cfg, &output, release).assert_ok();
    output.join("helm_chart")
}

/// `helm template` of `chart`, read back by PyYAML (a YAML 1.1 reader, like Helm's and
/// the Kubernetes API machinery's): the rendered objects as JSON.
fn helm_template_yaml11(helm: &Path, chart: &Path, release: &str) -> Option<Vec<Value>> {
    let rendered = tools::run_ok(
        helm,
        &[
            OsStr::new("template"),
            OsStr::new(release),
            chart.as_os_str(),
            OsStr::new("--namespace"),
            OsStr::new("fl"),
        ],
    );
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d is not None]))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(rendered.as_bytes())?;
            child.wait_with_output()
        });
    match out {
        Ok(out) if out.status.success() => Some(serde_json::from_slice(&out.stdout).expect("objects")),
        _ => {
            tools::missing("python3 with PyYAML (the YAML 1.1 reader)");
            None
        }
    }
}

fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {objects:?}"))
}

#[test]
fn h6_yaml_1_1_lookalikes_render_as_strings() {
    let (_tmp, root) = tempdir();
    let names = ["yes", "on", "0777", "1:30", "~"];
    let mut charts = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let kit = Project::new("p")
            .client(name)
            .dir_name(&format!("kit-{i}"))
            .fqsn(json!(name))
            .org(Some(name))
            .build(&root);
        // The tag too: `0777` and `yes` are valid image tags.
        let tag = if *name == "yes" || *name == "0777" {
            name
        } else {
            "2.8.1"
        };
        let yaml = format!("runtime: k8s\nparent:\n  docker_image: 'nvflare/nvflare:{tag}'\n");
        for release in ["2.8", "2.9"] {
            let chart = k8s_chart(&root, &kit, &yaml, release, &format!("{i}-{release}"));
            // Tool-free: the values file quotes each of them.
            let values = read(&chart.join("values.yaml"));
            assert!(values.contains(&format!("name: \"{name}\"\n")), "{name}: {values}");
            if tag == *name {
                assert!(values.contains(&format!("tag: \"{name}\"\n")), "{name}: {values}");
            }
            charts.push((name, tag, release, chart));
        }
    }
    let Some(helm) = tools::require("helm") else { return };
    for (name, tag, release, chart) in charts {
        let Some(objects) = helm_template_yaml11(&helm, &chart, "site") else {
            return;
        };
        let deployment = object(&objects, "Deployment");
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["image"],
            json!(format!("nvflare/nvflare:{tag}")),
            "{release} {name}"
        );
        let args = container["args"].as_array().expect("args");
        assert!(
            args.contains(&json!(format!("uid={name}"))),
            "{release} {name}: {args:?}"
        );
        // Every name in the rendered objects is a string.
        for object in &objects {
            assert!(object["metadata"]["name"].is_string(), "{release} {name}: {object}");
        }
        assert!(container["name"].is_string(), "{release} {name}: {container}");
    }
}

#[test]
fn h7_named_container_ports() {
    let (_tmp, root) = tempdir();
    let kit = Project::new("p")
        .server("server1")
        .fed_port(9002)
        .admin_port(Some(json!(9003)))
        .build(&root);
    let yaml = "runtime: k8s\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n  parent_port: 9104\n";
    let expected = json!([
        {"name": "fl-port", "containerPort": 9002, "protocol": "TCP"},
        {"name": "admin-port", "containerPort": 9003, "protocol": "TCP"},
        {"name": "parent-port", "containerPort": 9104, "protocol": "TCP"}
    ]);
    let mut charts = Vec::new();
    for release in ["2.8", "2.9"] {
        let chart = k8s_chart(&root, &kit, yaml, release, release);
        // Tool-free: the Deployment template names the three ports.
        let template = read(&chart.join("templates/server-deployment.yaml"));
        for port in ["fl-port", "admin-port", "parent-port"] {
            assert!(template.contains(&format!("- name: {port}\n")), "{release}: {template}");
        }
        charts.push((release, chart));
    }
    let Some(helm) = tools::require("helm") else { return };
    for (release, chart) in charts {
        let Some(objects) = helm_template_yaml11(&helm, &chart, "server1") else {
            return;
        };
        let deployment = object(&objects, "Deployment");
        let ports = &deployment["spec"]["template"]["spec"]["containers"][0]["ports"];
        assert_eq!(ports, &expected, "{release}");
        // Each Service port reaches one of the named container ports.
        let service = objects.iter().find(|o| o["kind"] == "Service").expect("Service");
        let service_ports = service["spec"]["ports"].as_array().expect("ports");
        assert_eq!(service_ports.len(), 3, "{release}: {service}");
        for port in service_ports {
            let target = &port["targetPort"];
            assert!(
                expected
                    .as_array()
                    .expect("list")
                    .iter()
                    .any(|p| &p["containerPort"] == target || &p["name"] == target),
                "{release}: Service port {port} reaches no container port"
            );
        }
    }
}
