//! Printing envelopes and tables; returns the exit code.

use std::io::Write;

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

/// `prepare --all`: a progress bar on a terminal (stderr), then a summary table (txt) or one
/// envelope listing every kit (json). Exit 0 when every kit succeeded or was skipped.
pub fn batch(request: &BatchRequest, registry: &Registry, format: Format) -> i32 {
    let bar = crate::progress::BatchProgress::new(format == Format::Txt);
    let progress = |done: usize, total: usize| bar.update(done, total);
    let reports = batch::prepare_all(request, registry, &progress);
    bar.finish();
    let reports = match reports {
        Ok(reports) => reports,
        Err(err) => return error(&err, format, &[]),
    };
    let failed = reports.iter().filter(|r| r.failed()).count();
    let skipped = reports
        .iter()
        .filter(|r| matches!(r.outcome, KitOutcome::Skipped(_)))
        .count();
    let ok_count = reports.len() - failed - skipped;
    let exit_code = if failed > 0 { 4 } else { 0 };
    let done_word = if request.dry_run { "planned" } else { "prepared" };
    match format {
        Format::Txt => {
            let rows: Vec<Vec<String>> = reports
                .iter()
                .map(|r| {
                    let role = r.role.map_or("-", |role| role.as_str()).to_string();
                    // The runtime is known once the kit's config named one, also for a
                    // kit that failed afterwards.
                    let runtime = r.runtime.clone().unwrap_or_else(|| "-".into());
                    let (runtime, result) = match &r.outcome {
                        KitOutcome::Prepared(_) => (runtime, "ok".to_string()),
                        KitOutcome::Planned(_) => (runtime, "ok (dry run)".to_string()),
                        KitOutcome::Skipped(why) => ("-".into(), format!("skipped ({why})")),
                        KitOutcome::Failed(err) => (runtime, err.code.to_string()),
                    };
                    vec![r.kit.clone(), role, runtime, result]
                })
                .collect();
            let mut text = table(&["KIT", "ROLE", "RUNTIME", "RESULT"], &rows);
            text.push_str(&format!(
                "\n{ok_count} {done_word}, {failed} failed, {skipped} skipped\n"
            ));
            let mut stderr = String::new();
            for report in &reports {
                let prefix = format!("{}: ", report.kit);
                match &report.outcome {
                    KitOutcome::Prepared(p) => text.push_str(&next_steps(&prefix, &p.outcome.fields)),
                    KitOutcome::Planned(p) => {
                        text.push_str(&next_steps(&prefix, &p.outcome.fields));
                        text.push_str(&crate::plan::plan_text(&p.plan, &prefix));
                    }
                    KitOutcome::Failed(err) => {
                        stderr.push_str(&format!("{prefix}{}\n", err.message));
                        if !err.hint.is_empty() {
                            stderr.push_str(&format!("{prefix}Hint: {}\n", err.hint));
                        }
                    }
                    KitOutcome::Skipped(_) => {}
                }
                for warning in &report.warnings {
                    text.push_str(&format!("{prefix}Warning: {warning}\n"));
                }
            }
            emit(&Printed { stdout: text, stderr });
        }
        Format::Json => {
            let kits: Vec<Value> = reports
                .iter()
                .map(|r| {
                    let mut item = json!({"kit": r.kit, "path": r.path.to_string_lossy(),
                                          "role": r.role.map(|role| role.as_str()), "runtime": r.runtime});
                    let fields = match &r.outcome {
                        KitOutcome::Prepared(p) => json!({"status": "ok", "result": Value::Object(p.outcome.fields.clone()), "warnings": r.warnings}),
                        KitOutcome::Planned(p) => json!({"status": "ok", "result": Value::Object(p.fields()), "warnings": r.warnings}),
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
            let mut summary = json!({done_word: ok_count, "failed": failed, "skipped": skipped});
            if request.dry_run {
                summary["dry_run"] = true.into();
            }
            let envelope = json!({
                "schema_version": "1",
                "status": if failed > 0 { "error" } else { "ok" },
                "exit_code": exit_code,
                "data": {"kits": kits, "summary": summary},
            });
            emit(&Printed {
                stdout: format!("{}\n", json::to_line(&envelope)),
                stderr: String::new(),
            });
        }
    }
    exit_code
}

/// A prepared kit's next steps, as its target described them: the output and every
/// `*_command` field (start script, helm command, sbatch line), one `<kit>: key: value`
/// line each.
fn next_steps(prefix: &str, fields: &Map<String, Value>) -> String {
    fields
        .iter()
        .filter(|(key, _)| *key == "output" || key.ends_with("_command"))
        .filter_map(|(key, value)| value.as_str().map(|v| format!("{prefix}{key}: {v}\n")))
        .collect()
}
