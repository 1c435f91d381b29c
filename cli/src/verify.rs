//! Printing `flare-deploy verify`: a clean kit as result fields (exit 0); a mismatch as
//! one line per difference and the VERIFY_MISMATCH error (exit 4).

use std::path::Path;

use flare_deploy_core::paths::resolve_user_path;
use flare_deploy_core::report::{self, Printed};
use flare_deploy_core::verify::{self, Verification};
use flare_deploy_core::{json, Error, Format};
use serde_json::{json, Value};

use crate::args::VerifyArgs;
use crate::print;

fn resolve(raw: &str, what: &str) -> Result<std::path::PathBuf, Error> {
    resolve_user_path(raw).map_err(|e| {
        Error::invalid_args(
            format!("Cannot resolve {what} path: {raw}"),
            format!("Check the path: {e}"),
        )
    })
}

pub fn run(args: &VerifyArgs, format: Format) -> i32 {
    let checked = resolve(&args.kit, "prepared kit").and_then(|dir| {
        let config = args.config.as_deref().map(|c| resolve(c, "config")).transpose()?;
        verify::verify(&dir, config.as_deref())
    });
    match checked {
        Ok(result) if result.is_clean() => print::ok(&result.to_json(), format, &[]),
        Ok(result) => mismatch(&result, format),
        Err(err) => print::error(&err, format, &[]),
    }
}

fn mismatch(result: &Verification, format: Format) -> i32 {
    let err = result.mismatch_error();
    let mut printed = Printed::default();
    match format {
        Format::Txt => {
            printed.stdout.push_str(&differences_text(result));
            report::render_error(&err, format, &mut printed);
        }
        Format::Json => {
            // The error envelope, with the differences as data.
            let envelope = json!({
                "schema_version": "1",
                "status": "error",
                "exit_code": err.exit_code(),
                "error_code": err.code.as_str(),
                "message": err.message,
                "hint": err.hint,
                "data": Value::Object(result.to_json()),
            });
            printed.stdout.push_str(&json::to_line(&envelope));
            printed.stdout.push('\n');
        }
    }
    print::emit(&printed);
    err.exit_code()
}

/// `modified: local/x`, `mode: startup/y (0755 -> 0644)`, ...; the config last.
fn differences_text(result: &Verification) -> String {
    let mut out = String::new();
    for d in &result.differences {
        out.push_str(&format!("{}: {}", d.kind.as_str(), d.path));
        if let (Some(recorded), Some(found)) = (&d.recorded, &d.found) {
            out.push_str(&format!(" ({recorded} -> {found})"));
        }
        out.push('\n');
    }
    if let Some(config) = result.config.as_ref().filter(|c| !c.matches()) {
        out.push_str(&format!(
            "config: {} differs from the config used ({}; sha256 {} recorded, {} now)\n",
            show(&config.path),
            config.recorded_path,
            config.recorded_sha256,
            config.sha256
        ));
    }
    out
}

fn show(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
