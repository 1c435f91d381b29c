//! The command line as an operator and a packager meet it: `--version`, bare
//! `flare-deploy`, usage errors, `--schema` at both levels, shell completions (run in real
//! bash, checked by zsh and fish), the man page (rendered by groff), and the errors that
//! say what was wrong (unknown runtime, a near-miss key, a missing `parent:`).

use std::path::{Path, PathBuf};
use std::process::Command;

use flare_deploy_tests::fsutil::{os, tempdir, write_file};
use flare_deploy_tests::harness::run_exact;
use flare_deploy_tests::json::names;
use flare_deploy_tests::{tools, Project, Run};
use serde_json::Value;

fn run(args: &[&str]) -> Run {
    run_exact(None, args, &[])
}

#[test]
fn version_names_the_supported_nvflare_releases() {
    let out = run(&["--version"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        format!(
            "flare-deploy {} (NVFlare releases: 2.8, 2.9; default 2.9)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn bare_flare_deploy_prints_help_and_exits_0() {
    let out = run(&[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with("Prepare NVIDIA FLARE startup kits"),
        "{}",
        out.stdout
    );
    for command in ["prepare", "targets", "verify", "completions", "man"] {
        assert!(
            out.stdout.lines().any(|l| l.trim_start().starts_with(command)),
            "help lists {command}:\n{}",
            out.stdout
        );
    }
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    // Options without a command are still a usage error (a script asked for something).
    let json = run(&["--format", "json"]);
    assert_eq!(json.code, 4);
    assert_eq!(json.json()["error_code"], "INVALID_ARGS");
}

#[test]
fn an_invalid_format_is_a_usage_error_with_the_usage() {
    let txt = run(&["prepare", "somekit", "--format", "yaml"]);
    assert_eq!(txt.code, 4, "{txt:?}");
    assert!(
        txt.stderr
            .starts_with("Usage: flare-deploy prepare [OPTIONS] [KIT]\n\n"),
        "{}",
        txt.stderr
    );
    assert!(
        txt.stderr.contains(
            "Invalid arguments. \u{2014} invalid value 'yaml' for '--format <FORMAT>' [possible values: txt, json]"
        ),
        "{}",
        txt.stderr
    );
    assert!(txt.stderr.ends_with("Code: INVALID_ARGS (exit 4)\n"), "{}", txt.stderr);
    // The format option itself is the bad one, so the envelope is text; json asked
    // separately gives the usage in the envelope.
    let json = run(&["--format", "json", "prepare", "somekit", "--jobs", "many"]);
    assert_eq!(json.code, 4);
    let doc = json.json();
    assert_eq!(doc["error_code"], "INVALID_ARGS");
    assert_eq!(doc["data"]["usage"], "flare-deploy prepare [OPTIONS] [KIT]");
    // At the top level the top-level usage.
    let top = run(&["--format", "yaml"]);
    assert!(
        top.stderr.starts_with("Usage: flare-deploy [OPTIONS] [COMMAND]\n"),
        "{}",
        top.stderr
    );
}

#[test]
fn prepare_schema_lists_every_option() {
    let out = run(&["prepare", "--schema"]);
    out.assert_ok();
    let doc: Value = serde_json::from_str(&out.stdout).expect("schema JSON");
    let names = names(&doc["args"]);
    assert_eq!(
        names,
        [
            "kit",
            "--kit",
            "--output",
            "--config",
            "--nvflare-version",
            "--schema",
            "--all",
            "--output-root",
            "--jobs",
            "--dry-run",
            "--format",
            "--verbose",
        ],
        "{}",
        out.stdout
    );
    // The reference's own entries are kept word for word.
    assert_eq!(doc["args"][0]["nargs"], "?");
    assert_eq!(doc["args"][5]["description"], "print command schema as JSON and exit");
    let format = doc["args"]
        .as_array()
        .expect("args")
        .iter()
        .find(|a| a["name"] == "--format")
        .expect("--format");
    assert_eq!(format["choices"], serde_json::json!(["txt", "json"]));
    assert_eq!(format["default"], "txt");
    let jobs = doc["args"]
        .as_array()
        .expect("args")
        .iter()
        .find(|a| a["name"] == "--jobs")
        .expect("--jobs");
    assert_eq!(jobs["type"], "integer");
    // Every long option `prepare --help` shows is in the schema.
    let help = run(&["prepare", "--help"]);
    // An option's definition line starts with '-' (`  -v, --verbose`, `      --all <DIR>`).
    let defined: Vec<&str> = help
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .flat_map(|l| {
            l.split_whitespace()
                .filter(|w| w.starts_with("--"))
                .map(|w| w.trim_end_matches(','))
        })
        .filter(|o| *o != "--help")
        .collect();
    assert!(defined.len() >= 10, "{defined:?}");
    for option in defined {
        assert!(names.contains(&option), "{option} from --help missing in the schema");
    }
}

#[test]
fn top_level_schema_lists_the_commands() {
    let out = run(&["--schema"]);
    out.assert_ok();
    let doc: Value = serde_json::from_str(&out.stdout).expect("schema JSON");
    assert_eq!(doc["command"], "flare-deploy");
    let commands = names(&doc["commands"]);
    assert_eq!(
        commands,
        [
            "prepare",
            "targets",
            "verify",
            "completions",
            "man",
            "<runtime> <action>"
        ],
        "{}",
        out.stdout
    );
    for command in doc["commands"].as_array().expect("commands") {
        assert!(
            command["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{command}"
        );
    }
    assert_eq!(doc["commands"][0]["schema"], "flare-deploy prepare --schema");
    let options = names(&doc["options"]);
    assert_eq!(options, ["--format", "--verbose", "--schema"]);
    assert!(doc["version"]
        .as_str()
        .is_some_and(|v| v.contains("NVFlare releases: 2.8, 2.9")));
}

fn completion_script(shell: &str, dir: &Path) -> PathBuf {
    let out = run(&["completions", shell]);
    out.assert_ok();
    assert!(out.stdout.contains("flare-deploy"), "{shell}: {}", out.stdout);
    write_file(&dir.join(format!("completion.{shell}")), &out.stdout)
}

/// What bash completes for `words` (the last one being typed), with the generated script
/// loaded into a real bash and its function found as bash itself registered it.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}' || exit 9\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         function=$(complete -p flare-deploy | sed -n 's/.* -F \\([^ ]*\\) .*/\\1/p')\n[ -n \"$function\" ] || exit 8\n\
         \"$function\" flare-deploy \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .expect("run bash");
    assert!(out.status.success(), "bash: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completion_completes_commands_options_and_values() {
    let (_tmp, dir) = tempdir();
    let script = completion_script("bash", &dir);
    let commands = bash_complete(&script, &["flare-deploy", ""]);
    for c in ["prepare", "targets", "verify", "completions", "man"] {
        assert!(commands.iter().any(|w| w == c), "{c} in {commands:?}");
    }
    assert_eq!(bash_complete(&script, &["flare-deploy", "prep"]), ["prepare"]);
    assert_eq!(
        bash_complete(&script, &["flare-deploy", "prepare", "--nvf"]),
        ["--nvflare-version"]
    );
    let formats = bash_complete(&script, &["flare-deploy", "prepare", "--format", ""]);
    assert_eq!(formats, ["txt", "json"]);
    assert_eq!(bash_complete(&script, &["flare-deploy", "completions", "z"]), ["zsh"]);
}

#[test]
fn zsh_and_fish_completions_parse() {
    let (_tmp, dir) = tempdir();
    let zsh_script = completion_script("zsh", &dir);
    let fish_script = completion_script("fish", &dir);
    assert!(read_text(&zsh_script).starts_with("#compdef flare-deploy"));
    assert!(read_text(&fish_script).contains("complete -c flare-deploy"));
    if let Some(zsh) = tools::require("zsh") {
        let out = Command::new(zsh).arg("-n").arg(&zsh_script).output().expect("zsh");
        assert!(out.status.success(), "zsh -n: {}", String::from_utf8_lossy(&out.stderr));
    }
    if let Some(fish) = tools::require("fish") {
        let out = Command::new(fish)
            .arg("--no-execute")
            .arg(&fish_script)
            .output()
            .expect("fish");
        assert!(
            out.status.success(),
            "fish --no-execute: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read")
}

#[test]
fn the_man_page_renders_with_every_command() {
    let out = run(&["man"]);
    out.assert_ok();
    assert!(
        out.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "roff:\n{}",
        &out.stdout[..200.min(out.stdout.len())]
    );
    assert!(out.stdout.contains(".TH flare-deploy 1"), "{}", out.stdout);
    let Some(groff) = tools::require("groff") else { return };
    let (_tmp, dir) = tempdir();
    let page = write_file(&dir.join("flare-deploy.1"), &out.stdout);
    let rendered = Command::new(groff)
        // Wide lines and no overstrike, so phrases are not split or doubled.
        .args(["-man", "-Tutf8", "-ww", "-rLL=300n", "-P-cbou"])
        .arg(&page)
        .output()
        .expect("groff");
    assert!(rendered.status.success());
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(warnings.trim().is_empty(), "groff warnings:\n{warnings}");
    let text = String::from_utf8_lossy(&rendered.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for expected in [
        "flare-deploy - Prepare NVIDIA FLARE startup kits",
        "FLARE-DEPLOY PREPARE",
        "--nvflare-version",
        "--output-root",
        "FLARE-DEPLOY VERIFY",
        "FLARE-DEPLOY COMPLETIONS",
        "NVFlare releases: 2.8, 2.9",
    ] {
        assert!(text.contains(expected), "man page lacks {expected:?}:\n{text}");
    }
}

struct Site {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    kit: PathBuf,
}

fn site() -> Site {
    let (tmp, root) = tempdir();
    let kit = Project::new("example_project")
        .client("site-1")
        .build(&root.join("kits"))
        .dir;
    Site { _tmp: tmp, root, kit }
}

impl Site {
    /// `prepare` with `config` in both formats; the kit is never changed and no output made.
    fn prepare_both(&self, config: &str) -> (Run, Value) {
        let file = write_file(&self.root.join("config.yaml"), config);
        let out = self.root.join("out");
        let txt = run_exact(
            None,
            os(&[&"prepare", &self.kit, &"--config", &file, &"--output", &out]),
            &[],
        );
        let json = run_exact(
            None,
            os(&[
                &"prepare",
                &self.kit,
                &"--config",
                &file,
                &"--output",
                &out,
                &"--format",
                &"json",
            ]),
            &[],
        );
        assert!(!out.exists(), "no output after an error");
        assert!(!self.kit.join("prepared").exists());
        (txt, json.json())
    }
}

const PLUGIN_NOTE: &str =
    "A plugin runtime <name> is the executable flare-deploy-target-<name> in FLARE_DEPLOY_PLUGIN_PATH or on PATH.";

#[test]
fn an_unknown_runtime_is_echoed_with_a_suggestion_and_the_plugin_path() {
    let s = site();
    let message = "Config must contain runtime: docker, runtime: k8s, or runtime: slurm.";
    let (txt, json) = s.prepare_both("runtime: dockr\nparent:\n  docker_image: img\n");
    let hint = format!(
        "Set a supported runtime: 'dockr' is not one of docker, k8s, slurm. Did you mean 'docker'? {PLUGIN_NOTE}"
    );
    txt.assert_txt_error("INVALID_CONFIG", message, &hint);
    assert_eq!(json["error_code"], "INVALID_CONFIG");
    assert_eq!(json["message"], message);
    assert_eq!(json["hint"], hint);
    // Nothing close: no guess, still the value and the plugin path.
    let (txt, _) = s.prepare_both("runtime: nomad\n");
    txt.assert_txt_error(
        "INVALID_CONFIG",
        message,
        &format!("Set a supported runtime: 'nomad' is not one of docker, k8s, slurm. {PLUGIN_NOTE}"),
    );
    let (txt, _) = s.prepare_both("parent:\n  docker_image: img\n");
    txt.assert_txt_error(
        "INVALID_CONFIG",
        message,
        &format!("Set a supported runtime (docker, k8s, slurm) with a runtime: key. {PLUGIN_NOTE}"),
    );
}

#[test]
fn a_near_miss_key_gets_did_you_mean() {
    let s = site();
    let (txt, json) = s.prepare_both("runtime: docker\nparent:\n  docker_imag: img\n  netwrok: n\n");
    let message = "Unknown keys in parent: ['docker_imag', 'netwrok']";
    let hint = "Remove or rename unsupported keys. 'docker_imag': did you mean 'docker_image'? 'netwrok': did you mean 'network'?";
    txt.assert_txt_error("INVALID_CONFIG", message, hint);
    assert_eq!(json["message"], message);
    assert_eq!(json["hint"], hint);
    // Far from every key: the reference's hint alone.
    let (txt, _) = s.prepare_both("runtime: docker\nparent:\n  docker_image: img\n  zzz: 1\n");
    txt.assert_txt_error(
        "INVALID_CONFIG",
        "Unknown keys in parent: ['zzz']",
        "Remove or rename unsupported keys.",
    );
}

#[test]
fn docker_without_parent_says_parent_docker_image_is_required() {
    let s = site();
    let (txt, json) = s.prepare_both("runtime: docker\n");
    let hint = "Add a parent: section to the runtime config; parent.docker_image is required.";
    txt.assert_txt_error("INVALID_CONFIG", "parent must be a YAML mapping.", hint);
    assert_eq!(json["hint"], hint);
    let (txt, _) = s.prepare_both("runtime: docker\nparent: nvflare/nvflare:2.9.0\n");
    txt.assert_txt_error(
        "INVALID_CONFIG",
        "parent must be a YAML mapping.",
        "Fix the runtime config. parent must hold keys (parent.docker_image is required), not a single value.",
    );
}
