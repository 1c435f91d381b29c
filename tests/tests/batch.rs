//! `flare-deploy prepare --all DIR`: a whole federation (server, many clients, an admin)
//! prepared in one run, with a summary table (txt) or one envelope listing every kit
//! (json); one kit's failure does not stop the others, admin kits are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};

use flare_deploy_tests::fsutil::{read, tempdir, write_file};
use flare_deploy_tests::kitgen::{
    self, CLIENT_PROCESS_LAUNCHER, DOCKER_CLIENT_LAUNCHER, DOCKER_SERVER_LAUNCHER, SERVER_PROCESS_LAUNCHER,
};
use flare_deploy_tests::{flare_deploy, Project, Run, Snapshot};
use serde_json::{json, Value};

const DOCKER: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";
const K8S: &str = "runtime: k8s\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";
const K8S_CLIENT_LAUNCHER: &str = "nvflare.app_opt.job_launcher.k8s_launcher.ClientK8sJobLauncher";
const K8S_SERVER_LAUNCHER: &str = "nvflare.app_opt.job_launcher.k8s_launcher.ServerK8sJobLauncher";

const SERVER: &str = "server1";
const ADMIN: &str = "admin@x.com";
const BROKEN: &str = "site-broken";
const BROKEN_MESSAGE: &str = "comm_config.json internal must be a mapping.";
const CLIENTS: usize = 50;

// ---------------------------------------------------------------------------------------
// helpers

fn argv(list: &[&dyn AsRef<OsStr>]) -> Vec<OsString> {
    list.iter().map(|a| a.as_ref().to_os_string()).collect()
}

/// Sorted entry names of a directory.
fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Every path under `dir` (relative) with its content; `None` for directories. Modes and
/// mtimes are ignored.
fn tree_contents(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).expect("stat");
            if meta.is_dir() {
                out.insert(format!("{rel}/"), None);
                walk(root, &path, out);
            } else {
                out.insert(rel, Some(fs::read(&path).unwrap_or_default()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// What a kit of the federation is and what the batch should do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Prepared with this runtime.
    Ok(&'static str),
    Skipped,
    /// Failed with this error code.
    Failed(&'static str),
}

#[derive(Debug, Clone)]
struct KitSpec {
    name: String,
    role: &'static str,
    expect: Expect,
}

/// A federation folder (`<root>/prod_00`) and what is in it.
struct Federation {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
    kits: Vec<KitSpec>,
}

impl Federation {
    /// Kits sorted by name, the order of the summary.
    fn sorted(&self) -> Vec<KitSpec> {
        let mut kits = self.kits.clone();
        kits.sort_by(|a, b| a.name.cmp(&b.name));
        kits
    }

    fn kit(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn ok_kits(&self) -> Vec<KitSpec> {
        self.sorted()
            .into_iter()
            .filter(|k| matches!(k.expect, Expect::Ok(_)))
            .collect()
    }

    /// A snapshot of the whole folder except the kits' `prepared/`.
    fn snapshot(&self) -> Snapshot {
        let excludes: Vec<String> = self.kits.iter().map(|k| format!("{}/prepared", k.name)).collect();
        let excludes: Vec<&str> = excludes.iter().map(String::as_str).collect();
        Snapshot::take(&self.dir, &excludes)
    }

    /// Asserts that the folder is as in `before`, except for the `prepared/` of the kits
    /// that succeeded (and their root directory's mtime, which creating it touches).
    #[track_caller]
    fn assert_inputs_unchanged(&self, before: &Snapshot) {
        let mut before = before.clone();
        let mut after = self.snapshot();
        for kit in self.ok_kits() {
            before.0.remove(Path::new(&kit.name));
            after.0.remove(Path::new(&kit.name));
        }
        after.assert_same_as(&before, "federation folder (outside the prepared/ of successful kits)");
    }
}

/// Server + `clients` clients + an admin of one project, every kit prepared with docker;
/// plus a folder without startup/ and a plain file, which are no kits.
fn federation(clients: usize) -> Federation {
    let (tmp, root) = tempdir();
    let dir = root.join("prod_00");
    fs::create_dir_all(&dir).expect("mkdir prod_00");
    let project = Project::new("p");
    let mut kits = Vec::new();
    project.server(SERVER).build(&dir);
    kits.push(KitSpec {
        name: SERVER.into(),
        role: "server",
        expect: Expect::Ok("docker"),
    });
    for i in 1..=clients {
        let name = format!("site-{i}");
        project.client(&name).build(&dir);
        kits.push(KitSpec {
            name,
            role: "client",
            expect: Expect::Ok("docker"),
        });
    }
    project.admin(ADMIN).build(&dir);
    kits.push(KitSpec {
        name: ADMIN.into(),
        role: "admin",
        expect: Expect::Skipped,
    });
    // Not kits: a folder without startup/ and a plain file.
    write_file(&dir.join("notes/local/readme.txt"), "not a kit\n");
    write_file(&dir.join("README.txt"), "the federation\n");
    Federation {
        _tmp: tmp,
        root,
        dir,
        kits,
    }
}

/// The big federation of the brief: 1 server, 50 clients, 1 admin and one broken client
/// (its comm_config.json fails only after the kit was copied to a staging directory).
fn big_federation() -> Federation {
    let mut fed = federation(CLIENTS);
    let project = Project::new("p2");
    project
        .client(BROKEN)
        .comm_config(json!({"internal": "tcp"}))
        .build(&fed.dir);
    fed.kits.push(KitSpec {
        name: BROKEN.into(),
        role: "client",
        expect: Expect::Failed("INVALID_KIT"),
    });
    fed
}

fn docker_config(fed: &Federation) -> PathBuf {
    write_file(&fed.root.join("docker.yaml"), DOCKER)
}

/// `prepare --all <dir> [extra...]`.
fn batch(dir: &Path, extra: &[&dyn AsRef<OsStr>]) -> Run {
    let mut args = argv(&[&"prepare", &"--all", &dir]);
    args.extend(extra.iter().map(|a| a.as_ref().to_os_string()));
    flare_deploy(&args)
}

#[track_caller]
fn assert_exit(run: &Run, code: i32) {
    assert_eq!(
        run.code, code,
        "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

/// The rows of the summary table, cut at the header's column offsets, and the lines after
/// the table.
fn parse_table(stdout: &str) -> (Vec<[String; 4]>, Vec<String>) {
    let mut lines = stdout.lines();
    let header = lines.next().expect("a header line");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["KIT", "ROLE", "RUNTIME", "RESULT"],
        "header: {header:?}\nstdout:\n{stdout}"
    );
    let col = |name: &str| header.find(name).unwrap_or_else(|| panic!("{name} in header"));
    let (role, runtime, result) = (col("ROLE"), col("RUNTIME"), col("RESULT"));
    let mut rows = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let cell = |from: usize, to: Option<usize>| -> String {
            let text = match to {
                Some(to) => line.get(from..to),
                None => line.get(from..),
            };
            let text = text.unwrap_or_else(|| panic!("row not aligned with the header: {line:?}\nstdout:\n{stdout}"));
            if let Some(to) = to {
                assert!(
                    text.ends_with(' '),
                    "column before offset {to} runs into the next one: {line:?}"
                );
            }
            text.trim_end().to_string()
        };
        rows.push([
            cell(0, Some(role)),
            cell(role, Some(runtime)),
            cell(runtime, Some(result)),
            cell(result, None),
        ]);
    }
    (rows, lines.map(str::to_string).collect())
}

fn expected_rows(fed: &Federation) -> Vec<[String; 4]> {
    fed.sorted()
        .into_iter()
        .map(|k| {
            let (runtime, result) = match k.expect {
                Expect::Ok(runtime) => (runtime.to_string(), "ok".to_string()),
                Expect::Skipped => ("-".to_string(), "skipped (admin kit)".to_string()),
                // The runtime is known once the kit's config loaded; the federations
                // checked with this table all use docker.yaml.
                Expect::Failed(code) => ("docker".to_string(), code.to_string()),
            };
            [k.name.clone(), k.role.to_string(), runtime, result]
        })
        .collect()
}

fn launcher_path(runtime: &str, role: &str) -> &'static str {
    match (runtime, role) {
        ("docker", "server") => DOCKER_SERVER_LAUNCHER,
        ("docker", _) => DOCKER_CLIENT_LAUNCHER,
        ("k8s", "server") => K8S_SERVER_LAUNCHER,
        ("k8s", _) => K8S_CLIENT_LAUNCHER,
        other => panic!("no launcher for {other:?}"),
    }
}

/// The prepared output of a kit: its start files, and its resources patched for the
/// runtime (the runtime's launcher in, the process launcher out).
#[track_caller]
fn assert_prepared(output: &Path, kit: &str, role: &str, runtime: &str) {
    assert!(
        output.join("startup").is_dir() && output.join("local").is_dir(),
        "{kit}: no prepared kit at {}",
        output.display()
    );
    match runtime {
        "docker" => {
            let script = read(&output.join("startup/start_docker.sh"));
            let run_line = format!("docker run --name {kit} \\");
            assert!(
                script.lines().any(|l| l.trim() == run_line),
                "{kit}: start_docker.sh does not name its container {kit}:\n{script}"
            );
        }
        "k8s" => assert!(
            output.join("helm_chart/values.yaml").is_file(),
            "{kit}: no helm chart in {}",
            output.display()
        ),
        other => panic!("unexpected runtime {other}"),
    }
    let resources = kitgen::read_json(&output.join("local/resources.json.default"));
    let components = resources["components"].as_array().expect("components list");
    let launcher_id = format!("{runtime}_launcher");
    let launcher = components
        .iter()
        .find(|c| c["id"] == launcher_id.as_str())
        .unwrap_or_else(|| panic!("{kit}: no {launcher_id} component in {components:?}"));
    assert_eq!(launcher["path"], launcher_path(runtime, role), "{kit}: launcher path");
    assert!(
        components
            .iter()
            .all(|c| c["path"] != CLIENT_PROCESS_LAUNCHER && c["path"] != SERVER_PROCESS_LAUNCHER),
        "{kit}: the process launcher is still configured: {components:?}"
    );
}

// ---------------------------------------------------------------------------------------
// the federation in txt and json

#[test]
fn txt_summary_of_a_federation_with_one_broken_kit() {
    let fed = big_federation();
    let config = docker_config(&fed);
    let before = fed.snapshot();
    let run = batch(&fed.dir, &[&"--config", &config]);
    assert_exit(&run, 4);

    // No progress bar when stdout is not a terminal.
    let total = fed.kits.len();
    assert!(!run.stdout.contains('\r'), "carriage return on stdout:\n{}", run.stdout);
    assert!(!run.stdout.contains('#'), "progress bar on stdout:\n{}", run.stdout);
    assert!(
        !run.stdout.contains(&format!("{total}/{total}")),
        "progress count on stdout:\n{}",
        run.stdout
    );

    // One row per kit, sorted by name; the folder without startup/ and the file are no kits.
    let (rows, rest) = parse_table(&run.stdout);
    assert_eq!(rows.len(), CLIENTS + 3, "stdout:\n{}", run.stdout);
    assert_eq!(rows, expected_rows(&fed), "stdout:\n{}", run.stdout);
    let kit_names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let mut sorted = kit_names.clone();
    sorted.sort();
    assert_eq!(kit_names, sorted, "rows sorted by kit name");
    assert!(!kit_names.contains(&"notes") && !kit_names.contains(&"README.txt"));

    // The counts line, then only per-kit warnings.
    let mut rest = rest.into_iter();
    assert_eq!(
        rest.next().as_deref(),
        Some(format!("{} prepared, 1 failed, 1 skipped", CLIENTS + 1).as_str()),
        "stdout:\n{}",
        run.stdout
    );
    let mut warned = BTreeSet::new();
    for line in rest {
        // Each prepared kit's next steps (tests/tests/batch_summary.rs checks them).
        if let Some((kit, _)) = line
            .split_once(": ")
            .filter(|(_, step)| step.starts_with("output: ") || step.starts_with("start_command: "))
        {
            assert!(kit_names.contains(&kit), "next step of an unknown kit: {line:?}");
            continue;
        }
        let (kit, warning) = line
            .split_once(": Warning: ")
            .unwrap_or_else(|| panic!("unexpected line after the counts: {line:?}"));
        assert!(kit_names.contains(&kit), "warning of an unknown kit: {line:?}");
        assert!(warning.contains("'resource_manager'"), "unexpected warning: {line:?}");
        warned.insert(kit.to_string());
    }
    // Every client kit has the GPU resource manager, which is replaced with a warning (the
    // broken client may report it too before it fails); the server and admin have none.
    let clients: BTreeSet<String> = (1..=CLIENTS).map(|i| format!("site-{i}")).collect();
    assert!(
        clients.is_subset(&warned),
        "clients without their resource-manager warning: {:?}",
        clients.difference(&warned).collect::<Vec<_>>()
    );
    warned.remove(BROKEN);
    assert_eq!(warned, clients, "warnings only for client kits");

    // The broken kit's message and hint on stderr, prefixed with its name.
    let stderr_lines: Vec<&str> = run.stderr.lines().collect();
    assert!(!stderr_lines.is_empty(), "no error on stderr");
    for line in &stderr_lines {
        assert!(
            line.starts_with(&format!("{BROKEN}: ")),
            "stderr line without the kit name: {line:?}\nstderr:\n{}",
            run.stderr
        );
    }
    assert_eq!(stderr_lines[0], format!("{BROKEN}: {BROKEN_MESSAGE}"));
    assert!(
        stderr_lines.iter().any(|l| l.starts_with(&format!("{BROKEN}: Hint: "))),
        "no hint on stderr:\n{}",
        run.stderr
    );

    // Outputs of the good kits, in place, one per kit and nothing beside them.
    for kit in fed.ok_kits() {
        let prepared = fed.kit(&kit.name).join("prepared");
        assert_eq!(
            names(&prepared),
            ["docker"],
            "{}: only the output in prepared/",
            kit.name
        );
        assert_prepared(&prepared.join("docker"), &kit.name, kit.role, "docker");
    }
    // The broken and the admin kit have no output and no staging leftovers.
    for kit in [BROKEN, ADMIN] {
        assert!(
            !fed.kit(kit).join("prepared").exists(),
            "{kit}: prepared/ exists: {:?}",
            names(&fed.kit(kit).join("prepared"))
        );
    }
    fed.assert_inputs_unchanged(&before);
}

#[test]
fn json_envelope_lists_every_kit() {
    let fed = big_federation();
    let config = docker_config(&fed);
    let run = batch(&fed.dir, &[&"--config", &config, &"--format", &"json"]);
    assert_exit(&run, 4);

    // Exactly one JSON document on stdout.
    let documents: Vec<Value> = serde_json::Deserializer::from_str(&run.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout));
    assert_eq!(documents.len(), 1, "stdout:\n{}", run.stdout);
    let doc = run.json();
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["exit_code"], 4);
    assert_eq!(
        doc["data"]["summary"],
        json!({"prepared": CLIENTS + 1, "failed": 1, "skipped": 1})
    );

    let kits = doc["data"]["kits"].as_array().expect("data.kits");
    let expected = fed.sorted();
    assert_eq!(
        kits.iter().map(|k| k["kit"].clone()).collect::<Vec<_>>(),
        expected.iter().map(|k| json!(k.name)).collect::<Vec<_>>(),
        "kits in name order"
    );
    for (item, spec) in kits.iter().zip(&expected) {
        let name = &spec.name;
        assert_eq!(item["role"], spec.role, "{name}: role");
        assert_eq!(item["path"], fed.kit(name).display().to_string(), "{name}: path");
        match spec.expect {
            Expect::Ok(runtime) => {
                assert_eq!(item["status"], "ok", "{name}: {item}");
                let output = fed.kit(name).join("prepared").join(runtime);
                let out = output.display().to_string();
                let result = &item["result"];
                assert_eq!(result["runtime"], runtime, "{name}: {item}");
                assert_eq!(result["role"], spec.role, "{name}: {item}");
                assert_eq!(result["name"], name.as_str(), "{name}: {item}");
                assert_eq!(result["output"], out, "{name}: {item}");
                assert_eq!(
                    result["start_script"],
                    format!("{out}/startup/start_docker.sh"),
                    "{name}: {item}"
                );
                assert_eq!(
                    result["resources"],
                    format!("{out}/local/resources.json.default"),
                    "{name}: {item}"
                );
                assert!(item.get("error_code").is_none(), "{name}: {item}");
                assert_prepared(&output, name, spec.role, runtime);
            }
            Expect::Skipped => {
                assert_eq!(item["status"], "skipped", "{name}: {item}");
                assert!(item.get("result").is_none(), "{name}: {item}");
                assert!(
                    item["reason"].as_str().is_some_and(|r| r.contains("admin")),
                    "{name}: {item}"
                );
            }
            Expect::Failed(code) => {
                assert_eq!(item["status"], "error", "{name}: {item}");
                assert_eq!(item["error_code"], code, "{name}: {item}");
                assert_eq!(item["message"], BROKEN_MESSAGE, "{name}: {item}");
                assert!(item["hint"].as_str().is_some_and(|h| !h.is_empty()), "{name}: {item}");
                assert!(item.get("result").is_none(), "{name}: {item}");
            }
        }
    }

    // `result` carries the same fields as a single prepare's `data`.
    for name in [SERVER, "site-1", "site-50"] {
        let batch_result = kits
            .iter()
            .find(|k| k["kit"] == name)
            .map(|k| k["result"].clone())
            .expect("kit in the batch");
        let single = flare_deploy(argv(&[
            &"prepare",
            &fed.kit(name),
            &"--config",
            &config,
            &"--format",
            &"json",
        ]));
        single.assert_ok();
        assert_eq!(
            batch_result,
            single.json()["data"],
            "{name}: batch result differs from a single prepare's data"
        );
    }
}

// ---------------------------------------------------------------------------------------
// output placement and per-kit configs

#[test]
fn output_root_holds_every_output_and_kits_stay_untouched() {
    let fed = federation(4);
    let config = docker_config(&fed);
    let before = Snapshot::take(&fed.dir, &[]);
    let ok: Vec<String> = fed.ok_kits().into_iter().map(|k| k.name).collect();
    // ROOT does not exist yet: the parallel workers create it (and its parents) together.
    // Several rounds, so that a race between them has more than one chance to show.
    for round in 0..10 {
        let out_root = fed.root.join(format!("deploy-{round}/a/b/docker"));
        let run = batch(
            &fed.dir,
            &[
                &"--config",
                &config,
                &"--output-root",
                &out_root,
                &"--jobs",
                &"6",
                &"--format",
                &"json",
            ],
        );
        assert_exit(&run, 0);
        let doc = run.json();
        assert_eq!(doc["status"], "ok", "round {round}");
        assert_eq!(
            doc["data"]["summary"],
            json!({"prepared": 5, "failed": 0, "skipped": 1}),
            "round {round}"
        );
        assert_eq!(
            names(&out_root),
            ok,
            "round {round}: one output per prepared kit, nothing else"
        );
        for kit in fed.ok_kits() {
            let output = out_root.join(&kit.name);
            assert_prepared(&output, &kit.name, kit.role, "docker");
            let item = doc["data"]["kits"]
                .as_array()
                .expect("kits")
                .iter()
                .find(|k| k["kit"] == kit.name.as_str())
                .cloned()
                .expect("kit listed");
            assert_eq!(item["result"]["output"], output.display().to_string());
        }
        // Nothing was written inside the federation folder, not even prepared/.
        Snapshot::take(&fed.dir, &[]).assert_same_as(&before, "federation folder");
    }
}

#[test]
fn without_config_each_kit_uses_its_own() {
    let (tmp, root) = tempdir();
    let dir = root.join("prod_00");
    fs::create_dir_all(&dir).expect("mkdir");
    let project = Project::new("p");
    let mut kits = Vec::new();
    let server = project.server(SERVER).build(&dir);
    server.write_config(K8S);
    kits.push(KitSpec {
        name: SERVER.into(),
        role: "server",
        expect: Expect::Ok("k8s"),
    });
    for i in 1..=6 {
        let name = format!("site-{i}");
        let kit = project.client(&name).build(&dir);
        let (yaml, runtime) = if i % 2 == 0 { (K8S, "k8s") } else { (DOCKER, "docker") };
        kit.write_config(yaml);
        kits.push(KitSpec {
            name,
            role: "client",
            expect: Expect::Ok(runtime),
        });
    }
    project.client("site-noconf").build(&dir);
    kits.push(KitSpec {
        name: "site-noconf".into(),
        role: "client",
        expect: Expect::Failed("CONFIG_NOT_FOUND"),
    });
    let nokey = project.client("site-nokey").build(&dir);
    nokey.write_config(DOCKER);
    fs::remove_file(nokey.path("startup/client.key")).expect("remove client.key");
    kits.push(KitSpec {
        name: "site-nokey".into(),
        role: "client",
        expect: Expect::Failed("INVALID_KIT"),
    });
    let badjson = project.client("site-badjson").build(&dir);
    badjson.write_config(DOCKER);
    kitgen::write(&badjson.path("local/resources.json.default"), "{not json", 0o644);
    kits.push(KitSpec {
        name: "site-badjson".into(),
        role: "client",
        expect: Expect::Failed("INVALID_KIT"),
    });
    let fed = Federation {
        _tmp: tmp,
        root,
        dir,
        kits,
    };
    let before = fed.snapshot();

    let run = batch(&fed.dir, &[&"--format", &"json"]);
    assert_exit(&run, 4);
    let doc = run.json();
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["exit_code"], 4);
    assert_eq!(
        doc["data"]["summary"],
        json!({"prepared": 7, "failed": 3, "skipped": 0})
    );
    let items = doc["data"]["kits"].as_array().expect("kits");
    let expected = fed.sorted();
    assert_eq!(items.len(), expected.len(), "{doc}");
    for (item, spec) in items.iter().zip(&expected) {
        let name = &spec.name;
        assert_eq!(item["kit"], name.as_str(), "kits in name order: {doc}");
        match spec.expect {
            Expect::Ok(runtime) => {
                assert_eq!(item["status"], "ok", "{name}: {item}");
                assert_eq!(item["result"]["runtime"], runtime, "{name}: {item}");
                let output = fed.kit(name).join("prepared").join(runtime);
                assert_eq!(item["result"]["output"], output.display().to_string(), "{name}");
                assert_eq!(
                    names(&fed.kit(name).join("prepared")),
                    [runtime],
                    "{name}: only its own runtime's output"
                );
                assert_prepared(&output, name, spec.role, runtime);
            }
            Expect::Failed(code) => {
                assert_eq!(item["status"], "error", "{name}: {item}");
                assert_eq!(item["error_code"], code, "{name}: {item}");
                assert!(!fed.kit(name).join("prepared").exists(), "{name}: prepared/ exists");
            }
            Expect::Skipped => unreachable!("no admin kit here"),
        }
    }
    let message = |name: &str| -> String {
        items
            .iter()
            .find(|k| k["kit"] == name)
            .and_then(|k| k["message"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        message("site-noconf"),
        format!(
            "Config file not found: {}",
            fed.kit("site-noconf").join("config.yaml").display()
        )
    );
    assert!(
        message("site-nokey").contains("client.key"),
        "{}",
        message("site-nokey")
    );
    assert!(
        message("site-badjson").starts_with("Failed to parse resources.json.default"),
        "{}",
        message("site-badjson")
    );
    fed.assert_inputs_unchanged(&before);
}

// ---------------------------------------------------------------------------------------
// success, parallelism, re-runs

#[test]
fn all_good_exits_zero_and_skips_do_not_fail() {
    let fed = federation(5);
    let config = docker_config(&fed);
    let run = batch(&fed.dir, &[&"--config", &config]);
    assert_exit(&run, 0);
    assert_eq!(run.stderr, "", "nothing on stderr when every kit succeeds");
    let (rows, rest) = parse_table(&run.stdout);
    assert_eq!(rows, expected_rows(&fed), "stdout:\n{}", run.stdout);
    assert_eq!(
        rest.first().map(String::as_str),
        Some("6 prepared, 0 failed, 1 skipped"),
        "stdout:\n{}",
        run.stdout
    );
    for kit in fed.ok_kits() {
        assert_prepared(
            &fed.kit(&kit.name).join("prepared/docker"),
            &kit.name,
            kit.role,
            "docker",
        );
    }

    let run = batch(&fed.dir, &[&"--config", &config, &"--format", &"json"]);
    assert_exit(&run, 0);
    let doc = run.json();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(
        doc["data"]["summary"],
        json!({"prepared": 6, "failed": 0, "skipped": 1})
    );
}

#[test]
fn one_job_and_four_jobs_give_the_same_outputs() {
    let fed = federation(9);
    let config = docker_config(&fed);
    let run1 = batch(&fed.dir, &[&"--config", &config, &"--jobs", &"1", &"--format", &"json"]);
    assert_exit(&run1, 0);
    let first = tree_contents(&fed.dir);
    for kit in fed.ok_kits() {
        assert!(
            first.contains_key(&format!("{}/prepared/docker/startup/start_docker.sh", kit.name)),
            "{}: no output after --jobs 1",
            kit.name
        );
    }
    let run4 = batch(&fed.dir, &[&"--config", &config, &"--jobs", &"4", &"--format", &"json"]);
    assert_exit(&run4, 0);
    let second = tree_contents(&fed.dir);
    let differing: Vec<&String> = first
        .keys()
        .chain(second.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| first.get(*k) != second.get(*k))
        .collect();
    assert!(differing.is_empty(), "--jobs 1 and --jobs 4 differ in: {differing:?}");
    assert_eq!(run1.json(), run4.json(), "same envelope for --jobs 1 and --jobs 4");

    // Text summaries agree too (the table is sorted whatever the finishing order).
    let txt1 = batch(&fed.dir, &[&"--config", &config, &"--jobs", &"1"]);
    let txt4 = batch(&fed.dir, &[&"--config", &config, &"--jobs", &"4"]);
    assert_exit(&txt1, 0);
    assert_exit(&txt4, 0);
    assert_eq!(txt1.stdout, txt4.stdout);
}

#[test]
fn rerun_replaces_outputs() {
    let fed = federation(3);
    let config = docker_config(&fed);
    assert_exit(&batch(&fed.dir, &[&"--config", &config]), 0);
    let output = fed.kit("site-2").join("prepared/docker");
    let server_output = fed.kit(SERVER).join("prepared/docker");
    write_file(&output.join("stale.txt"), "stale\n");
    write_file(&server_output.join("local/stale.json"), "{}\n");
    assert_exit(&batch(&fed.dir, &[&"--config", &config]), 0);
    assert!(
        !output.join("stale.txt").exists(),
        "the re-run replaced site-2's output"
    );
    assert!(
        !server_output.join("local/stale.json").exists(),
        "the re-run replaced server1's output"
    );
    for kit in fed.ok_kits() {
        let prepared = fed.kit(&kit.name).join("prepared");
        assert_eq!(names(&prepared), ["docker"], "{}: no leftovers, no nesting", kit.name);
        assert!(!prepared.join("docker/prepared").exists(), "{}: nested", kit.name);
        assert_prepared(&prepared.join("docker"), &kit.name, kit.role, "docker");
    }

    // The same with --output-root (created beforehand: this test is about replacing).
    let out_root = fed.root.join("out");
    fs::create_dir_all(&out_root).expect("mkdir out");
    assert_exit(
        &batch(&fed.dir, &[&"--config", &config, &"--output-root", &out_root]),
        0,
    );
    write_file(&out_root.join("site-1/stale.txt"), "stale\n");
    assert_exit(
        &batch(&fed.dir, &[&"--config", &config, &"--output-root", &out_root]),
        0,
    );
    assert!(
        !out_root.join("site-1/stale.txt").exists(),
        "the re-run replaced ROOT/site-1"
    );
    let ok: Vec<String> = fed.ok_kits().into_iter().map(|k| k.name).collect();
    assert_eq!(names(&out_root), ok, "no staging or lock leftovers in ROOT");
}

// ---------------------------------------------------------------------------------------
// errors

#[test]
fn all_on_a_missing_folder_is_invalid_args() {
    let (_tmp, root) = tempdir();
    let missing = root.join("nope");
    let run = batch(&missing, &[]);
    run.assert_error_code("INVALID_ARGS", "Kit folder does not exist");
    assert!(run.stderr.contains(&missing.display().to_string()), "{}", run.stderr);
    assert!(!missing.exists(), "the missing folder must not be created");

    let run = batch(&missing, &[&"--format", &"json"]);
    assert_exit(&run, 4);
    let doc = run.json();
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["exit_code"], 4);
    assert_eq!(doc["error_code"], "INVALID_ARGS");
}

#[test]
fn all_on_a_folder_without_kits_is_invalid_args() {
    let (_tmp, root) = tempdir();
    let dir = root.join("prod_00");
    write_file(&dir.join("notes/local/readme.txt"), "not a kit\n");
    write_file(&dir.join("README.txt"), "x\n");
    // A plain file named like a kit's startup folder does not make a kit either.
    write_file(&dir.join("fake/startup"), "not a directory\n");
    let before = Snapshot::take(&dir, &[]);
    let config = write_file(&root.join("docker.yaml"), DOCKER);
    let run = batch(&dir, &[&"--config", &config]);
    run.assert_error_code("INVALID_ARGS", "No startup kits");
    assert_eq!(run.stdout, "");
    Snapshot::take(&dir, &[]).assert_same_as(&before, "folder without kits");

    // An empty folder, and a file instead of a folder.
    let empty = root.join("empty");
    fs::create_dir(&empty).expect("mkdir empty");
    batch(&empty, &[&"--config", &config]).assert_error_code("INVALID_ARGS", "No startup kits");
    batch(&dir.join("README.txt"), &[&"--config", &config])
        .assert_error_code("INVALID_ARGS", "Kit folder does not exist");
}

#[test]
fn conflicting_and_dependent_flags_are_usage_errors() {
    let fed = federation(1);
    let config = docker_config(&fed);
    let kit = fed.kit("site-1");
    let out = fed.root.join("out");
    let mut before = Snapshot::take(&fed.dir, &[]);
    let cases: Vec<(&str, Vec<OsString>)> = vec![
        (
            "--all with a positional KIT",
            argv(&[&"prepare", &"--all", &fed.dir, &kit, &"--config", &config]),
        ),
        (
            "--all with --kit",
            argv(&[&"prepare", &"--all", &fed.dir, &"--kit", &kit, &"--config", &config]),
        ),
        (
            "--all with --output",
            argv(&[&"prepare", &"--all", &fed.dir, &"--output", &out, &"--config", &config]),
        ),
        (
            "--output-root without --all (no kit)",
            argv(&[&"prepare", &"--output-root", &out, &"--config", &config]),
        ),
        (
            "--output-root without --all (positional KIT)",
            argv(&[&"prepare", &kit, &"--output-root", &out, &"--config", &config]),
        ),
        (
            "--output-root without --all (--kit)",
            argv(&[&"prepare", &"--kit", &kit, &"--output-root", &out, &"--config", &config]),
        ),
        (
            "--jobs without --all (positional KIT)",
            argv(&[&"prepare", &kit, &"--jobs", &"2", &"--config", &config]),
        ),
    ];
    // Every case is checked; the failures are reported together.
    let mut failures = Vec::new();
    for (label, args) in cases {
        let run = flare_deploy(&args);
        let usage_error = run.code == 4
            && run.stdout.is_empty()
            && run.stderr.contains("Invalid arguments.")
            && run.stderr.contains("Code: INVALID_ARGS (exit 4)");
        if !usage_error {
            failures.push(format!(
                "{label}: expected a usage error (exit 4, INVALID_ARGS), got exit {}\nstdout:\n{}\nstderr:\n{}",
                run.code, run.stdout, run.stderr
            ));
        }
        let written = out.exists() || kit.join("prepared").exists();
        if written {
            failures.push(format!("{label}: an output was written"));
        }
        let diff = Snapshot::take(&fed.dir, &[]).diff(&before);
        if !diff.is_empty() {
            failures.push(format!("{label}: federation folder changed:\n{}", diff.join("\n")));
        }
        if written || !diff.is_empty() {
            // Start the next check from a clean state.
            let _ = fs::remove_dir_all(&out);
            let _ = fs::remove_dir_all(kit.join("prepared"));
            before = Snapshot::take(&fed.dir, &[]);
        }

        // The same in json: one error envelope.
        let mut json_args = args.clone();
        json_args.extend([OsString::from("--format"), OsString::from("json")]);
        let run = flare_deploy(&json_args);
        let doc: Value = serde_json::from_str(run.stdout.trim()).unwrap_or(Value::Null);
        if run.code != 4 || doc["error_code"] != "INVALID_ARGS" || doc["exit_code"] != 4 {
            failures.push(format!(
                "{label} (json): expected an INVALID_ARGS envelope, got exit {}\nstdout:\n{}",
                run.code, run.stdout
            ));
        }
        let written = out.exists() || kit.join("prepared").exists();
        if written {
            failures.push(format!("{label} (json): an output was written"));
        }
        let diff = Snapshot::take(&fed.dir, &[]).diff(&before);
        if !diff.is_empty() {
            failures.push(format!(
                "{label} (json): federation folder changed:\n{}",
                diff.join("\n")
            ));
        }
        if written || !diff.is_empty() {
            // Start the next check from a clean state.
            let _ = fs::remove_dir_all(&out);
            let _ = fs::remove_dir_all(kit.join("prepared"));
            before = Snapshot::take(&fed.dir, &[]);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
