//! One conversation with a plugin process: newline-delimited JSON requests on its
//! stdin, one response line each on its stdout, every answer within the timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::confine::{refused_path, Enforcement, Sandbox};
use crate::error::{Error, ErrorCode, Result};

/// The newest protocol version this engine speaks: version 2 is version 1 plus actions
/// (`describe` may list them; the `action` request runs one); version 3 is version 2
/// plus `keep_resource_manager` in the `launcher` edit.
pub const PROTOCOL_VERSION: u64 = 3;
/// Every version this engine speaks, offered in the handshake; the plugin picks one.
pub const PROTOCOL_VERSIONS: [u64; 3] = [1, 2, 3];
/// The version of the handshake request itself, which every plugin understands.
const HANDSHAKE_VERSION: u64 = 1;
const STDERR_KEEP: usize = 4096;
/// How much of a line that is not JSON is quoted in the error.
const QUOTE_KEEP: usize = 200;

pub struct Session {
    path: PathBuf,
    /// The runtime name the plugin was found under.
    name: String,
    child: Child,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    stdin: Option<ChildStdin>,
    lines: Receiver<std::io::Result<String>>,
    stderr: Arc<Mutex<String>>,
    timeout: Duration,
    next_id: u64,
    /// The version the plugin chose in the handshake.
    version: u64,
    /// Where the plugin may write; dropped (its temporary directory removed) last.
    sandbox: Sandbox,
    cwd: PathBuf,
}

fn plugin_error(code: ErrorCode, path: &Path, what: impl std::fmt::Display, hint: &str) -> Error {
    Error::new(code, format!("Plugin {}: {what}", path.display()), hint)
}

impl Session {
    /// Starts the plugin, confined to `sandbox`, and checks the protocol version and the
    /// name it answers to.
    pub fn start(
        path: &Path,
        expected_name: &str,
        cwd: Option<&Path>,
        timeout: Duration,
        mut sandbox: Sandbox,
    ) -> Result<Session> {
        if !super::is_executable(path) {
            return Err(plugin_error(
                ErrorCode::PluginNotExecutable,
                path,
                "the file is not executable",
                "Make it executable (chmod +x) or remove it from the plugin path.",
            ));
        }
        let mut command = Command::new(path);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so that a timeout kills whatever the plugin started too.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        if let Some(dir) = cwd {
            command.current_dir(dir);
        }
        let mut child = sandbox.spawn(&mut command).map_err(|e| {
            plugin_error(
                ErrorCode::PluginNotExecutable,
                path,
                format_args!("cannot start: {e}"),
                "Check the plugin's interpreter line and permissions.",
            )
        })?;
        let stdin = child.stdin.take();
        let (sender, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let stop = line.is_err();
                    if sender.send(line).is_err() || stop {
                        break;
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut stderr_reader = None;
        if let Some(mut pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            stderr_reader = Some(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut text) = sink.lock() {
                        text.push_str(&String::from_utf8_lossy(&buf[..n]));
                        if text.len() > STDERR_KEEP * 2 {
                            let cut = text.len() - STDERR_KEEP;
                            let cut = (cut..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(cut);
                            text.drain(..cut);
                        }
                    }
                }
            }));
        }
        let mut session = Session {
            path: path.to_path_buf(),
            name: expected_name.to_string(),
            child,
            stderr_reader,
            stdin,
            lines,
            stderr,
            timeout,
            next_id: 0,
            version: HANDSHAKE_VERSION,
            sandbox,
            cwd: match cwd {
                Some(dir) => dir.to_path_buf(),
                None => std::env::current_dir().unwrap_or_default(),
            },
        };
        let answer = session.call(
            "handshake",
            json!({"protocol_versions": PROTOCOL_VERSIONS, "engine": concat!("flare-deploy ", env!("CARGO_PKG_VERSION"))}),
        )?;
        let version = answer.get("protocol_version").and_then(Value::as_u64);
        match version {
            Some(v) if PROTOCOL_VERSIONS.contains(&v) => session.version = v,
            _ => {
                return Err(session.protocol_error(format!(
                    "speaks protocol version {}; this flare-deploy speaks versions {}",
                    answer
                        .get("protocol_version")
                        .map_or("(none)".to_string(), Value::to_string),
                    spoken_versions()
                )))
            }
        }
        let name = answer.get("name").and_then(Value::as_str).unwrap_or_default();
        if name != expected_name {
            return Err(session.protocol_error(format!(
                "answers to runtime '{name}', but was found as the plugin for '{expected_name}'"
            )));
        }
        Ok(session)
    }

    /// The protocol version agreed in the handshake.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn protocol_error(&self, what: impl std::fmt::Display) -> Error {
        plugin_error(
            ErrorCode::PluginProtocol,
            &self.path,
            what,
            "Update the plugin or flare-deploy so that both speak the same protocol (docs/plugin-protocol.md).",
        )
    }

    /// The end of what the plugin wrote on stderr, once the pipe is drained (bounded
    /// wait: a grandchild may hold the pipe open).
    fn stderr_tail(&mut self) -> String {
        if let Some(reader) = self.stderr_reader.take() {
            let start = Instant::now();
            while !reader.is_finished() && start.elapsed() < Duration::from_secs(1) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        let text = self.stderr.lock().map(|t| t.clone()).unwrap_or_default();
        let text = text.trim();
        if text.is_empty() {
            String::new()
        } else {
            let start = text.len().saturating_sub(STDERR_KEEP);
            let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(start);
            format!(" Its stderr: {}", &text[start..])
        }
    }

    /// The failure when the plugin stopped answering: its exit status and stderr.
    fn exited_error(&mut self, method: &str) -> Error {
        let status = self.wait_exit(Duration::from_secs(2));
        let status = status.map_or("did not exit".to_string(), |s| s.to_string());
        let tail = self.stderr_tail();
        plugin_error(
            ErrorCode::PluginFailed,
            &self.path,
            format_args!("exited without answering '{method}' ({status}).{tail}"),
            "Run the plugin by hand to see what fails (docs/plugin-protocol.md).",
        )
    }

    fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if start.elapsed() < within => std::thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    pub fn enforcement(&self) -> &Enforcement {
        self.sandbox.enforcement()
    }

    /// A failure of a confined plugin that reports a refused write outside its sandbox
    /// (in its error or on stderr) is that refusal, whatever the plugin made of it.
    fn explain(&self, err: Error) -> Error {
        if *self.sandbox.enforcement() != Enforcement::Full || err.code == ErrorCode::PluginWroteOutside {
            return err;
        }
        let stderr = self.stderr.lock().map(|t| t.clone()).unwrap_or_default();
        let text = format!("{}\n{}\n{stderr}", err.message, err.hint);
        match refused_path(&text, &self.sandbox, &self.cwd) {
            Some(path) => Error::new(
                ErrorCode::PluginWroteOutside,
                format!(
                    "Plugin {} tried to write outside its staging directory: {} (the kernel refused it; nothing outside the staging directory changed)",
                    self.path.display(),
                    path.display()
                ),
                "A plugin may only write below the staging_dir it is given and its $TMPDIR; fix the plugin.",
            ),
            None => err,
        }
    }

    /// Sends one request and returns its `result`, or the plugin's `error` as ours.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.exchange(method, params).map_err(|e| self.explain(e))
    }

    fn exchange(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"protocol": self.version, "id": id, "method": method, "params": params});
        let mut line = serde_json::to_string(&request).map_err(Error::internal)?;
        line.push('\n');
        let written = self
            .stdin
            .as_mut()
            .map(|stdin| stdin.write_all(line.as_bytes()).and_then(|()| stdin.flush()));
        if !matches!(written, Some(Ok(()))) {
            return Err(self.exited_error(method));
        }
        tracing::debug!(plugin = %self.path.display(), method, "request sent");
        let response = match self.lines.recv_timeout(self.timeout) {
            Ok(Ok(text)) => text,
            Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => return Err(self.exited_error(method)),
            Err(RecvTimeoutError::Timeout) => {
                self.kill_group();
                return Err(plugin_error(
                    ErrorCode::PluginTimeout,
                    &self.path,
                    format_args!("no answer to '{method}' within {:.1} s", self.timeout.as_secs_f64()),
                    "Fix the plugin, or allow it more time with FLARE_DEPLOY_PLUGIN_TIMEOUT=<seconds>.",
                ));
            }
        };
        let value: Value = serde_json::from_str(&response).map_err(|e| {
            self.protocol_error(format_args!(
                "answered '{method}' with a line that is not JSON ({e}): {}",
                quote_line(&response)
            ))
        })?;
        if value.get("id").and_then(Value::as_u64) != Some(id) {
            return Err(self.protocol_error(format_args!("answered '{method}' without its request id {id}")));
        }
        if let Some(error) = value.get("error") {
            let text = |k: &str| error.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let code = match text("code").as_str() {
                "INVALID_ARGS" => ErrorCode::InvalidArgs,
                "INVALID_CONFIG" => ErrorCode::InvalidConfig,
                "INVALID_KIT" => ErrorCode::InvalidKit,
                "UNSUPPORTED_KIT" => ErrorCode::UnsupportedKit,
                _ => ErrorCode::PluginFailed,
            };
            // The plugin's own words, said to be its own: the user must know whom to ask.
            let message = match text("message") {
                m if m.is_empty() => format!(
                    "The plugin '{}' reported a failure of '{method}' without a message.",
                    self.name
                ),
                m => format!("The plugin '{}' reported: {m}", self.name),
            };
            let hint = match text("hint") {
                h if h.is_empty() => "Check the plugin's documentation.".to_string(),
                h => h,
            };
            return Err(Error::new(code, message, hint));
        }
        value
            .get("result")
            .cloned()
            .ok_or_else(|| self.protocol_error(format_args!("answered '{method}' with neither result nor error")))
    }

    /// Closes stdin and expects the plugin to exit with status 0.
    pub fn finish(mut self) -> Result<()> {
        let done = self.close();
        done.map_err(|e| self.explain(e))
    }

    fn close(&mut self) -> Result<()> {
        drop(self.stdin.take());
        let exit = self.wait_exit(self.timeout);
        let tail = if exit.is_some_and(|s| !s.success()) {
            self.stderr_tail()
        } else {
            String::new()
        };
        match exit {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(plugin_error(
                ErrorCode::PluginFailed,
                &self.path,
                format_args!("exited with {status}.{tail}"),
                "Run the plugin by hand to see what fails (docs/plugin-protocol.md).",
            )),
            None => Err(plugin_error(
                ErrorCode::PluginTimeout,
                &self.path,
                format_args!(
                    "did not exit within {:.1} s after its last request",
                    self.timeout.as_secs_f64()
                ),
                "A plugin must exit when its stdin closes.",
            )),
        }
    }
}

impl Session {
    /// Kills the plugin and everything in its process group, and reaps it. Only while
    /// the plugin is unreaped is its group id sure to be ours.
    fn kill_group(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_process_group(self.child.id());
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// "1, 2 and 3": the versions offered in the handshake, for messages.
fn spoken_versions() -> String {
    let names: Vec<String> = PROTOCOL_VERSIONS.iter().map(u64::to_string).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// A line as a JSON string, cut after [`QUOTE_KEEP`] characters (saying how long it was).
fn quote_line(line: &str) -> String {
    let total = line.chars().count();
    if total <= QUOTE_KEEP {
        return Value::from(line).to_string();
    }
    let kept: String = line.chars().take(QUOTE_KEEP).collect();
    format!("{}... ({total} characters in all)", Value::from(kept))
}

fn kill_process_group(pid: u32) {
    let group = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw);
    if let Some(group) = group {
        // The group may already be gone: nothing left to kill.
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Whatever the plugin left running in its group goes with it.
        self.kill_group();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_is_not_json_is_quoted_and_cut() {
        assert_eq!(quote_line("this is not JSON"), "\"this is not JSON\"");
        assert_eq!(quote_line("tab\there"), "\"tab\\there\"");
        let long = "é".repeat(QUOTE_KEEP + 50);
        let quoted = quote_line(&long);
        assert!(
            quoted.starts_with(&format!("\"{}\"...", "é".repeat(QUOTE_KEEP))),
            "{quoted}"
        );
        assert!(
            quoted.ends_with(&format!("({} characters in all)", QUOTE_KEEP + 50)),
            "{quoted}"
        );
    }

    #[test]
    fn the_versions_are_listed_in_words() {
        assert_eq!(spoken_versions(), "1, 2 and 3");
    }
}
