//! Runs a generated `start_docker.sh` under bash with a stub `docker` first on PATH that
//! records every invocation's argv, so tests see exactly what the script would run.

use std::path::Path;
use std::process::Command;

use crate::kitgen::write;

const STUB_DOCKER: &str = r#"#!/usr/bin/env bash
# Records argv (NUL-separated, one CALL marker per invocation); `network inspect`
# reports a missing network so that the script creates it.
{ printf 'CALL\0'; printf '%s\0' "$@"; } >> "$DOCKER_STUB_LOG"
if [ "$1" = network ] && [ "$2" = inspect ]; then exit 1; fi
exit 0
"#;

/// What the script did.
pub struct ScriptRun {
    /// argv of every `docker` call, in order.
    pub calls: Vec<Vec<String>>,
    pub stdout: String,
    pub status: i32,
}

impl ScriptRun {
    /// The argv of the `docker run` call.
    pub fn run_call(&self) -> &[String] {
        self.calls
            .iter()
            .find(|c| c.first().is_some_and(|a| a == "run"))
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("no docker run call in {:?}", self.calls))
    }
}

pub fn run_script(script: &Path, extra_env: &[(&str, &str)]) -> ScriptRun {
    let stub_dir = tempfile::tempdir().expect("stub dir");
    write(&stub_dir.path().join("docker"), STUB_DOCKER, 0o755);
    let log = stub_dir.path().join("calls.log");
    let path = format!(
        "{}:{}",
        stub_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .env("PATH", path)
        .env("DOCKER_STUB_LOG", &log)
        .env_remove("NVFL_P_IMAGE")
        .current_dir(stub_dir.path());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run bash");
    let raw = std::fs::read(&log).unwrap_or_default();
    let mut calls: Vec<Vec<String>> = Vec::new();
    // Every field ends with a NUL, so the last split piece is empty.
    let fields: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    for field in &fields[..fields.len().saturating_sub(1)] {
        let text = String::from_utf8_lossy(field).into_owned();
        if text == "CALL" {
            calls.push(Vec::new());
        } else if let Some(last) = calls.last_mut() {
            last.push(text);
        }
    }
    ScriptRun {
        calls,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        status: out.status.code().unwrap_or(-1),
    }
}
