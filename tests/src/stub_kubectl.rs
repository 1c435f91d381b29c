//! A recording `kubectl` (and `oc`) first on `PATH`, for `k8s stage` / `unstage` tests
//! (ours and nvflare 2.9.0's): every call's program, argv and stdin are kept, and a call
//! fails on demand.
//!
//! Environment the stub reads:
//! - `KUBECTL_STUB_LOG`: the directory of the records (set by [`StubKubectl::env`]);
//! - `KUBECTL_STUB_FAIL_AT=<n>`: calls number `n` (0-based) and later exit 1;
//! - `KUBECTL_STUB_STDERR` / `KUBECTL_STUB_STDOUT`: what a failing call prints
//!   (default stderr `error: forbidden`);
//! - `KUBECTL_STUB_ECHO_STDIN=1`: a failing call also prints its stdin on stderr (a CLI
//!   that shows the manifest it could not apply).

use std::path::{Path, PathBuf};

use crate::kitgen::write;

const STUB: &str = r#"#!/bin/bash
# Records one call: <n>.argv (program and arguments, NUL-separated) and <n>.stdin.
log="$KUBECTL_STUB_LOG"
shopt -s nullglob
calls=("$log"/*.argv)
n=${#calls[@]}
printf '%s\0' "${0##*/}" "$@" > "$log/$n.argv"
input=""
IFS= read -r -d '' input || true
printf '%s' "$input" > "$log/$n.stdin"
if [ -n "${KUBECTL_STUB_FAIL_AT:-}" ] && [ "$n" -ge "$KUBECTL_STUB_FAIL_AT" ]; then
    if [ -n "${KUBECTL_STUB_STDOUT:-}" ]; then printf '%s\n' "$KUBECTL_STUB_STDOUT"; fi
    if [ -n "${KUBECTL_STUB_STDERR-error: forbidden}" ]; then printf '%s\n' "${KUBECTL_STUB_STDERR-error: forbidden}" >&2; fi
    if [ "${KUBECTL_STUB_ECHO_STDIN:-}" = 1 ]; then printf '%s\n' "$input" >&2; fi
    exit 1
fi
echo "applied"
"#;

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `kubectl` or `oc`.
    pub program: String,
    pub args: Vec<String>,
    pub stdin: String,
}

/// The stub's directories: `bin/` (kubectl, oc), `log/` (records) and an empty
/// directory for a `PATH` without any Kubernetes CLI.
pub struct StubKubectl {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    log: PathBuf,
    empty: PathBuf,
}

impl Default for StubKubectl {
    fn default() -> Self {
        Self::new()
    }
}

impl StubKubectl {
    pub fn new() -> StubKubectl {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let (bin, log, empty) = (root.join("bin"), root.join("log"), root.join("empty"));
        for d in [&bin, &log, &empty] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        for program in ["kubectl", "oc"] {
            write(&bin.join(program), STUB, 0o755);
        }
        StubKubectl {
            _dir: dir,
            bin,
            log,
            empty,
        }
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// `PATH` with the stub first (a real kubectl may be installed in /usr/bin), the log
    /// directory, and `KUBECTL` empty (so the developer's own setting cannot leak in;
    /// empty counts as unset).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "PATH".into(),
                format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.display()),
            ),
            ("KUBECTL_STUB_LOG".into(), self.log.display().to_string()),
            ("KUBECTL".into(), String::new()),
        ]
    }

    /// [`env`](Self::env) with `PATH` holding no Kubernetes CLI at all.
    pub fn env_without_cli(&self) -> Vec<(String, String)> {
        let mut env = self.env();
        env[0].1 = self.empty.display().to_string();
        env
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        let mut calls = Vec::new();
        for n in 0.. {
            let Ok(argv) = std::fs::read(self.log.join(format!("{n}.argv"))) else {
                break;
            };
            let mut words: Vec<String> = argv
                .split(|b| *b == 0)
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            words.pop(); // after the last NUL
            let stdin = std::fs::read_to_string(self.log.join(format!("{n}.stdin"))).unwrap_or_default();
            let program = words.remove(0);
            calls.push(Call {
                program,
                args: words,
                stdin,
            });
        }
        calls
    }

    /// Forgets the calls so far.
    pub fn clear(&self) {
        for entry in std::fs::read_dir(&self.log).expect("read log").flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `(&str, &str)` pairs of `env` for the harness.
pub fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
