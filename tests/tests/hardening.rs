//! Hardening (issue 6): kills at random moments, concurrent runs, permissions, hostile
//! values through shellcheck and YAML/JSON round trips, and resource bombs.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flare_deploy_tests::harness::binary;
use flare_deploy_tests::kitgen::{read_json, write};
use flare_deploy_tests::stub_docker::run_script;
use flare_deploy_tests::{flare_deploy, tools, Project, Snapshot};
use serde_json::json;

/// Relative path -> (mode, content or link target) of a tree; no timestamps.
type Tree = BTreeMap<PathBuf, (u32, Vec<u8>)>;

fn tree(root: &Path) -> Tree {
    let mut out = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let rel = path.strip_prefix(root).expect("under root").to_path_buf();
            let mode = meta.permissions().mode();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("link");
                out.insert(rel, (mode, target.to_string_lossy().as_bytes().to_vec()));
            } else if meta.is_dir() {
                out.insert(rel, (mode, Vec::new()));
                stack.push(path);
            } else {
                out.insert(rel, (mode, std::fs::read(&path).expect("read")));
            }
        }
    }
    out
}

fn leftovers(parent: &Path, name: &str) -> Vec<String> {
    std::fs::read_dir(parent)
        .expect("read parent")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!(".{name}.")))
        .collect()
}

/// A client kit with a `custom/` tree large enough that copying it takes a while.
fn big_kit(root: &Path, files: usize) -> PathBuf {
    let kit = Project::new("proj").client("site-1").build(root);
    for i in 0..files {
        let dir = kit.dir.join(format!("custom/pkg{:02}", i % 40));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let body = format!("# module {i}\n{}\n", "x = 1\n".repeat(600));
        std::fs::write(dir.join(format!("mod{i:05}.py")), body).expect("write");
    }
    kit.dir
}

/// `flare-deploy prepare KIT --config CONFIG --output OUTPUT`.
fn prepare_into(kit: &Path, config: &Path, output: &Path) -> flare_deploy_tests::Run {
    flare_deploy([
        "prepare".as_ref(),
        "--nvflare-version".as_ref(),
        "2.8".as_ref(),
        kit.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ])
}

fn config(root: &Path, name: &str, network: &str) -> PathBuf {
    let path = root.join(name);
    std::fs::write(
        &path,
        format!("runtime: docker\nparent:\n  docker_image: img\n  network: {network}\n"),
    )
    .expect("config");
    path
}

#[test]
fn killed_at_any_moment_the_output_is_the_old_or_the_new_kit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let kit = big_kit(root, 3000);
    let (config_a, config_b) = (config(root, "a.yaml", "net-a"), config(root, "b.yaml", "net-b"));
    let output = root.join("out").join("site-1");
    // The two complete outputs the invariant allows, made at other paths first.
    let mut expected = Vec::new();
    for (cfg, name) in [(&config_a, "full-a"), (&config_b, "full-b")] {
        let full = root.join(name);
        prepare_into(&kit, cfg, &full).assert_ok();
        expected.push(tree(&full));
    }
    assert_ne!(expected[0], expected[1]);
    prepare_into(&kit, &config_a, &output).assert_ok();
    let kit_before = Snapshot::take(&kit, &[]);

    // How long one prepare takes, to spread the kills over its whole run.
    let started = Instant::now();
    prepare_into(&kit, &config_b, &output).assert_ok();
    let full_run = started.elapsed().max(Duration::from_millis(5));

    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut killed, mut finished) = (0, 0);
    for trial in 0..120 {
        let cfg = if trial % 2 == 0 { &config_a } else { &config_b };
        let mut child = Command::new(binary())
            .args([
                "prepare".as_ref(),
                "--nvflare-version".as_ref(),
                "2.8".as_ref(),
                kit.as_os_str(),
                "--config".as_ref(),
                cfg.as_os_str(),
                "--output".as_ref(),
                output.as_os_str(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let delay = full_run.mul_f64((next() % 1200) as f64 / 1000.0);
        std::thread::sleep(delay);
        match child.try_wait().expect("try_wait") {
            Some(_) => finished += 1,
            None => {
                child.kill().expect("kill");
                killed += 1;
            }
        }
        child.wait().expect("wait");
        let now = tree(&output);
        assert!(
            now == expected[0] || now == expected[1],
            "trial {trial}: after a kill at {delay:?} the output is neither the old nor the new kit"
        );
    }
    assert!(
        killed >= 40,
        "only {killed} of 120 runs were killed mid-way ({finished} finished)"
    );
    // The next run recovers: it succeeds and leaves no staging directory or lock.
    prepare_into(&kit, &config_a, &output).assert_ok();
    assert_eq!(tree(&output), expected[0]);
    assert!(
        leftovers(&root.join("out"), "site-1").is_empty(),
        "{:?}",
        leftovers(&root.join("out"), "site-1")
    );
    Snapshot::take(&kit, &[]).assert_same_as(&kit_before, "input kit");
}

#[test]
fn concurrent_runs_on_one_output_do_not_mix() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let kit = big_kit(root, 800);
    let configs: Vec<PathBuf> = (0..4)
        .map(|i| config(root, &format!("c{i}.yaml"), &format!("net-{i}")))
        .collect();
    let mut expected = Vec::new();
    for (i, cfg) in configs.iter().enumerate() {
        let full = root.join(format!("full-{i}"));
        prepare_into(&kit, cfg, &full).assert_ok();
        expected.push(tree(&full));
    }
    let output = root.join("shared-out");
    for _round in 0..3 {
        let children: Vec<_> = configs
            .iter()
            .map(|cfg| {
                Command::new(binary())
                    .args([
                        "prepare".as_ref(),
                        "--nvflare-version".as_ref(),
                        "2.8".as_ref(),
                        kit.as_os_str(),
                        "--config".as_ref(),
                        cfg.as_os_str(),
                        "--output".as_ref(),
                        output.as_os_str(),
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "a concurrent run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let now = tree(&output);
        assert!(expected.contains(&now), "the output mixes several runs");
        assert!(
            leftovers(root, "shared-out").is_empty(),
            "{:?}",
            leftovers(root, "shared-out")
        );
    }
}

#[test]
fn modes_are_kept_and_created_directories_are_not_world_writable() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let kit = Project::new("proj").client("site-1").build(root);
    std::fs::set_permissions(&kit.dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::create_dir(kit.path("custom")).expect("mkdir");
    std::fs::set_permissions(kit.path("custom"), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    write(&kit.path("custom/secret.txt"), "s\n", 0o400);
    write(&kit.path("custom/tool.sh"), "#!/bin/sh\n", 0o750);
    let cfg = config(root, "c.yaml", "n");
    let output = root.join("deep/new/parents/out");
    let run = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(binary())
        .args([
            "prepare".as_ref(),
            "--nvflare-version".as_ref(),
            "2.8".as_ref(),
            kit.dir.as_os_str(),
            "--config".as_ref(),
            cfg.as_os_str(),
            "--output".as_ref(),
            output.as_os_str(),
        ])
        .output()
        .expect("run");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode(&output.join("startup/client.key")), 0o600);
    assert_eq!(mode(&output.join("custom/secret.txt")), 0o400);
    assert_eq!(mode(&output.join("custom/tool.sh")), 0o750);
    assert_eq!(mode(&output.join("startup/client.crt")), 0o644);
    let script = mode(&output.join("startup/start_docker.sh"));
    assert_eq!(script & 0o100, 0o100, "script executable by its owner");
    for dir in [
        output.clone(),
        output.join("custom"),
        root.join("deep"),
        root.join("deep/new"),
        root.join("deep/new/parents"),
    ] {
        assert_eq!(mode(&dir) & 0o002, 0, "{} is world-writable", dir.display());
    }
}

/// Hostile site names, organisations, images and networks. `MARKER` stands for a path in
/// the case's temporary directory: a payload that runs writes that file.
const HOSTILE: [(&str, &str, &str, &str); 6] = [
    (
        "site $(touch MARKER)",
        "org`touch MARKER`",
        "img\"; touch MARKER; echo \"",
        "net$(touch MARKER)",
    ),
    ("it's \"quoted\" \\ back", "O'Brien & Co", "img with space", "net'work"),
    ("line1\nline2", "org\nnext", "img$HOME", "net;id"),
    ("-leading-dash", "--org", "-img", "-net"),
    ("Hôpital Ünï 医院 \u{1F600}", "Société Générale", "img:ü", "réseau"),
    ("${PATH}`id`$'\\x41'", "$(id)", "${IFS}x", "!!*?[a]"),
];

#[test]
fn hostile_values_pass_shellcheck_and_round_trip() {
    let shellcheck = tools::require("shellcheck");
    for values in HOSTILE {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let marker = root.join("INJECTED");
        let subst = |s: &str| s.replace("MARKER", &marker.display().to_string());
        let (name, org, image, network) = (subst(values.0), subst(values.1), subst(values.2), subst(values.3));
        let (name, org, image, network) = (name.as_str(), org.as_str(), image.as_str(), network.as_str());
        // Control: each payload, pasted into a double-quoted shell assignment as a naive
        // script generator would write it, does write the marker; so its absence below
        // means that nothing ran.
        for value in [name, org, image, network]
            .into_iter()
            .filter(|v| v.contains("INJECTED"))
        {
            Command::new("bash")
                .arg("-c")
                .arg(format!("value=\"{value}\""))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("bash");
            assert!(marker.exists(), "the payload {value:?} does not write the marker");
            std::fs::remove_file(&marker).expect("remove marker");
        }
        let project = Project::new("proj");
        let kit = project
            .client(name)
            .dir_name("kit")
            .fqsn(json!(name))
            .org(Some(org))
            .build(root);
        let env = json!({"QUOTE": name, "ORG": org, "EMPTY": "", "NL": "a\nb"});
        let docker_cfg = root.join("docker.yaml");
        let yaml = serde_yaml::to_string(&json!({
            "runtime": "docker",
            "parent": {"docker_image": image, "network": network},
            "job_launcher": {"default_job_env": env, "default_python_path": image}
        }))
        .expect("yaml");
        std::fs::write(&docker_cfg, yaml).expect("config");
        let out = root.join("docker-out");
        prepare_into(&kit.dir, &docker_cfg, &out).assert_ok();
        // JSON round trip: the launcher args hold exactly the input values.
        let resources = read_json(&out.join("local/resources.json.default"));
        let launcher = resources["components"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == "docker_launcher"))
            .expect("launcher");
        assert_eq!(launcher["args"]["network"], json!(network));
        assert_eq!(launcher["args"]["default_python_path"], json!(image));
        assert_eq!(launcher["args"]["default_job_env"], env);
        // The script itself, run with a stub docker: the values arrive as whole arguments
        // and no payload runs.
        let script = out.join("startup/start_docker.sh");
        let ran = run_script(&script, &[]);
        assert_eq!(ran.status, 0, "script for {name:?} failed:\n{}", ran.stderr);
        assert!(!marker.exists(), "an injected command ran for {name:?}");
        let call = ran.run_call();
        assert!(call.iter().any(|a| a == image), "image {image:?} in {call:?}");
        assert!(
            call.windows(2).any(|w| w[0] == "--network" && w[1] == network),
            "network {network:?} in {call:?}"
        );
        if let Some(shellcheck) = &shellcheck {
            let check = Command::new(shellcheck).arg(&script).output().expect("shellcheck");
            assert!(
                check.status.success() && check.stdout.is_empty(),
                "shellcheck on the script for {name:?}:\n{}",
                String::from_utf8_lossy(&check.stdout)
            );
        }

        // YAML round trip: values.yaml holds exactly the input values.
        let k8s_cfg = root.join("k8s.yaml");
        let yaml = serde_yaml::to_string(&json!({
            "runtime": "k8s",
            "parent": {"docker_image": image, "python_path": image, "workspace_pvc": name},
        }))
        .expect("yaml");
        std::fs::write(&k8s_cfg, yaml).expect("config");
        let out = root.join("k8s-out");
        prepare_into(&kit.dir, &k8s_cfg, &out).assert_ok();
        let values: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(out.join("helm_chart/values.yaml")).expect("values"))
                .expect("values.yaml parses");
        assert_eq!(values["name"], json!(name));
        assert_eq!(values["siteName"], json!(name));
        assert_eq!(values["command"], json!([image]));
        assert_eq!(values["persistence"]["workspace"]["claimName"], json!(name));
        let args = values["args"].as_array().expect("args");
        assert_eq!(args.last(), Some(&json!(format!("org={org}"))));
        let chart: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(out.join("helm_chart/Chart.yaml")).expect("chart"))
                .expect("Chart.yaml parses");
        assert!(chart["description"].as_str().expect("description").ends_with(name));
        assert!(!marker.exists(), "an injected command ran for {name:?}");
    }
}

/// Refusing a bomb must be fast: it is refused before it is expanded (the alias bomb
/// expanded is 9^12 nodes). The bound is that point, generous for a loaded 2-core
/// machine; a refusal takes well under a second.
const BOMB_BOUND: Duration = Duration::from_secs(20);

/// Runs prepare with a 1 GiB address-space limit and returns (exit code, stderr, time).
fn bounded_run(kit: &Path, cfg: &Path) -> (i32, String, Duration) {
    let started = Instant::now();
    let out = Command::new("bash")
        .arg("-c")
        .arg("ulimit -v 1048576; exec \"$0\" \"$@\"")
        .arg(binary())
        .args([
            "prepare".as_ref(),
            "--nvflare-version".as_ref(),
            "2.8".as_ref(),
            kit.as_os_str(),
            "--config".as_ref(),
            cfg.as_os_str(),
            "--output".as_ref(),
            kit.parent().expect("parent").join("bomb-out").as_os_str(),
        ])
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn resource_bombs_fail_fast_with_bounded_memory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let kit = Project::new("proj").client("site-1").build(root);
    let mut alias = String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 9].join(",");
        alias.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let base = "runtime: docker\nparent: {docker_image: x}\n";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alias bomb",
            format!("{alias}{base}job_launcher:\n  default_job_env:\n    x: *a11\n"),
            "INVALID_CONFIG",
        ),
        (
            "deep flow nesting",
            format!(
                "{base}job_launcher:\n  default_job_env:\n    x: {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            "INVALID_CONFIG",
        ),
        (
            "deep block nesting",
            {
                let mut text = format!("{base}job_launcher:\n  default_job_env:\n");
                for depth in 0..3000 {
                    text.push_str(&format!("{}k{depth}:\n", " ".repeat(4 + depth)));
                }
                text
            },
            "INVALID_CONFIG",
        ),
        (
            "multi-megabyte value",
            format!(
                "runtime: docker\nparent: {{docker_image: \"{}\"}}\n",
                "x".repeat(3 << 20)
            ),
            "INVALID_CONFIG",
        ),
    ];
    for (label, text, code) in cases {
        let cfg = root.join("bomb.yaml");
        std::fs::write(&cfg, text).expect("config");
        let (status, stderr, took) = bounded_run(&kit.dir, &cfg);
        assert_eq!(status, 4, "{label}: {stderr}");
        assert!(stderr.contains(&format!("Code: {code}")), "{label}: {stderr}");
        assert!(took < BOMB_BOUND, "{label} took {took:?}");
    }
    // Kit files: deeply nested and huge JSON.
    let cfg = root.join("ok.yaml");
    std::fs::write(&cfg, base).expect("config");
    let resources = kit.path("local/resources.json.default");
    let original = std::fs::read(&resources).expect("resources");
    for (label, text) in [
        ("deep JSON", format!("{}{}", "[".repeat(200_000), "]".repeat(200_000))),
        ("huge JSON", format!("{{\"pad\": \"{}\"}}", "x".repeat(17 << 20))),
    ] {
        std::fs::write(&resources, text).expect("write");
        let (status, stderr, took) = bounded_run(&kit.dir, &cfg);
        assert_eq!(status, 4, "{label}: {stderr}");
        assert!(stderr.contains("Code: INVALID_KIT"), "{label}: {stderr}");
        assert!(took < BOMB_BOUND, "{label} took {took:?}");
    }
    std::fs::write(&resources, original).expect("restore");
}
