//! Running the Kubernetes CLI for `stage` and `unstage`: which one (`--kubectl`,
//! `KUBECTL`, `kubectl`), applying a manifest on stdin, deleting, and the errors
//! (docs/dev/nvflare-2.9-behaviour.md B.6, B.8). Secret contents never reach a message:
//! whatever kubectl prints is passed through a [`Redactor`] first.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use flare_deploy_core::{shell, Error, ErrorCode, Result};

/// The Kubernetes CLIs stage and unstage accept.
pub const ALLOWED: [&str; 2] = ["kubectl", "oc"];
/// The environment variable naming the CLI when `--kubectl` is not given.
pub const ENV: &str = "KUBECTL";
/// Arguments of an apply: server-side, so that no `last-applied-configuration`
/// annotation copies the Secret's data (and limits the object to 256 KiB).
pub const APPLY_ARGS: [&str; 6] = [
    "apply",
    "--server-side",
    "--force-conflicts",
    "--field-manager=flare-deploy",
    "-f",
    "-",
];

/// The CLI: `--kubectl`, else `KUBECTL` (when not empty), else `kubectl`; trimmed; one
/// of [`ALLOWED`]. Both sources get the same checks and messages.
pub fn resolve(option: Option<&str>) -> Result<String> {
    let from_env = std::env::var(ENV).ok().filter(|v| !v.is_empty());
    let raw = option
        .map(str::to_string)
        .or(from_env)
        .unwrap_or_else(|| "kubectl".to_string());
    let name = raw.trim();
    if name.is_empty() {
        return Err(Error::invalid_args(
            "Kubernetes CLI command must be a non-empty string.",
            "Set --kubectl or KUBECTL.",
        ));
    }
    if !ALLOWED.contains(&name) {
        // The rejected value is not echoed: it may be a path with a user name in it.
        return Err(Error::invalid_args(
            "Kubernetes CLI command must be one of ['kubectl', 'oc'].",
            "Set --kubectl or KUBECTL to kubectl or oc.",
        ));
    }
    Ok(name.to_string())
}

fn not_found(program: &str) -> Error {
    Error::new(
        ErrorCode::KubectlNotFound,
        format!("Kubernetes CLI executable could not be started: {program}"),
        "Install kubectl or set --kubectl/KUBECTL to a compatible command such as oc.",
    )
}

/// `program` as `PATH` lookup finds it (what the spawn will run).
fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Fails with `KUBECTL_NOT_FOUND` when `program` is not on `PATH`, before anything is
/// recorded (the reference records first and leaves a kit that looks staged).
pub fn check_available(program: &str) -> Result<()> {
    match on_path(program) {
        Some(path) => {
            tracing::debug!(program, path = %path.display(), "Kubernetes CLI found");
            Ok(())
        }
        None => Err(not_found(program)),
    }
}

/// Removes secret material from text a command printed.
#[derive(Debug, Default)]
pub struct Redactor {
    /// Texts that must not appear: the Secret's base64 values and the lines of its files.
    needles: Vec<String>,
}

/// Shorter lines of a secret file are not looked for (they would match ordinary words).
const MIN_LINE: usize = 8;
/// A base64 run this long that occurs in a secret value is a fragment of it.
const MIN_FRAGMENT: usize = 16;

impl Redactor {
    /// Remembers the base64 value `encoded` of secret `bytes`.
    pub fn add(&mut self, encoded: &str, bytes: &[u8]) {
        self.needles.push(encoded.to_string());
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines().map(str::trim).filter(|l| l.chars().count() >= MIN_LINE) {
            self.needles.push(line.to_string());
        }
    }

    /// `text` with every secret text, and every base64 run of at least 16 characters
    /// that is part of a secret value, replaced by `<redacted>`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        let mut needles: Vec<&String> = self.needles.iter().collect();
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        for needle in needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), "<redacted>");
            }
        }
        let is_b64 = |c: char| c.is_ascii_alphanumeric() || "+/=".contains(c);
        let mut result = String::with_capacity(out.len());
        let mut run = String::new();
        let flush = |run: &mut String, result: &mut String| {
            let secret = run.len() >= MIN_FRAGMENT && self.needles.iter().any(|n| n.contains(run.as_str()));
            result.push_str(if secret { "<redacted>" } else { run.as_str() });
            run.clear();
        };
        for c in out.chars() {
            if is_b64(c) {
                run.push(c);
            } else {
                flush(&mut run, &mut result);
                result.push(c);
            }
        }
        flush(&mut run, &mut result);
        result
    }
}

/// Runs `argv` with `stdin` (if any). A non-zero exit is `KUBECTL_FAILED` with `shown`
/// as the command (it may mask names) and kubectl's own words, redacted.
pub fn run(argv: &[String], stdin: Option<&[u8]>, shown: &[String], redactor: &Redactor) -> Result<()> {
    let shown_text = shown.iter().map(|w| shell::quote(w)).collect::<Vec<_>>().join(" ");
    tracing::debug!(command = %shown_text, "running the Kubernetes CLI");
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::internal("empty kubectl command"))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            tracing::debug!(error = %e, "cannot start the Kubernetes CLI");
            not_found(program)
        })?;
    // Written from a thread, so that a CLI that prints before reading cannot deadlock.
    let writer = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => {
            let bytes = bytes.to_vec();
            Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let output = child.wait_with_output().map_err(|e| {
        Error::new(
            ErrorCode::KubectlFailed,
            format!("Kubernetes command failed: {shown_text}\n{e}"),
            "Check kubectl access, namespace, and resource quotas.",
        )
    })?;
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    tracing::debug!(status = %output.status, "the Kubernetes CLI finished");
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let detail = match stderr.trim() {
        "" => stdout.trim().to_string(),
        text => text.to_string(),
    };
    let mut message = format!("Kubernetes command failed: {shown_text}");
    if !detail.is_empty() {
        message.push('\n');
        message.push_str(&redactor.redact(&detail));
    }
    Err(Error::new(
        ErrorCode::KubectlFailed,
        message,
        "Check kubectl access, namespace, and resource quotas.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_values_fragments_and_lines() {
        let mut redactor = Redactor::default();
        let secret = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n";
        redactor.add(
            "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV2UUlCQURBTkJna3Foa2lHOXcwQkFRRUZBQVND",
            secret,
        );
        let text = "error: data: LS0tLS1CRUdJTiBQUklWQVRFIEtF (truncated)\nline MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nok: short abc";
        let redacted = redactor.redact(text);
        assert!(!redacted.contains("LS0tLS1CRUdJTiBQUklWQVRFIEtF"), "{redacted}");
        assert!(!redacted.contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), "{redacted}");
        assert!(redacted.contains("ok: short abc"), "{redacted}");
        assert!(
            redacted.starts_with("error: data: <redacted> (truncated)"),
            "{redacted}"
        );
    }
}
