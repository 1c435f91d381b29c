//! Nothing lost, whatever the output path: flare-deploy replaces only an empty
//! directory, an output that carries its receipt (`.flare-deploy.json`), or something
//! under `<kit>/prepared/` of the kit being prepared. Everything else is refused with
//! `INVALID_ARGS`, and both the input kit and whatever sat at the output path stay
//! byte-, mode- and mtime-identical. The receipt describes every file of the output.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use flare_deploy_tests::fsutil::{os, read, tempdir, write_file};
use flare_deploy_tests::harness::run_in;
use flare_deploy_tests::{Kit, Project, Run, Snapshot};
use serde_json::Value;

const DOCKER: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n";
const RECEIPT: &str = ".flare-deploy.json";
const REFUSED_HINT: &str = "Choose a new or empty directory, or the output of an earlier flare-deploy prepare (it holds .flare-deploy.json); flare-deploy replaces nothing else.";

/// A provisioned-looking federation `<root>/prod_00/{server1,site-1,site-2}` and a
/// Docker config outside it.
struct Fed {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    server: Kit,
    site1: Kit,
    site2: Kit,
    config: PathBuf,
}

fn fed() -> Fed {
    let (tmp, root) = tempdir();
    let prod = root.join("prod_00");
    let project = Project::new("example_project");
    let server = project.server("server1").build(&prod);
    let site1 = project.client("site-1").build(&prod);
    let site2 = project.client("site-2").build(&prod);
    let config = write_file(&root.join("docker.yaml"), DOCKER);
    Fed {
        _tmp: tmp,
        root,
        server,
        site1,
        site2,
        config,
    }
}

fn prepare(kit: &Path, config: &Path, output: Option<&Path>, format: &str) -> Run {
    let mut argv = os(&[&"prepare", &kit, &"--config", &config, &"--format", &format]);
    if let Some(output) = output {
        argv.extend(os(&[&"--output", &output]));
    }
    run_in(None, &argv, &[])
}

/// The refusal, in text and JSON, with everything in `keep` unchanged by both runs.
#[track_caller]
fn assert_refused(kit: &Path, config: &Path, output: &Path, message: &str, hint: &str, keep: &[&Path]) {
    let before: Vec<Snapshot> = keep.iter().map(|p| Snapshot::take(p, &[])).collect();
    let run = prepare(kit, config, Some(output), "txt");
    run.assert_txt_error("INVALID_ARGS", message, hint);
    assert_eq!(run.stdout, "");
    let run = prepare(kit, config, Some(output), "json");
    assert_eq!(run.code, 4, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["error_code"], "INVALID_ARGS");
    assert_eq!(doc["message"], message);
    assert_eq!(doc["hint"], hint);
    for (path, before) in keep.iter().zip(&before) {
        Snapshot::take(path, &[]).assert_same_as(before, &path.display().to_string());
    }
    assert!(!kit.join("prepared").exists(), "nothing under the kit's prepared/");
    let parent = output.parent().expect("parent");
    let helpers: Vec<String> = std::fs::read_dir(parent)
        .expect("read parent")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.contains(".prepare-") || n.ends_with(".lock"))
        .collect();
    assert!(
        helpers.is_empty(),
        "staging or lock left beside the output: {helpers:?}"
    );
}

#[test]
fn output_pointing_at_another_client_kit_is_refused_and_both_kits_stay() {
    let fed = fed();
    let message = format!(
        "Output directory is a provisioned startup kit (startup/fed_client.json), not an output of flare-deploy: {}",
        fed.site2.dir.display()
    );
    assert_refused(
        &fed.site1.dir,
        &fed.config,
        &fed.site2.dir,
        &message,
        REFUSED_HINT,
        &[&fed.site1.dir, &fed.site2.dir],
    );
    // The private key that the old check overwrote is the kit's own.
    assert_ne!(
        read(&fed.site1.path("startup/client.key")),
        read(&fed.site2.path("startup/client.key"))
    );
}

#[test]
fn output_pointing_at_the_server_kit_is_refused_and_both_kits_stay() {
    let fed = fed();
    let message = format!(
        "Output directory is a provisioned startup kit (startup/fed_server.json), not an output of flare-deploy: {}",
        fed.server.dir.display()
    );
    assert_refused(
        &fed.site1.dir,
        &fed.config,
        &fed.server.dir,
        &message,
        REFUSED_HINT,
        &[&fed.site1.dir, &fed.server.dir],
    );
    // And the other way round: a server prepared onto a client kit.
    let message = format!(
        "Output directory is a provisioned startup kit (startup/fed_client.json), not an output of flare-deploy: {}",
        fed.site1.dir.display()
    );
    assert_refused(
        &fed.server.dir,
        &fed.config,
        &fed.site1.dir,
        &message,
        REFUSED_HINT,
        &[&fed.site1.dir, &fed.server.dir],
    );
}

#[test]
fn non_empty_unrelated_directories_are_refused() {
    let fed = fed();
    let docs = fed.root.join("docs");
    write_file(&docs.join("important.txt"), "keep me\n");
    write_file(&docs.join("drafts/plan.md"), "plan\n");
    let message = format!(
        "Output directory is not empty and holds no flare-deploy receipt (found drafts/, important.txt): {}",
        docs.display()
    );
    assert_refused(
        &fed.site1.dir,
        &fed.config,
        &docs,
        &message,
        REFUSED_HINT,
        &[&fed.site1.dir, &docs],
    );

    // A home-like directory: only dotfiles, which a careless `ls` does not show.
    let home = fed.root.join("home/operator");
    write_file(&home.join(".bashrc"), "export PS1='$ '\n");
    write_file(&home.join(".ssh/id_ed25519"), "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    std::fs::set_permissions(home.join(".ssh/id_ed25519"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let message = format!(
        "Output directory is not empty and holds no flare-deploy receipt (found .bashrc, .ssh/): {}",
        home.display()
    );
    assert_refused(
        &fed.site1.dir,
        &fed.config,
        &home,
        &message,
        REFUSED_HINT,
        &[&fed.site1.dir, &home],
    );

    // Many entries: the message names a few and counts the rest.
    let many = fed.root.join("many");
    for i in 0..9 {
        write_file(&many.join(format!("f{i}.txt")), "x");
    }
    let message = format!(
        "Output directory is not empty and holds no flare-deploy receipt (found f0.txt, f1.txt, f2.txt, f3.txt, f4.txt and 4 more): {}",
        many.display()
    );
    assert_refused(
        &fed.site1.dir,
        &fed.config,
        &many,
        &message,
        REFUSED_HINT,
        &[&fed.site1.dir, &many],
    );
}

#[test]
fn an_output_without_a_receipt_is_refused_with_a_way_forward() {
    // An earlier output of `nvflare deploy prepare` or of a flare-deploy without receipts.
    let fed = fed();
    let output = fed.root.join("outs/site-1");
    prepare(&fed.site1.dir, &fed.config, Some(&output), "txt").assert_ok();
    std::fs::remove_file(output.join(RECEIPT)).expect("drop the receipt");
    let message = format!(
        "Output directory is a prepared kit without a flare-deploy receipt ({RECEIPT}), written by nvflare deploy prepare or an older flare-deploy: {}",
        output.display()
    );
    let hint = format!(
        "flare-deploy replaces only outputs that carry its receipt. If nothing in it is needed, remove it (rm -rf {}) and run again; or choose another --output.",
        output.display()
    );
    assert_refused(
        &fed.site1.dir,
        &fed.config,
        &output,
        &message,
        &hint,
        &[&fed.site1.dir, &output],
    );
}

#[test]
fn an_output_with_a_receipt_is_replaced() {
    let fed = fed();
    let output = fed.root.join("outs/out");
    prepare(&fed.site1.dir, &fed.config, Some(&output), "txt").assert_ok();
    write_file(&output.join("local/stray.txt"), "left by hand\n");
    let before = Snapshot::take(&fed.site2.dir, &[]);
    let run = prepare(&fed.site2.dir, &fed.config, Some(&output), "json");
    run.assert_ok();
    assert_eq!(run.json()["data"]["name"], "site-2");
    assert_eq!(
        read(&output.join("startup/client.key")),
        read(&fed.site2.path("startup/client.key"))
    );
    assert!(!output.join("local/stray.txt").exists());
    assert_eq!(receipt(&output)["kit"]["name"], "site-2");
    Snapshot::take(&fed.site2.dir, &[]).assert_same_as(&before, "site-2");
}

#[test]
fn stray_files_under_the_kits_own_prepared_area_are_replaced() {
    let fed = fed();
    let default = fed.site1.path("prepared/docker");
    write_file(&default.join("stale.txt"), "from some other run\n");
    let before = Snapshot::take(&fed.site1.dir, &["prepared"]);
    let run = run_in(None, os(&[&"prepare", &fed.site1.dir, &"--config", &fed.config]), &[]);
    run.assert_ok();
    assert!(!default.join("stale.txt").exists());
    assert!(default.join("startup/start_docker.sh").is_file());
    assert!(default.join(RECEIPT).is_file());
    Snapshot::take(&fed.site1.dir, &["prepared"]).assert_same_as(&before, "site-1");

    // Any other name under prepared/ too, and an empty directory anywhere.
    let other = fed.site1.path("prepared/elsewhere");
    write_file(&other.join("notes.txt"), "x");
    prepare(&fed.site1.dir, &fed.config, Some(&other), "txt").assert_ok();
    assert!(!other.join("notes.txt").exists());
    let empty = fed.root.join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    prepare(&fed.site1.dir, &fed.config, Some(&empty), "txt").assert_ok();
    assert!(empty.join(RECEIPT).is_file());
}

#[test]
fn a_file_named_like_the_receipt_that_is_not_one_does_not_count() {
    let fed = fed();
    let fake = fed.root.join("fake");
    write_file(&fake.join("data.csv"), "1,2,3\n");
    write_file(&fake.join(RECEIPT), "{\"hello\": 1}\n");
    let message = format!(
        "Output directory is not empty and holds no flare-deploy receipt (found {RECEIPT}, data.csv): {}",
        fake.display()
    );
    assert_refused(
        &fed.site1.dir,
        &fed.config,
        &fake,
        &message,
        REFUSED_HINT,
        &[&fed.site1.dir, &fake],
    );
}

// ---------------------------------------------------------------------------------------
// the receipt

fn receipt(output: &Path) -> Value {
    serde_json::from_str(&read(&output.join(RECEIPT))).expect("receipt is JSON")
}

/// `sha256sum FILE`, computed by coreutils (independent of the code under test).
fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("run sha256sum");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("hash")
        .to_string()
}

/// Every entry under `root` (relative, sorted), except the receipt itself.
fn entries(root: &Path) -> Vec<(String, std::fs::Metadata)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, std::fs::Metadata)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if rel == RECEIPT {
                continue;
            }
            out.push((rel, meta.clone()));
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[track_caller]
fn assert_receipt_matches(output: &Path) -> Value {
    let receipt = receipt(output);
    let meta = std::fs::metadata(output.join(RECEIPT)).expect("stat receipt");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "receipt mode");
    let listed = receipt["files"].as_array().expect("files");
    let on_disk = entries(output);
    assert_eq!(
        listed
            .iter()
            .map(|f| f["path"].as_str().expect("path").to_string())
            .collect::<Vec<_>>(),
        on_disk.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        "the receipt lists every entry of the output, sorted"
    );
    for (item, (rel, meta)) in listed.iter().zip(&on_disk) {
        let mode = format!("{:04o}", meta.permissions().mode() & 0o7777);
        if meta.file_type().is_symlink() {
            assert_eq!(item["type"], "link", "{rel}");
            let target = std::fs::read_link(output.join(rel)).expect("readlink");
            assert_eq!(item["target"], target.to_string_lossy().as_ref(), "{rel}");
        } else if meta.is_dir() {
            assert_eq!(item["type"], "dir", "{rel}");
            assert_eq!(item["mode"], mode, "{rel}");
        } else {
            assert_eq!(item["type"], "file", "{rel}");
            assert_eq!(item["mode"], mode, "{rel}");
            assert_eq!(item["size"], meta.len(), "{rel}");
            assert_eq!(item["sha256"], sha256sum(&output.join(rel)), "{rel}");
        }
    }
    receipt
}

fn version() -> String {
    let run = run_in(None, ["--version"], &[]);
    run.assert_ok();
    run.stdout.split_whitespace().nth(1).expect("version").to_string()
}

#[test]
fn the_receipt_describes_the_output_file_by_file() {
    let fed = fed();
    // A symlink inside the kit is copied as a link and listed as one.
    std::os::unix::fs::symlink("rootCA.pem", fed.site1.path("startup/ca-link.pem")).expect("symlink");
    let output = fed.root.join("outs/site-1");
    prepare(&fed.site1.dir, &fed.config, Some(&output), "txt").assert_ok();
    let receipt = assert_receipt_matches(&output);
    assert_eq!(receipt["format"], "flare-deploy-receipt/1");
    assert_eq!(receipt["flare_deploy_version"], version());
    assert_eq!(receipt["runtime"], "docker");
    assert_eq!(receipt["kit"]["role"], "client");
    assert_eq!(receipt["kit"]["name"], "site-1");
    assert_eq!(receipt["kit"]["org"], "nvidia");
    assert_eq!(receipt["kit"]["input"], fed.site1.dir.display().to_string());
    assert_eq!(receipt["config"]["path"], fed.config.display().to_string());
    assert_eq!(receipt["config"]["sha256"], sha256sum(&fed.config));
    assert!(receipt["files"]
        .as_array()
        .expect("files")
        .iter()
        .any(|f| f["path"] == "startup/ca-link.pem" && f["type"] == "link"));
    // Written like every JSON file of the kit: 4-space indent.
    assert!(read(&output.join(RECEIPT)).contains("\n    \"format\": "));

    // A server kit with the k8s runtime (a chart in the output) too.
    let k8s = write_file(
        &fed.root.join("k8s.yaml"),
        "runtime: k8s\nparent:\n  docker_image: nvflare/nvflare:2.8.1\n",
    );
    let output = fed.root.join("outs/server1");
    prepare(&fed.server.dir, &k8s, Some(&output), "json").assert_ok();
    let receipt = assert_receipt_matches(&output);
    assert_eq!(receipt["runtime"], "k8s");
    assert_eq!(receipt["kit"]["role"], "server");
    assert!(receipt["files"]
        .as_array()
        .expect("files")
        .iter()
        .any(|f| f["path"] == "helm_chart/values.yaml"));
}

#[test]
fn a_failed_prepare_writes_no_receipt_and_keeps_the_previous_one() {
    let fed = fed();
    let output = fed.root.join("outs/site-1");
    prepare(&fed.site1.dir, &fed.config, Some(&output), "txt").assert_ok();
    let before = Snapshot::take(&output, &[]);
    // A kit that fails only after it was copied to the staging directory.
    std::fs::write(fed.site1.path("local/comm_config.json"), "{\"internal\": \"tcp\"}").expect("write");
    let run = prepare(&fed.site1.dir, &fed.config, Some(&output), "txt");
    run.assert_error_code("INVALID_KIT", "");
    Snapshot::take(&output, &[]).assert_same_as(&before, "the previous output");
    // A fresh path: nothing at all.
    let fresh = fed.root.join("outs/fresh");
    let run = prepare(&fed.site1.dir, &fed.config, Some(&fresh), "json");
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(run.json()["error_code"], "INVALID_KIT");
    assert!(!fresh.exists());
}
