//! The committed JSON Schemas in docs/schemas/ checked with a JSON Schema validator (the
//! `jsonschema` crate, the one the engine uses for plugin schemas). targets_cmd.rs tests
//! that the files match what the code prints (drift); this suite tests what they say:
//! every documented example config is valid under its runtime's schema, and configs with
//! a wrong type, an unknown key or a missing required key are not.

use std::path::Path;

use flare_deploy_tests::fsutil::{read, repo};
use serde_json::{json, Value};

const RUNTIMES: [&str; 4] = ["docker", "k8s", "slurm", "compose"];

fn validator(runtime: &str) -> jsonschema::Validator {
    let file = repo().join("docs/schemas").join(format!("{runtime}.json"));
    let schema: Value = serde_json::from_str(&read(&file)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{} is not a valid JSON Schema: {e}", file.display()))
}

/// A YAML config as the engine reads it, as JSON.
fn yaml(text: &str, origin: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{origin}: {e}\n{text}"))
}

/// The `yaml` code blocks of a Markdown file that are whole configs (a `runtime:` key).
fn documented_configs(file: &Path) -> Vec<(String, Value)> {
    let text = read(file);
    let mut configs = Vec::new();
    for (n, block) in text.split("```yaml\n").skip(1).enumerate() {
        let block = block.split_once("```").map_or(block, |(b, _)| b);
        let origin = format!("{} (yaml block {})", file.display(), n + 1);
        let doc = yaml(block, &origin);
        if doc.get("runtime").is_some() {
            configs.push((origin, doc));
        }
    }
    configs
}

/// Every place a runtime config is shown to users.
fn known_good() -> Vec<(String, Value)> {
    let root = repo();
    let mut configs = vec![(
        "examples/docker.yaml".to_string(),
        yaml(&read(&root.join("examples/docker.yaml")), "examples/docker.yaml"),
    )];
    for doc in ["docs/config.md", "docs/deploying-k8s.md", "README.md"] {
        configs.extend(documented_configs(&root.join(doc)));
    }
    // The compose example target's config, as its tests and docs/plugin-protocol.md use it.
    configs.push((
        "a compose config".to_string(),
        json!({"runtime": "compose", "parent": {"docker_image": "nvflare/nvflare:2.8.1", "network": "nvflare-network"}}),
    ));
    configs
}

/// The instance locations of every error `config` has under `runtime`'s schema.
fn error_paths(runtime: &str, config: &Value) -> Vec<String> {
    validator(runtime)
        .iter_errors(config)
        .map(|e| e.instance_path().as_str().to_string())
        .collect()
}

#[test]
fn every_documented_config_is_valid_under_its_schema() {
    let configs = known_good();
    for runtime in RUNTIMES {
        let of_runtime: Vec<&(String, Value)> = configs.iter().filter(|(_, c)| c["runtime"] == runtime).collect();
        assert!(!of_runtime.is_empty(), "no example config for {runtime}");
        let validator = validator(runtime);
        for (origin, config) in of_runtime {
            let errors: Vec<String> = validator
                .iter_errors(config)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{origin} is not valid under docs/schemas/{runtime}.json: {errors:?}"
            );
        }
    }
    let others: Vec<&String> = configs
        .iter()
        .filter(|(_, c)| !RUNTIMES.iter().any(|r| c["runtime"] == *r))
        .map(|(origin, _)| origin)
        .collect();
    assert!(
        others.is_empty(),
        "an example config of a runtime without a schema: {others:?}"
    );
}

/// The smallest valid config of each runtime, written out here (not taken from the
/// schema under test).
fn minimal(runtime: &str) -> Value {
    match runtime {
        "slurm" => {
            json!({"runtime": "slurm", "job_launcher": {"sandbox": "none", "python_path": "/opt/venv/bin/python"}})
        }
        _ => json!({"runtime": runtime, "parent": {"docker_image": "nvflare/nvflare:2.9.0"}}),
    }
}

/// A change that makes a valid config invalid.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn configs_with_a_wrong_type_an_unknown_key_or_a_missing_key_are_invalid() {
    for runtime in RUNTIMES {
        let good = minimal(runtime);
        assert_eq!(error_paths(runtime, &good), Vec::<String>::new(), "{runtime}: {good}");
        let section = if runtime == "slurm" { "job_launcher" } else { "parent" };
        let key = if runtime == "slurm" {
            "python_path"
        } else {
            "docker_image"
        };
        // (what, the mutation, the instance location that must be reported)
        let mutations: Vec<(&str, Mutation, String)> = vec![
            (
                "wrong type",
                Box::new(move |c: &mut Value| c[section][key] = json!(5)),
                format!("/{section}/{key}"),
            ),
            (
                "section of the wrong type",
                Box::new(move |c: &mut Value| c[section] = json!("text")),
                format!("/{section}"),
            ),
            (
                "unknown top-level key",
                Box::new(|c: &mut Value| c["no_such_key"] = json!(1)),
                String::new(),
            ),
            (
                "unknown key in a section",
                Box::new(move |c: &mut Value| c[section]["no_such_key"] = json!(1)),
                format!("/{section}"),
            ),
            (
                "missing required key",
                Box::new(move |c: &mut Value| {
                    c.as_object_mut().expect("object").remove(section);
                }),
                String::new(),
            ),
            (
                "unsupported release",
                Box::new(|c: &mut Value| c["nvflare_version"] = json!("3.0")),
                "/nvflare_version".to_string(),
            ),
            (
                "another runtime",
                Box::new(|c: &mut Value| c["runtime"] = json!("podman")),
                "/runtime".to_string(),
            ),
        ];
        for (what, mutate, at) in mutations {
            let mut bad = good.clone();
            mutate(&mut bad);
            let paths = error_paths(runtime, &bad);
            assert!(
                paths.contains(&at),
                "{runtime}, {what}: expected an error at {at:?}, got {paths:?} for {bad}"
            );
        }
    }
}
