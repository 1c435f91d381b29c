//! The command line itself: --schema, -v, --version, usage errors, the output lock,
//! and the batch progress bar on a terminal.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flare_deploy_tests::harness::{binary, run_in};
use flare_deploy_tests::json::names;
use flare_deploy_tests::{flare_deploy, Project, Snapshot};
use serde_json::Value;

const CONFIG: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";

#[test]
fn prepare_schema_is_printed_wherever_the_flag_stands() {
    for args in [
        vec!["prepare", "--schema"],
        vec!["prepare", "./no-such-kit", "--format", "json", "--schema"],
        vec!["--format", "json", "prepare", "--schema", "--output", "x"],
    ] {
        let run = flare_deploy(&args);
        run.assert_ok();
        assert!(
            run.stdout.starts_with("{\n  \"schema_version\": \"1\",\n"),
            "{args:?}: {}",
            run.stdout
        );
        let schema: Value = serde_json::from_str(&run.stdout).expect("schema JSON");
        assert_eq!(schema["command"], "flare-deploy prepare");
        let names = names(&schema["args"]);
        // The reference's entries first (tests/tests/cli_packaging.rs checks the rest).
        assert_eq!(
            names[..6],
            ["kit", "--kit", "--output", "--config", "--nvflare-version", "--schema"]
        );
        let keys: Vec<&str> = schema["args"][0]
            .as_object()
            .expect("arg")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["name", "type", "required", "description", "default", "nargs"]);
        assert_eq!(schema["args"][2]["type"], "path");
        assert_eq!(schema["args"][5]["type"], "boolean");
        assert_eq!(schema["examples"].as_array().map(Vec::len), Some(3));
    }
}

#[test]
fn verbose_logs_go_to_stderr_and_leave_the_result_alone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let kit = Project::new("p").client("site-1").build(tmp.path());
    kit.write_config(CONFIG);
    let quiet = flare_deploy([
        "prepare".as_ref(),
        kit.dir.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    quiet.assert_ok();
    let loud = flare_deploy([
        "-v".as_ref(),
        "prepare".as_ref(),
        kit.dir.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    loud.assert_ok();
    assert_eq!(loud.stdout, quiet.stdout, "-v does not change stdout");
    for line in [
        "resolved inputs",
        "config valid",
        "kit valid",
        "kit copied to staging",
        "output replaced",
    ] {
        assert!(
            loud.stderr.contains(line),
            "missing debug line {line:?} in:\n{}",
            loud.stderr
        );
        assert!(!quiet.stderr.contains(line), "debug line without -v: {}", quiet.stderr);
    }
}

#[test]
fn version_help_and_usage_errors() {
    let version = flare_deploy(["--version"]);
    version.assert_ok();
    assert_eq!(
        version.stdout,
        format!(
            "flare-deploy {} (NVFlare releases: 2.8, 2.9; default 2.9)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let help = flare_deploy(["prepare", "--help"]);
    help.assert_ok();
    for text in [
        "--all <DIR>",
        "Exit codes: 0 success, 4 invalid input",
        "runtime: docker",
    ] {
        assert!(help.stdout.contains(text), "{text:?} not in help");
    }
    for (args, detail) in [
        // Bare `flare-deploy` prints the help (exit 0, cli_packaging.rs); options alone
        // are still a usage error.
        (vec!["-v"], "subcommand required"),
        (vec!["prepare", "--bogus"], "unexpected argument '--bogus'"),
        (vec!["prepare", "--format", "jsonl", "kit"], "invalid value 'jsonl'"),
        (vec!["frobnicate"], "unrecognized subcommand 'frobnicate'"),
    ] {
        let run = flare_deploy(&args);
        assert_eq!(run.code, 4, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("Invalid arguments. \u{2014} {detail}")),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .ends_with("Hint: Run with -h for usage.\nCode: INVALID_ARGS (exit 4)\n"),
            "{}",
            run.stderr
        );
        let mut json_args = args.clone();
        json_args.extend(["--format", "json"]);
        if args.contains(&"jsonl") {
            continue;
        }
        let run = flare_deploy(&json_args);
        assert_eq!(run.code, 4);
        let envelope = run.json();
        assert_eq!(envelope["error_code"], "INVALID_ARGS");
        assert_eq!(envelope["status"], "error");
        assert_eq!(envelope["exit_code"], 4);
    }
}

#[test]
fn a_held_output_lock_makes_the_run_wait_then_fail_cleanly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let kit = Project::new("p").client("site-1").build(tmp.path());
    kit.write_config(CONFIG);
    let output = tmp.path().join("out");
    let lock = tmp.path().join(".out.lock");
    // Another holder of the lock (flock(1) holds it while its command runs).
    // -o: the lock stays with flock itself, so killing it releases the lock.
    let mut holder = Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .args(["sleep", "30"])
        .stdout(Stdio::null())
        .spawn()
        .expect("flock");
    // Wait until the lock is held (not only created): `flock -n` then fails to take it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = || {
        lock.exists()
            && Command::new("flock")
                .arg("-n")
                .arg(&lock)
                .arg("true")
                .status()
                .is_ok_and(|s| s.code() == Some(1))
    };
    while !held() {
        assert!(Instant::now() < deadline, "flock did not take the lock within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = Snapshot::take(&kit.dir, &[]);
    let started = Instant::now();
    let run = run_in(
        None,
        [
            "prepare".as_ref(),
            kit.dir.as_os_str(),
            "--output".as_ref(),
            output.as_os_str(),
        ],
        &[("FLARE_DEPLOY_LOCK_TIMEOUT", "1")],
    );
    let waited = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    run.assert_error_code(
        "OUTPUT_LOCKED",
        &format!("Another flare-deploy run is preparing {}", output.display()),
    );
    // The wait is the point: with FLARE_DEPLOY_LOCK_TIMEOUT=1 the run must not give up
    // before about a second. A lower bound only: a loaded machine makes it longer.
    assert!(
        waited >= Duration::from_millis(900),
        "it waited {waited:?} before giving up"
    );
    assert!(!output.exists(), "no output while locked");
    Snapshot::take(&kit.dir, &[]).assert_same_as(&before, "input kit");
    // With the holder gone the same run succeeds and leaves no lock or staging behind.
    flare_deploy([
        "prepare".as_ref(),
        kit.dir.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ])
    .assert_ok();
    let leftovers: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("read")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".out."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn batch_shows_a_progress_bar_on_a_terminal_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let prod = tmp.path().join("prod_00");
    std::fs::create_dir(&prod).expect("mkdir");
    let project = Project::new("p");
    for i in 1..=4 {
        project.client(&format!("site-{i}")).build(&prod).write_config(CONFIG);
    }
    let command = format!(
        "{} prepare --nvflare-version 2.8 --all {}",
        binary().display(),
        prod.display()
    );
    // script(1) gives the command a pseudo-terminal.
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stdout);
    // indicatif's bar (drawn on stderr, cleared before the summary): count, rate, ETA.
    assert!(
        text.contains("/4 kits") && text.contains("/s  ETA "),
        "no progress bar on a terminal:\n{text}"
    );
    assert!(text.contains("4 prepared, 0 failed, 0 skipped"), "{text}");
    let piped = flare_deploy(["prepare".as_ref(), "--all".as_ref(), prod.as_os_str()]);
    piped.assert_ok();
    for stream in [&piped.stdout, &piped.stderr] {
        assert!(!stream.contains('\r') && !stream.contains("kits  "), "{stream}");
    }
}
