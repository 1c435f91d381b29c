//! Printing `prepare --dry-run`: the result fields a real run would print, then the plan
//! (txt: one line per changed entry, JSON edits as `-`/`+` key lines).

use flare_deploy_core::plan::{self, Plan, Planned};
use flare_deploy_core::plan_diff::{ChangeKind, FileChange};
use flare_deploy_core::receipt::EntryKind;
use flare_deploy_core::report::{self, Printed};
use flare_deploy_core::{json, Format, PrepareRequest, Registry};
use serde_json::Value;

use crate::print;

/// `prepare <kit> --dry-run`.
pub fn single(request: &PrepareRequest, registry: &Registry, format: Format) -> i32 {
    let mut warnings = Vec::new();
    match plan::dry_run(request, registry, &mut warnings) {
        Ok(planned) => {
            let mut printed = Printed::default();
            report::render_warnings(&warnings, format, &mut printed);
            match format {
                Format::Json => report::render_ok(&planned.fields(), format, &mut printed),
                Format::Txt => printed.stdout.push_str(&text(&planned)),
            }
            print::emit(&printed);
            0
        }
        Err(err) => print::error(&err, format, &warnings),
    }
}

/// The txt form: `dry_run: true`, the result fields, the plan.
pub fn text(planned: &Planned) -> String {
    let mut out = String::from("dry_run: true\n");
    let mut fields = Printed::default();
    report::render_ok(&planned.outcome.fields, Format::Txt, &mut fields);
    out.push_str(&fields.stdout);
    out.push_str(&plan_text(&planned.plan, ""));
    out
}

/// The plan, each line after `indent`.
pub fn plan_text(plan: &Plan, indent: &str) -> String {
    let existing = if plan.replaces_existing {
        "the existing output would be replaced"
    } else {
        "would be created"
    };
    let mut out = format!(
        "{indent}Plan (nothing was written): {} ({existing})\n",
        plan.output.display()
    );
    for change in &plan.changes {
        out.push_str(&format!("{indent}  {}\n", change_line(change)));
        for key in &change.json_changes {
            let value = |v: &Value| json::to_line(v);
            if let Some(old) = &key.old {
                out.push_str(&format!("{indent}      - {}: {}\n", key.key, value(old)));
            }
            if let Some(new) = &key.new {
                out.push_str(&format!("{indent}      + {}: {}\n", key.key, value(new)));
            }
        }
    }
    let (added, changed, removed) = plan.counts();
    out.push_str(&format!(
        "{indent}{added} added, {changed} changed, {removed} removed\n"
    ));
    out
}

/// `+ path`, `~ path (mode 0644 -> 0755)`, `- path`; directories end in `/`.
fn change_line(change: &FileChange) -> String {
    let sign = match change.change {
        ChangeKind::Added => "+",
        ChangeKind::Changed => "~",
        ChangeKind::Removed => "-",
    };
    let slash = if change.kind == EntryKind::Dir { "/" } else { "" };
    let mut line = format!("{sign} {}{slash}", change.path);
    if let Some((from, to)) = &change.mode {
        line.push_str(&format!(" (mode {from} -> {to})"));
    }
    line
}
