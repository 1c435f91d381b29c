//! The result and error envelopes, in the reference's `txt` and `json` forms
//! (reference spec section 6).

use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::json;

/// Output format of results, errors and warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Txt,
    Json,
}

/// The ordered fields of a successful result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub fields: Map<String, Value>,
}

impl Outcome {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a field (builder style).
    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_string(), value.into());
        self
    }
}

/// What a command prints: text for stdout and for stderr.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Printed {
    pub stdout: String,
    pub stderr: String,
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => json::to_line(other),
    }
}

/// Warnings go to stdout in `txt` (before the result) and to stderr in `json`, so that
/// stdout stays one JSON document.
pub fn render_warnings(warnings: &[String], format: Format, printed: &mut Printed) {
    let sink = match format {
        Format::Txt => &mut printed.stdout,
        Format::Json => &mut printed.stderr,
    };
    for warning in warnings {
        sink.push_str("Warning: ");
        sink.push_str(warning);
        sink.push('\n');
    }
}

/// Success: `key: value` lines, or the `status: ok` envelope on one line.
pub fn render_ok(data: &Map<String, Value>, format: Format, printed: &mut Printed) {
    match format {
        Format::Txt => {
            for (key, value) in data {
                printed.stdout.push_str(&format!("{key}: {}\n", plain(value)));
            }
        }
        Format::Json => {
            let envelope =
                json!({"schema_version": "1", "status": "ok", "exit_code": 0, "data": Value::Object(data.clone())});
            printed.stdout.push_str(&json::to_line(&envelope));
            printed.stdout.push('\n');
        }
    }
}

/// Failure: message, hint and code on stderr, or the `status: error` envelope on stdout.
pub fn render_error(error: &Error, format: Format, printed: &mut Printed) {
    let exit_code = error.exit_code();
    match format {
        Format::Txt => {
            printed.stderr.push_str(&error.message);
            printed.stderr.push('\n');
            if !error.hint.is_empty() {
                printed.stderr.push_str(&format!("Hint: {}\n", error.hint));
            }
            printed
                .stderr
                .push_str(&format!("Code: {} (exit {exit_code})\n", error.code));
        }
        Format::Json => {
            let envelope = json!({
                "schema_version": "1",
                "status": "error",
                "exit_code": exit_code,
                "error_code": error.code.as_str(),
                "message": error.message,
                "hint": error.hint,
            });
            printed.stdout.push_str(&json::to_line(&envelope));
            printed.stdout.push('\n');
        }
    }
}
