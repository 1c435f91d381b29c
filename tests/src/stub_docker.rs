//! Runs a generated `start_docker.sh` under bash with a stub `docker` first on PATH that
//! records every invocation's argv, so tests see exactly what the script would run.
//!
//! [`run_script`] runs with the stub's defaults; [`Stub`] sets what the stub answers
//! (docker context, daemon check, existing networks, the 2.9 daemon-host socket probe),
//! extra stub programs (e.g. `uname`), the working directory and bash options.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::kitgen::write;

const STUB_DOCKER: &str = r#"#!/usr/bin/env bash
# Records argv (NUL-separated, one CALL marker per invocation), then answers like the
# docker CLI would, as configured by DOCKER_STUB_* variables:
#   context show     prints DOCKER_STUB_CONTEXT (nothing when unset)
#   context inspect  prints DOCKER_STUB_CONTEXT_HOST (exit 1 when unset)
#   info             exits DOCKER_STUB_INFO_RC (0)
#   network inspect  exits 0 when DOCKER_STUB_NETWORK_EXISTS=1 or when the name is one
#                    of the lines of DOCKER_STUB_NETWORKS (exact match), else 1 (so the
#                    script creates the network)
#   network ls       a header, then a line for each name in DOCKER_STUB_NETWORKS that
#                    contains the `--filter name=X` value (Docker's filter is a substring
#                    match), as the reference's `network ls | grep -w` probe reads it
#   container inspect  exits 0 when DOCKER_STUB_CONTAINER_EXISTS=1, else 1 (no parent
#                    container of that name runs yet)
#   run --entrypoint (the socket probe) prints DOCKER_STUB_PROBE_OUTPUT and exits
#                    DOCKER_STUB_PROBE_RC (0); without DOCKER_STUB_PROBE_OUTPUT it runs the
#                    probe's python on this machine, with the --mount source as the socket
# Everything else exits 0.
{ printf 'CALL\0'; printf '%s\0' "$@"; } >> "$DOCKER_STUB_LOG"
while [ $# -gt 0 ]; do
    case "$1" in
        -H | --host | -c | --context | --config | -l | --log-level) shift 2 ;;
        --host=* | --context=* | --config=* | --log-level=* | -D | --debug) shift ;;
        *) break ;;
    esac
done
case "${1:-} ${2:-}" in
    "context show")
        if [ -n "${DOCKER_STUB_CONTEXT:-}" ]; then printf '%s\n' "$DOCKER_STUB_CONTEXT"; fi
        exit 0
        ;;
    "context inspect")
        if [ -z "${DOCKER_STUB_CONTEXT_HOST+set}" ]; then exit 1; fi
        printf '%s\n' "$DOCKER_STUB_CONTEXT_HOST"
        exit 0
        ;;
    "info "*) exit "${DOCKER_STUB_INFO_RC:-0}" ;;
    "network inspect")
        if [ "${DOCKER_STUB_NETWORK_EXISTS:-}" = 1 ]; then exit 0; fi
        while IFS= read -r existing; do
            if [ -n "$existing" ] && [ "$existing" = "${3:-}" ]; then exit 0; fi
        done <<< "${DOCKER_STUB_NETWORKS:-}"
        exit 1
        ;;
    "network ls")
        filter=""
        shift 2
        while [ $# -gt 0 ]; do
            case "$1" in
                --filter | -f) filter=${2#name=}; shift 2 ;;
                --filter=*) filter=${1#--filter=}; filter=${filter#name=}; shift ;;
                *) shift ;;
            esac
        done
        printf 'NETWORK ID     NAME      DRIVER    SCOPE\n'
        while IFS= read -r existing; do
            if [ -n "$existing" ] && [[ "$existing" == *"$filter"* ]]; then
                printf '0123456789ab   %s   bridge    local\n' "$existing"
            fi
        done <<< "${DOCKER_STUB_NETWORKS:-}"
        exit 0
        ;;
    "container inspect")
        if [ "${DOCKER_STUB_CONTAINER_EXISTS:-}" = 1 ]; then exit 0; fi
        exit 1
        ;;
esac
if [ "${1:-}" = run ]; then
    mount="" code="" probe=false
    while [ $# -gt 0 ]; do
        case "$1" in
            --mount) mount=$2; shift ;;
            --entrypoint) probe=true; shift ;;
            -c) code=$2; shift ;;
        esac
        shift
    done
    if [ "$probe" = true ]; then
        if [ -n "${DOCKER_STUB_PROBE_OUTPUT+set}" ]; then
            printf '%s\n' "$DOCKER_STUB_PROBE_OUTPUT"
            exit "${DOCKER_STUB_PROBE_RC:-0}"
        fi
        src=${mount#type=bind,}
        src=${src%,dst=/var/run/docker.sock}
        src=${src#src=}
        exec python3 -c "${code//\/var\/run\/docker.sock/"$src"}"
    fi
fi
exit 0
"#;

/// Variables the script or the stub read; cleared so the host's values never leak in.
const CLEARED_ENV: [&str; 14] = [
    "NVFL_P_IMAGE",
    "NVFL_DOCKER_SOCK",
    "NVFL_DOCKER_SOCK_GID",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_STUB_CONTEXT",
    "DOCKER_STUB_CONTEXT_HOST",
    "DOCKER_STUB_INFO_RC",
    "DOCKER_STUB_NETWORK_EXISTS",
    "DOCKER_STUB_NETWORKS",
    "DOCKER_STUB_CONTAINER_EXISTS",
    "DOCKER_STUB_PROBE_OUTPUT",
    "DOCKER_STUB_PROBE_RC",
    "CDPATH",
];

/// What the script did.
pub struct ScriptRun {
    /// argv of every `docker` call, in order.
    pub calls: Vec<Vec<String>>,
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
}

impl ScriptRun {
    /// The argv of the `docker run` call that starts the parent container.
    pub fn run_call(&self) -> &[String] {
        self.calls
            .iter()
            .find(|c| is_parent_run(c))
            .or_else(|| {
                self.calls
                    .iter()
                    .find(|c| command(c).first().is_some_and(|a| a == "run"))
            })
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("no docker run call in {:?}", self.calls))
    }

    /// Whether the parent container was started (`docker run --name ...`).
    pub fn ran_parent(&self) -> bool {
        self.calls.iter().any(|c| is_parent_run(c))
    }
}

fn is_parent_run(call: &[String]) -> bool {
    command(call).starts_with(&["run".to_string(), "--name".to_string()])
}

/// A docker call without its leading `--host <endpoint>` (the 2.9 script pins the
/// daemon that way): the subcommand and its arguments.
pub fn command(call: &[String]) -> &[String] {
    match call {
        [host, _, rest @ ..] if host == "--host" => rest,
        _ => call,
    }
}

/// A stub docker configuration for one script run.
#[derive(Debug, Clone, Default)]
pub struct Stub {
    env: Vec<(String, String)>,
    programs: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    bash_options: Vec<String>,
    wrapper: Vec<String>,
}

impl Stub {
    pub fn new() -> Self {
        Stub::default()
    }

    /// An environment variable for the script.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// `docker context show` prints `name`; `docker context inspect` prints `host`.
    pub fn context(self, name: &str, host: &str) -> Self {
        self.env("DOCKER_STUB_CONTEXT", name)
            .env("DOCKER_STUB_CONTEXT_HOST", host)
    }

    /// `docker info` fails.
    pub fn daemon_down(self) -> Self {
        self.env("DOCKER_STUB_INFO_RC", "1")
    }

    /// `docker network inspect` finds the network.
    pub fn network_exists(self) -> Self {
        self.env("DOCKER_STUB_NETWORK_EXISTS", "1")
    }

    /// `docker network inspect NAME` finds exactly the networks named in `names` (no
    /// prefix or pattern matching), and no other.
    pub fn networks(self, names: &[&str]) -> Self {
        self.env("DOCKER_STUB_NETWORKS", &names.join("\n"))
    }

    /// `docker container inspect` finds a container (the site's parent already runs).
    pub fn container_exists(self) -> Self {
        self.env("DOCKER_STUB_CONTAINER_EXISTS", "1")
    }

    /// The socket probe container prints `output` and exits `code` (by default the stub
    /// runs the probe's python against the `--mount` source on this machine).
    pub fn probe_answers(self, output: &str, code: i32) -> Self {
        self.env("DOCKER_STUB_PROBE_OUTPUT", output)
            .env("DOCKER_STUB_PROBE_RC", &code.to_string())
    }

    /// Another program on PATH before the real ones, e.g. a `uname` that says `Darwin`.
    pub fn program(mut self, name: &str, script: &str) -> Self {
        self.programs.push((name.to_string(), script.to_string()));
        self
    }

    /// The working directory of the script (default: the stub's directory).
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// An option for bash, e.g. `-u`.
    pub fn bash_option(mut self, option: &str) -> Self {
        self.bash_options.push(option.to_string());
        self
    }

    /// Runs `bash` through `wrapper` (a program and its arguments, e.g. `unshare ...`),
    /// which is given `bash`, the bash options and the script as further arguments.
    pub fn wrap(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn run(&self, script: &Path) -> ScriptRun {
        let stub_dir = tempfile::tempdir().expect("stub dir");
        write(&stub_dir.path().join("docker"), STUB_DOCKER, 0o755);
        for (name, text) in &self.programs {
            write(&stub_dir.path().join(name), text, 0o755);
        }
        let log = stub_dir.path().join("calls.log");
        let path = format!(
            "{}:{}",
            stub_dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg("bash");
                cmd
            }
            None => Command::new("bash"),
        };
        cmd.args(&self.bash_options)
            .arg(script)
            .env("PATH", path)
            .env("DOCKER_STUB_LOG", &log)
            .current_dir(self.cwd.as_deref().unwrap_or(stub_dir.path()));
        for key in CLEARED_ENV {
            cmd.env_remove(key);
        }
        for (k, v) in &self.env {
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
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            status: out.status.code().unwrap_or(-1),
        }
    }
}

/// Runs `script` with the stub's defaults and `extra_env`.
pub fn run_script(script: &Path, extra_env: &[(&str, &str)]) -> ScriptRun {
    extra_env
        .iter()
        .fold(Stub::new(), |stub, (k, v)| stub.env(k, v))
        .run(script)
}
