//! Choosing the NVFlare release: `nvflare_version` in the config, `--nvflare-version`
//! (which wins), default 2.9. Which release was used shows in the output files, the
//! receipt and `-v`; bad values are clear errors that leave the kit untouched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flare_deploy_tests::fsutil::{os, read, tempdir, write_file};
use flare_deploy_tests::harness::run_exact;
use flare_deploy_tests::{Kit, Project, Run, Snapshot};
use serde_json::Value;

const DOCKER: &str = "runtime: docker\nparent:\n  docker_image: nvflare/nvflare:2.9.0\n";
const RELEASE_HINT: &str = "Set nvflare_version to the release the site runs (supported: 2.8, 2.9).";

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    kit: Kit,
}

fn setup() -> Setup {
    let (tmp, root) = tempdir();
    let kit = Project::new("example_project")
        .client("site-1")
        .build(&root.join("kits"));
    Setup { _tmp: tmp, root, kit }
}

impl Setup {
    fn config(&self, name: &str, text: &str) -> PathBuf {
        write_file(&self.root.join(name), text)
    }

    /// `prepare` with exactly these extra arguments (no release added by the harness).
    fn prepare(&self, config: &Path, output: &str, extra: &[&str]) -> (Run, PathBuf) {
        let out = self.root.join(output);
        let mut argv = os(&[&"prepare", &self.kit.dir, &"--config", &config, &"--output", &out]);
        argv.extend(extra.iter().map(Into::into));
        (run_exact(None, &argv, &[]), out)
    }
}

fn receipt_release(output: &Path) -> Value {
    let receipt: Value = serde_json::from_str(&read(&output.join(".flare-deploy.json"))).expect("receipt");
    receipt["nvflare_release"].clone()
}

fn connection_security(output: &Path) -> Value {
    let comm: Value = serde_json::from_str(&read(&output.join("local/comm_config.json"))).expect("comm");
    comm["internal"]["resources"]["connection_security"].clone()
}

/// What tells a 2.8 output from a 2.9 one.
#[track_caller]
fn assert_release(output: &Path, release: &str) {
    assert_eq!(receipt_release(output), release, "receipt of {}", output.display());
    let (study, security) = match release {
        "2.8" => ("local/study_data.yaml", "clear"),
        _ => ("local/study_runtime.yaml", "mtls"),
    };
    assert!(output.join(study).is_file(), "{study} in {}", output.display());
    assert_eq!(connection_security(output), security);
}

#[test]
fn the_default_is_the_current_release() {
    let s = setup();
    let config = s.config("docker.yaml", DOCKER);
    let (run, out) = s.prepare(&config, "out", &[]);
    run.assert_ok();
    assert_release(&out, "2.9");
    assert!(!out.join("local/study_data.yaml").exists());
}

#[test]
fn the_config_key_and_the_option_choose_the_release() {
    let s = setup();
    for (label, key, extra, expected) in [
        ("key 2.8", "\"2.8\"", &[][..], "2.8"),
        ("unquoted key 2.8", "2.8", &[][..], "2.8"),
        ("full version key", "2.8.1", &[][..], "2.8"),
        ("key 2.9", "\"2.9\"", &[][..], "2.9"),
        ("null key", "null", &[][..], "2.9"),
        ("option 2.8", "null", &["--nvflare-version", "2.8"][..], "2.8"),
        (
            "option wins over key",
            "\"2.8\"",
            &["--nvflare-version", "2.9.0"][..],
            "2.9",
        ),
        (
            "option wins the other way",
            "\"2.9\"",
            &["--nvflare-version=2.8"][..],
            "2.8",
        ),
    ] {
        let config = s.config("c.yaml", &format!("{DOCKER}nvflare_version: {key}\n"));
        let (run, out) = s.prepare(&config, &format!("out-{}", label.replace(' ', "-")), extra);
        assert_eq!(run.code, 0, "{label}: {}", run.stderr);
        assert_release(&out, expected);
    }
}

/// Every file of the tree but the receipt.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    Snapshot::take(dir, &[".flare-deploy.json"])
        .0
        .into_iter()
        .map(|(path, entry)| (path, entry.content))
        .collect()
}

#[test]
fn a_2_8_output_is_the_same_whichever_way_2_8_is_named() {
    let s = setup();
    let plain = s.config("plain.yaml", DOCKER);
    let keyed = s.config("keyed.yaml", &format!("{DOCKER}nvflare_version: '2.8'\n"));
    let (a, by_option) = s.prepare(&plain, "by-option", &["--nvflare-version", "2.8"]);
    let (b, by_key) = s.prepare(&keyed, "by-key", &[]);
    a.assert_ok();
    b.assert_ok();
    assert_eq!(contents(&by_option), contents(&by_key));
    assert_eq!(a.stderr, b.stderr);
}

#[test]
fn a_2_9_key_is_unknown_to_a_2_8_deployment() {
    let s = setup();
    let config = s.config(
        "c.yaml",
        &format!("{DOCKER}  internal_connection_security: clear\nnvflare_version: '2.8'\n"),
    );
    let before = Snapshot::take(&s.kit.dir, &[]);
    let (run, out) = s.prepare(&config, "out", &[]);
    run.assert_txt_error(
        "INVALID_CONFIG",
        "Unknown keys in parent: ['internal_connection_security']",
        "Remove or rename unsupported keys.",
    );
    assert!(!out.exists());
    Snapshot::take(&s.kit.dir, &[]).assert_same_as(&before, "the kit");
}

#[test]
fn an_unsupported_release_in_the_config_is_invalid_config() {
    let s = setup();
    for (value, shown) in [
        ("'3.0'", "'3.0'"),
        ("2.10", "2.1"),
        ("'2.9x'", "'2.9x'"),
        ("true", "True"),
        ("[2.9]", "[2.9]"),
    ] {
        let config = s.config("c.yaml", &format!("{DOCKER}nvflare_version: {value}\n"));
        let before = Snapshot::take(&s.kit.dir, &[]);
        let message = format!(
            "nvflare_version must be a supported NVFlare release (2.8 or 2.9, or a full version such as 2.9.0), got {shown}."
        );
        let (run, out) = s.prepare(&config, "out", &[]);
        run.assert_txt_error("INVALID_CONFIG", &message, RELEASE_HINT);
        let (run, _) = s.prepare(&config, "out", &["--format", "json"]);
        assert_eq!(run.code, 4);
        let doc = run.json();
        assert_eq!(doc["error_code"], "INVALID_CONFIG");
        assert_eq!(doc["message"], message);
        assert_eq!(doc["hint"], RELEASE_HINT);
        assert!(!out.exists());
        Snapshot::take(&s.kit.dir, &[]).assert_same_as(&before, "the kit");
    }
}

#[test]
fn an_unsupported_release_option_is_invalid_args() {
    let s = setup();
    let config = s.config("c.yaml", DOCKER);
    let message = "--nvflare-version must be a supported NVFlare release (2.8 or 2.9, or a full version such as 2.9.0), got '2.7'.";
    let hint = "Pass the release the site runs (supported: 2.8, 2.9).";
    let (run, out) = s.prepare(&config, "out", &["--nvflare-version", "2.7"]);
    run.assert_txt_error("INVALID_ARGS", message, hint);
    assert!(!out.exists());
    // With --all too, once for the whole batch.
    let argv = os(&[
        &"prepare",
        &"--all",
        &s.root.join("kits"),
        &"--config",
        &config,
        &"--nvflare-version",
        &"2.7",
        &"--format",
        &"json",
    ]);
    let run = run_exact(None, &argv, &[]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert_eq!(run.json()["error_code"], "INVALID_ARGS");
    assert_eq!(run.json()["message"], message);
    assert!(!s.kit.dir.join("prepared").exists());
}

#[test]
fn batch_mode_applies_the_release_to_every_kit() {
    let (_tmp, root) = tempdir();
    let prod = root.join("prod_00");
    let project = Project::new("p");
    project.server("server1").build(&prod);
    project.client("site-1").build(&prod);
    project.client("site-2").build(&prod);
    let config = write_file(&root.join("docker.yaml"), DOCKER);
    for release in ["2.8", "2.9"] {
        let outs = root.join(format!("outs-{release}"));
        let argv = os(&[
            &"prepare",
            &"--all",
            &prod,
            &"--config",
            &config,
            &"--output-root",
            &outs,
            &"--nvflare-version",
            &release,
        ]);
        run_exact(None, &argv, &[]).assert_ok();
        for kit in ["server1", "site-1", "site-2"] {
            assert_release(&outs.join(kit), release);
        }
    }
}

#[test]
fn verbose_output_names_the_release() {
    let s = setup();
    let config = s.config("c.yaml", &format!("{DOCKER}nvflare_version: '2.8'\n"));
    let (run, _) = s.prepare(&config, "out", &["-v"]);
    run.assert_ok();
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("NVFlare release") && l.contains("release=\"2.8\"")),
        "{}",
        run.stderr
    );
}

#[test]
fn the_key_and_the_option_are_documented() {
    for runtime in ["docker", "k8s"] {
        let run = run_exact(None, ["targets", "show", runtime], &[]);
        run.assert_ok();
        assert!(run.stdout.contains("nvflare_version"), "{}", run.stdout);
        let run = run_exact(None, ["targets", "show", runtime, "--schema"], &[]);
        let schema: Value = serde_json::from_str(&run.stdout).expect("schema");
        assert_eq!(schema["properties"]["nvflare_version"]["default"], "2.9");
    }
    let run = run_exact(None, ["prepare", "--schema"], &[]);
    let schema: Value = serde_json::from_str(&run.stdout).expect("schema");
    let option = schema["args"]
        .as_array()
        .expect("args")
        .iter()
        .find(|a| a["name"] == "--nvflare-version")
        .expect("--nvflare-version in the schema");
    assert_eq!(option["choices"], serde_json::json!(["2.8", "2.9"]));
    let run = run_exact(None, ["prepare", "--help"], &[]);
    assert!(run.stdout.contains("--nvflare-version"), "{}", run.stdout);
}
