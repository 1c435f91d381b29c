//! The installed NVFlare as an oracle for values the reference defines: its stable-name
//! function, its config error texts and its JSON writer. Each call is one Python process
//! for a whole batch of inputs (JSON on stdin, JSON on stdout), so that expectations come
//! from the reference itself and not from a copy of the code under test.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::tools;

/// One installed NVFlare release: its venv's python and the modules of its deploy tool.
pub struct Reference {
    python: PathBuf,
    /// Module holding `_stable_k8s_name` and the k8s validators.
    k8s_module: &'static str,
    /// Module holding `_write_json`.
    json_module: &'static str,
    /// Python expression validating a k8s config dict named `config`.
    validate_k8s: &'static str,
}

/// A config error as the reference reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceError {
    pub code: String,
    pub message: String,
    pub hint: String,
}

/// NVFlare 2.8.1 (`nvflare-venv`), or `None` after reporting it missing.
pub fn nvflare_2_8() -> Option<Reference> {
    let cli = tools::nvflare_cli("nvflare-venv", "2.8.1")?;
    Some(Reference {
        python: cli.with_file_name("python"),
        k8s_module: "nvflare.tool.deploy.deploy_commands",
        json_module: "nvflare.tool.deploy.deploy_commands",
        validate_k8s: "k8s._validate_runtime_config('k8s', config)",
    })
}

/// NVFlare 2.9.0 (`nvflare29-venv`), or `None` after reporting it missing.
pub fn nvflare_2_9() -> Option<Reference> {
    let cli = tools::nvflare_2_9()?;
    Some(Reference {
        python: cli.with_file_name("python"),
        k8s_module: "nvflare.tool.deploy.k8s_deploy",
        json_module: "nvflare.tool.deploy.deploy_common",
        validate_k8s: "k8s.validate_config(config)",
    })
}

/// Imports shared by the scripts: the reference's modules as `k8s` and `common`, and
/// `_fail` replaced (in both) by an exception that carries code, message and hint.
const PRELUDE: &str = r#"
import importlib, json, sys, tempfile, pathlib
k8s = importlib.import_module(K8S_MODULE)
common = importlib.import_module(JSON_MODULE)
class Failed(Exception):
    pass
def _fail(code, message, hint=""):
    raise Failed(code, message, hint)
k8s._fail = _fail
common._fail = _fail
inputs = json.load(sys.stdin)
"#;

impl Reference {
    /// Runs `body` after the prelude with `inputs` on stdin; returns the JSON it prints.
    fn run(&self, body: &str, inputs: &Value) -> Value {
        let script = PRELUDE
            .replace("K8S_MODULE", &format!("{:?}", self.k8s_module))
            .replace("JSON_MODULE", &format!("{:?}", self.json_module))
            + body;
        let mut child = Command::new(&self.python)
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.python.display()));
        let stdin_text = serde_json::to_string(inputs).expect("inputs to JSON");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin_text.as_bytes())
            .expect("write the oracle's input");
        let out = child.wait_with_output().expect("oracle output");
        assert!(
            out.status.success(),
            "the NVFlare oracle failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "the NVFlare oracle printed no JSON ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The reference's `_stable_k8s_name(raw, max_length)` of every input.
    pub fn stable_k8s_names(&self, inputs: &[(&str, usize)]) -> Vec<String> {
        let body = "print(json.dumps([k8s._stable_k8s_name(raw, n) for raw, n in inputs]))\n";
        let inputs: Vec<Value> = inputs.iter().map(|(raw, n)| json!([raw, n])).collect();
        strings(self.run(body, &Value::Array(inputs)))
    }

    /// The exact text the reference's `_write_json` writes for every document.
    pub fn write_json(&self, documents: &[Value]) -> Vec<String> {
        // Key order survives: json.load builds dicts in document order.
        let body = r#"
out = []
with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / "doc.json"
    for doc in inputs:
        common._write_json(path, doc)
        out.append(path.read_text(encoding="utf-8"))
print(json.dumps(out))
"#;
        strings(self.run(body, &Value::Array(documents.to_vec())))
    }

    /// What the reference's k8s config validation reports for every config (`None` when
    /// it accepts the config).
    pub fn k8s_config_errors(&self, configs: &[Value]) -> Vec<Option<ReferenceError>> {
        let body = format!(
            r#"
out = []
for config in inputs:
    try:
        {}
        out.append(None)
    except Failed as failed:
        out.append(list(failed.args))
print(json.dumps(out))
"#,
            self.validate_k8s
        );
        let answers = self.run(&body, &Value::Array(configs.to_vec()));
        answers
            .as_array()
            .expect("a list of answers")
            .iter()
            .map(|answer| {
                let fields = answer.as_array()?;
                let field = |i: usize| fields[i].as_str().expect("error field").to_string();
                Some(ReferenceError {
                    code: field(0),
                    message: field(1),
                    hint: field(2),
                })
            })
            .collect()
    }
}

fn strings(value: Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}
