//! Printing envelopes and tables; returns the exit code.

use std::io::{IsTerminal, Write};

use flare_deploy_core::batch::{self, BatchRequest, KitOutcome};
use flare_deploy_core::registry::Entry;
use flare_deploy_core::report::{self, Printed};
use flare_deploy_core::{json, schema_doc, ActionSpec, Error, Format, Origin, Registry};
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

/// A target's actions for listings; a plugin that cannot describe itself has none (its
/// summary already says why).
fn actions_of(entry: &Entry) -> Vec<ActionSpec> {
    entry.target.actions().unwrap_or_default()
}

pub fn targets(registry: &Registry, format: Format) -> i32 {
    let entries = registry.all();
    match format {
        Format::Txt => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let names: Vec<String> = actions_of(e).into_iter().map(|a| a.name).collect();
                    let actions = if names.is_empty() { "-".into() } else { names.join(", ") };
                    vec![
                        e.target.name().to_string(),
                        e.origin.describe(),
                        actions,
                        e.target.summary().to_string(),
                    ]
                })
                .collect();
            emit(&Printed {
                stdout: table(&["NAME", "ORIGIN", "ACTIONS", "SUMMARY"], &rows),
                stderr: String::new(),
            });
            0
        }
        Format::Json => {
            let list: Vec<Value> = entries
                .iter()
                .map(|e| {
                    let (kind, detail) = match &e.origin {
                        Origin::BuiltIn { crate_name } => ("built-in", json!({"crate": crate_name})),
                        Origin::LinkedCrate { crate_name } => ("crate", json!({"crate": crate_name})),
                        Origin::Executable { path } => ("executable", json!({"path": path.to_string_lossy()})),
                    };
                    let mut item = json!({"name": e.target.name(), "origin": kind, "summary": e.target.summary()});
                    let actions: Vec<Value> = actions_of(e)
                        .iter()
                        .map(|a| json!({"name": a.name, "summary": a.summary}))
                        .collect();
                    if let (Value::Object(item), Value::Object(detail)) = (&mut item, detail) {
                        item.extend(detail);
                        item.insert("actions".into(), Value::Array(actions));
                    }
                    item
                })
                .collect();
            let mut data = Map::new();
            data.insert("targets".into(), Value::Array(list));
            ok(&data, format, &[])
        }
    }
}

/// Left-aligned columns separated by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len() - 1;
        let mut text = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                text.push_str(&cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                text.push_str(&cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

fn unknown_target(registry: &Registry, name: &str) -> Error {
    let names = registry.all_names().join(", ");
    Error::invalid_args(
        format!("Unknown runtime target: {name}"),
        format!("Known targets: {names}. Run flare-deploy targets to list them."),
    )
}

pub fn target_show(registry: &Registry, name: &str, schema_only: bool, format: Format) -> i32 {
    let Some(entry) = registry.find(name) else {
        return error(&unknown_target(registry, name), format, &[]);
    };
    let schema = match entry.target.config_schema() {
        Ok(schema) => schema,
        Err(err) => return error(&err, format, &[]),
    };
    if schema_only {
        let text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        emit(&Printed {
            stdout: text + "\n",
            stderr: String::new(),
        });
        return 0;
    }
    let keys = schema_doc::keys(&schema);
    let actions = match entry.target.actions() {
        Ok(actions) => actions,
        Err(err) => return error(&err, format, &[]),
    };
    match format {
        Format::Txt => {
            let mut text = format!("{name} ({}): {}\n\n", entry.origin.describe(), entry.target.summary());
            for key in &keys {
                let mut head = format!("{}  {}", key.key, key.types);
                if key.required {
                    head.push_str("  required");
                }
                if let Some(default) = &key.default {
                    head.push_str(&format!("  default: {}", json::to_line(default)));
                }
                text.push_str(&head);
                text.push('\n');
                if !key.constraints.is_empty() {
                    text.push_str(&format!("    {}\n", key.constraints.join(", ")));
                }
                for line in key.description.lines() {
                    text.push_str(&format!("    {line}\n"));
                }
            }
            text.push_str(&actions_text(name, &actions));
            emit(&Printed {
                stdout: text,
                stderr: String::new(),
            });
            0
        }
        Format::Json => {
            let list: Vec<Value> = keys
                .iter()
                .map(|k| {
                    json!({"key": k.key, "type": k.types, "required": k.required, "default": k.default,
                           "description": k.description, "constraints": k.constraints})
                })
                .collect();
            let mut data = Map::new();
            data.insert("name".into(), name.into());
            data.insert("origin".into(), entry.origin.describe().into());
            data.insert("summary".into(), entry.target.summary().into());
            data.insert("keys".into(), Value::Array(list));
            data.insert(
                "actions".into(),
                Value::Array(actions.iter().map(ActionSpec::to_json).collect()),
            );
            ok(&data, format, &[])
        }
    }
}

/// The actions section of `targets show`: each action with its options.
fn actions_text(runtime: &str, actions: &[ActionSpec]) -> String {
    if actions.is_empty() {
        return String::new();
    }
    let mut text = format!("\nActions (flare-deploy {runtime} <action> [KIT] [options]):\n");
    for action in actions {
        text.push_str(&format!("  {}  {}\n", action.name, action.summary));
        for option in &action.options {
            let head = match &option.value_name {
                Some(value) => format!("--{} <{value}>", option.name),
                None => format!("--{}", option.name),
            };
            text.push_str(&format!("      {head}  {}\n", option.help));
        }
    }
    text
}

/// `prepare --all`: a progress bar on a terminal, then a summary table (txt) or one
/// envelope listing every kit (json). Exit 0 when every kit succeeded or was skipped.
pub fn batch(request: &BatchRequest, registry: &Registry, format: Format) -> i32 {
    let show_progress = format == Format::Txt && std::io::stdout().is_terminal();
    let progress = |done: usize, total: usize| {
        if show_progress {
            let width = 30;
            let filled = done * width / total.max(1);
            let mut out = std::io::stdout().lock();
            let _ = write!(
                out,
                "\r[{}{}] {done}/{total}",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            let _ = out.flush();
        }
    };
    let reports = match batch::prepare_all(request, registry, &progress) {
        Ok(reports) => reports,
        Err(err) => return error(&err, format, &[]),
    };
    if show_progress {
        let _ = write!(std::io::stdout(), "\r{}\r", " ".repeat(50));
    }
    let failed = reports.iter().filter(|r| r.failed()).count();
    let skipped = reports
        .iter()
        .filter(|r| matches!(r.outcome, KitOutcome::Skipped(_)))
        .count();
    let ok_count = reports.len() - failed - skipped;
    let exit_code = if failed > 0 { 4 } else { 0 };
    match format {
        Format::Txt => {
            let rows: Vec<Vec<String>> = reports
                .iter()
                .map(|r| {
                    let role = r.role.map_or("-", |role| role.as_str()).to_string();
                    let (runtime, result) = match &r.outcome {
                        KitOutcome::Prepared(p) => {
                            let runtime = p
                                .outcome
                                .fields
                                .get("runtime")
                                .and_then(Value::as_str)
                                .unwrap_or_default();
                            (runtime.to_string(), "ok".to_string())
                        }
                        KitOutcome::Skipped(why) => ("-".into(), format!("skipped ({why})")),
                        KitOutcome::Failed(err) => ("-".into(), err.code.to_string()),
                    };
                    vec![r.kit.clone(), role, runtime, result]
                })
                .collect();
            let mut text = table(&["KIT", "ROLE", "RUNTIME", "RESULT"], &rows);
            text.push_str(&format!("\n{ok_count} prepared, {failed} failed, {skipped} skipped\n"));
            let mut stderr = String::new();
            for report in &reports {
                if let KitOutcome::Failed(err) = &report.outcome {
                    stderr.push_str(&format!("{}: {}\n", report.kit, err.message));
                    if !err.hint.is_empty() {
                        stderr.push_str(&format!("{}: Hint: {}\n", report.kit, err.hint));
                    }
                }
                for warning in &report.warnings {
                    text.push_str(&format!("{}: Warning: {warning}\n", report.kit));
                }
            }
            emit(&Printed { stdout: text, stderr });
        }
        Format::Json => {
            let kits: Vec<Value> = reports
                .iter()
                .map(|r| {
                    let mut item = json!({"kit": r.kit, "path": r.path.to_string_lossy(),
                                          "role": r.role.map(|role| role.as_str())});
                    let fields = match &r.outcome {
                        KitOutcome::Prepared(p) => json!({"status": "ok", "result": Value::Object(p.outcome.fields.clone()), "warnings": r.warnings}),
                        KitOutcome::Skipped(why) => json!({"status": "skipped", "reason": why}),
                        KitOutcome::Failed(err) => json!({"status": "error", "error_code": err.code.as_str(),
                                                          "message": err.message, "hint": err.hint, "warnings": r.warnings}),
                    };
                    if let (Value::Object(item), Value::Object(fields)) = (&mut item, fields) {
                        item.extend(fields);
                    }
                    item
                })
                .collect();
            let envelope = json!({
                "schema_version": "1",
                "status": if failed > 0 { "error" } else { "ok" },
                "exit_code": exit_code,
                "data": {"kits": kits, "summary": {"prepared": ok_count, "failed": failed, "skipped": skipped}},
            });
            emit(&Printed {
                stdout: format!("{}\n", json::to_line(&envelope)),
                stderr: String::new(),
            });
        }
    }
    exit_code
}
