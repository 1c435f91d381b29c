//! `flare-deploy verify <prepared-kit>`: the output of a real prepare checked against its
//! receipt. A fresh output is clean (exit 0); every kind of change made afterwards is
//! reported (exit 4, VERIFY_MISMATCH), in txt and json; `--config` compares the config;
//! a directory without a receipt is refused.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flare_deploy_tests::fsutil::{tempdir, write_file};
use flare_deploy_tests::{flare_deploy, Kit, Project, Run, Snapshot};
use serde_json::{json, Value};

const DOCKER: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";
const K8S: &str = "runtime: k8s\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";
const MISMATCH_HINT: &str = "Someone changed the prepared kit after flare-deploy wrote it (or it was prepared with another config). Review the changes listed; run flare-deploy prepare again to regenerate it.";

fn run(args: &[&dyn AsRef<OsStr>]) -> Run {
    flare_deploy(args.iter().map(|a| a.as_ref()))
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    kit: Kit,
    config: PathBuf,
    out: PathBuf,
}

/// A client kit (with a link inside it) prepared for `runtime` into `<root>/out`.
fn prepared(config_text: &str) -> Setup {
    let (tmp, root) = tempdir();
    let kit = Project::new("p").client("site-1").build(&root);
    std::os::unix::fs::symlink("../readme.txt", kit.path("local/readme-link")).expect("symlink");
    let config = write_file(&root.join("config.yaml"), config_text);
    let out = root.join("out");
    run(&[&"prepare", &kit.dir, &"--config", &config, &"--output", &out]).assert_ok();
    Setup {
        _tmp: tmp,
        root,
        kit,
        config,
        out,
    }
}

/// Entries under `dir` except the receipt, counted here from the tree.
fn entry_count(dir: &Path) -> usize {
    Snapshot::take(dir, &[".flare-deploy.json"])
        .0
        .keys()
        .filter(|p| !p.as_os_str().is_empty())
        .count()
}

#[track_caller]
fn assert_clean(setup: &Setup, runtime: &str) {
    let txt = run(&[&"verify", &setup.out]);
    txt.assert_ok();
    assert!(txt.stdout.contains("matches: true\n"), "{}", txt.stdout);
    assert!(txt.stdout.contains(&format!("runtime: {runtime}\n")), "{}", txt.stdout);
    let json = run(&[&"--format", &"json", &"verify", &setup.out]);
    json.assert_ok();
    let doc = json.json();
    assert_eq!(doc["status"], "ok");
    let data = &doc["data"];
    assert_eq!(data["prepared_kit"], setup.out.to_string_lossy().as_ref());
    assert_eq!(data["runtime"], runtime);
    assert_eq!(data["name"], "site-1");
    assert_eq!(data["role"], "client");
    assert_eq!(data["matches"], true);
    assert_eq!(data["differences"], json!([]));
    assert_eq!(data["entries"], entry_count(&setup.out));
}

#[test]
fn a_fresh_docker_output_verifies_clean() {
    let setup = prepared(DOCKER);
    let before = Snapshot::take(&setup.root, &[]);
    assert_clean(&setup, "docker");
    Snapshot::take(&setup.root, &[]).assert_same_as(&before, "everything after verify");
}

#[test]
fn a_fresh_k8s_output_verifies_clean() {
    let setup = prepared(K8S);
    assert!(setup.out.join("helm_chart/values.yaml").is_file());
    assert_clean(&setup, "k8s");
}

#[test]
fn every_kind_of_change_is_reported() {
    let setup = prepared(DOCKER);
    let out = &setup.out;
    // modified, missing, added, mode, link, type
    let resources = out.join("local/resources.json.default");
    let mut text = std::fs::read_to_string(&resources).expect("read");
    text.push(' ');
    std::fs::write(&resources, text).expect("write");
    std::fs::remove_file(out.join("startup/start_docker.sh")).expect("rm");
    write_file(&out.join("local/extra.txt"), "added by hand\n");
    std::fs::set_permissions(out.join("readme.txt"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::remove_file(out.join("local/readme-link")).expect("rm link");
    std::os::unix::fs::symlink("../startup/rootCA.pem", out.join("local/readme-link")).expect("relink");
    std::fs::remove_file(out.join("local/log_config.json.default")).expect("rm");
    std::fs::create_dir(out.join("local/log_config.json.default")).expect("mkdir");
    let before = Snapshot::take(&setup.root, &[]);

    let txt = run(&[&"verify", out]);
    assert_eq!(txt.code, 4, "{txt:?}");
    let expected = [
        "added: local/extra.txt",
        "type: local/log_config.json.default (file -> dir)",
        "link: local/readme-link (../readme.txt -> ../startup/rootCA.pem)",
        "modified: local/resources.json.default",
        "mode: readme.txt (0644 -> 0600)",
        "missing: startup/start_docker.sh",
    ];
    assert_eq!(txt.stdout.lines().collect::<Vec<_>>(), expected, "{}", txt.stdout);
    let message = format!(
        "Prepared kit differs from its receipt (.flare-deploy.json): 1 modified, 1 missing, 1 added, 1 mode changed, 1 link changed, 1 type changed: {}",
        out.display()
    );
    txt.assert_txt_error("VERIFY_MISMATCH", &message, MISMATCH_HINT);

    let json = run(&[&"--format", &"json", &"verify", out]);
    assert_eq!(json.code, 4);
    let doc = json.json();
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["exit_code"], 4);
    assert_eq!(doc["error_code"], "VERIFY_MISMATCH");
    assert_eq!(doc["message"], message);
    assert_eq!(doc["data"]["matches"], false);
    let got: Vec<(String, String)> = doc["data"]["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            (
                d["change"].as_str().unwrap_or("").to_string(),
                d["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|l| {
            let (kind, rest) = l.split_once(": ").expect("kind: path");
            (kind.to_string(), rest.split(' ').next().unwrap_or("").to_string())
        })
        .collect();
    assert_eq!(got, want);
    let mode = doc["data"]["differences"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["change"] == "mode"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        mode,
        json!({"path": "readme.txt", "change": "mode", "recorded": "0644", "found": "0600"})
    );
    Snapshot::take(&setup.root, &[]).assert_same_as(&before, "verify changes nothing");
}

#[test]
fn each_change_alone_is_reported() {
    type Change = fn(&Path);
    let cases: [(&str, Change); 4] = [
        ("modified: startup/client.crt", |out| {
            write_file(&out.join("startup/client.crt"), "not a certificate\n");
        }),
        ("missing: local/comm_config.json", |out| {
            std::fs::remove_file(out.join("local/comm_config.json")).expect("rm")
        }),
        ("added: startup/backdoor.sh", |out| {
            write_file(&out.join("startup/backdoor.sh"), "#!/bin/sh\n");
        }),
        ("mode: startup/start_docker.sh (0755 -> 0644)", |out| {
            std::fs::set_permissions(
                out.join("startup/start_docker.sh"),
                std::fs::Permissions::from_mode(0o644),
            )
            .expect("chmod")
        }),
    ];
    for (line, change) in cases {
        let setup = prepared(DOCKER);
        change(&setup.out);
        let txt = run(&[&"verify", &setup.out]);
        assert_eq!(txt.code, 4, "{line}: {txt:?}");
        assert_eq!(txt.stdout, format!("{line}\n"), "{line}");
        assert!(txt.stderr.contains("Code: VERIFY_MISMATCH (exit 4)"), "{}", txt.stderr);
    }
}

#[test]
fn config_is_compared_when_given() {
    let setup = prepared(DOCKER);
    // The same config: clean, and said so.
    let same = run(&[&"--format", &"json", &"verify", &setup.out, &"--config", &setup.config]);
    same.assert_ok();
    let config = &same.json()["data"]["config"];
    assert_eq!(config["matches"], true, "{config}");
    assert_eq!(config["recorded_sha256"], config["sha256"]);
    assert_eq!(config["recorded_path"], setup.config.to_string_lossy().as_ref());

    // A config with another image: the files still match, the config does not.
    let other = write_file(
        &setup.root.join("other.yaml"),
        "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.2\n",
    );
    let txt = run(&[&"verify", &setup.out, &"--config", &other]);
    assert_eq!(txt.code, 4, "{txt:?}");
    assert!(
        txt.stdout.starts_with(&format!(
            "config: {} differs from the config used ({};",
            other.display(),
            setup.config.display()
        )),
        "{}",
        txt.stdout
    );
    txt.assert_txt_error(
        "VERIFY_MISMATCH",
        &format!(
            "Prepared kit differs from its receipt (.flare-deploy.json): the config differs from the one used: {}",
            setup.out.display()
        ),
        MISMATCH_HINT,
    );
    let json = run(&[&"--format", &"json", &"verify", &setup.out, &"--config", &other]);
    assert_eq!(json.code, 4);
    let doc = json.json();
    assert_eq!(doc["error_code"], "VERIFY_MISMATCH");
    assert_eq!(doc["data"]["differences"], json!([]));
    assert_eq!(doc["data"]["config"]["matches"], false);
    assert_ne!(
        doc["data"]["config"]["sha256"],
        doc["data"]["config"]["recorded_sha256"]
    );

    // A config that is not there.
    let missing = setup.root.join("missing.yaml");
    run(&[&"verify", &setup.out, &"--config", &missing])
        .assert_error_code("CONFIG_NOT_FOUND", "Cannot read config file");
}

#[test]
fn a_directory_without_a_receipt_is_refused() {
    let setup = prepared(DOCKER);
    let kit = &setup.kit.dir;
    let message = format!(
        "No flare-deploy receipt (.flare-deploy.json) in {}: was it prepared by flare-deploy?",
        kit.display()
    );
    let hint = "Pass the output directory of flare-deploy prepare (it holds .flare-deploy.json); outputs of nvflare deploy prepare or of older flare-deploy versions carry no receipt and cannot be verified.";
    run(&[&"verify", kit]).assert_txt_error("INVALID_ARGS", &message, hint);
    let json = run(&[&"--format", &"json", &"verify", kit]);
    assert_eq!(json.code, 4);
    let doc = json.json();
    assert_eq!(doc["error_code"], "INVALID_ARGS");
    assert_eq!(doc["message"], message);
    assert_eq!(doc["hint"], hint);
    // A receipt that is not one (another tool's file of that name) counts as none.
    write_file(
        &setup.root.join("fake/.flare-deploy.json"),
        "{\"format\": \"other/1\"}\n",
    );
    run(&[&"verify", &setup.root.join("fake")]).assert_error_code("INVALID_ARGS", "No flare-deploy receipt");
    run(&[&"verify", &setup.root.join("nowhere")])
        .assert_error_code("INVALID_ARGS", "Prepared kit directory does not exist");
}

#[test]
fn changes_an_action_recorded_are_not_reported_but_later_ones_are() {
    // `k8s stage` rewrites helm_chart/values.yaml and records it in the receipt. No
    // Kubernetes API server here: kubectl is the recording stub (tests/src/stub_kubectl.rs).
    let (_tmp, root) = tempdir();
    let kit = Project::new("p").client("site-1").build(&root);
    let config = write_file(
        &root.join("k8s.yaml"),
        "runtime: k8s\nnamespace: nvflare\nparent:\n  docker_image: nvflare/nvflare:2.9.0\n",
    );
    let out = root.join("site-1-k8s");
    flare_deploy_tests::harness::prepare_for_release(&kit.dir, &config, &out, "2.9").assert_ok();
    let values_before = std::fs::read(out.join("helm_chart/values.yaml")).expect("values");
    let stub = flare_deploy_tests::stub_kubectl::StubKubectl::new();
    let env = stub.env();
    let staged = flare_deploy_tests::harness::run_exact(
        None,
        [OsStr::new("k8s"), OsStr::new("stage"), out.as_os_str()],
        &flare_deploy_tests::stub_kubectl::pairs(&env),
    );
    staged.assert_ok();
    assert!(!stub.calls().is_empty(), "stage called kubectl");
    assert_ne!(
        std::fs::read(out.join("helm_chart/values.yaml")).expect("values"),
        values_before,
        "stage rewrote values.yaml"
    );
    run(&[&"verify", &out]).assert_ok();
    // An edit by hand after the stage is still seen.
    write_file(&out.join("helm_chart/values.yaml"), "edited: by hand\n");
    let txt = run(&[&"verify", &out]);
    assert_eq!(txt.code, 4, "{txt:?}");
    assert_eq!(txt.stdout, "modified: helm_chart/values.yaml\n");
}
