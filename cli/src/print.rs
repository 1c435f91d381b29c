//! Printing envelopes and tables; returns the exit code.

use std::io::Write;

use flare_deploy_core::report::{self, Printed};
use flare_deploy_core::{Error, Format, Registry};
use serde_json::{json, Map, Value};

pub fn emit(printed: &Printed) {
    // A closed stdout/stderr (e.g. `| head`) is not worth a panic.
    let _ = std::io::stdout().write_all(printed.stdout.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(printed.stderr.as_bytes());
}

pub fn ok(data: &Map<String, Value>, format: Format, warnings: &[String]) -> i32 {
    let mut printed = Printed::default();
    report::render_warnings(warnings, format, &mut printed);
    report::render_ok(data, format, &mut printed);
    emit(&printed);
    0
}

pub fn error(err: &Error, format: Format, warnings: &[String]) -> i32 {
    let mut printed = Printed::default();
    report::render_warnings(warnings, format, &mut printed);
    report::render_error(err, format, &mut printed);
    emit(&printed);
    err.exit_code()
}

pub fn targets(registry: &Registry, format: Format) -> i32 {
    let rows: Vec<(&str, &str)> = registry
        .entries()
        .iter()
        .map(|r| (r.target.name(), r.target.summary()))
        .collect();
    match format {
        Format::Txt => {
            let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(4).max(4);
            let mut text = format!("{:<width$}  SUMMARY\n", "NAME");
            for (name, summary) in &rows {
                text.push_str(&format!("{name:<width$}  {summary}\n"));
            }
            emit(&Printed {
                stdout: text,
                stderr: String::new(),
            });
            0
        }
        Format::Json => {
            let list: Vec<Value> = rows
                .iter()
                .map(|(n, s)| json!({"name": n, "summary": s}))
                .collect();
            let mut data = Map::new();
            data.insert("targets".into(), Value::Array(list));
            ok(&data, format, &[])
        }
    }
}
