//! The engine's check of a config against the JSON Schema a plugin declares in its
//! `describe` answer, made before the plugin is asked to validate or prepare, so that a
//! plugin can rely on the shape it declared.

use std::path::Path;

use jsonschema::error::ValidationErrorKind;
use jsonschema::ValidationError;
use serde_json::Value;

use crate::error::{Error, ErrorCode, Result};

/// The declared schema (the `config_schema` of `describe`) as a validator; `None` when
/// the plugin declares none (every config then goes to the plugin's own `validate`).
pub fn compile(plugin: &Path, schema: Option<&Value>) -> Result<Option<jsonschema::Validator>> {
    let Some(schema) = schema else { return Ok(None) };
    if !(schema.is_object() || schema.is_boolean()) {
        return Err(malformed(plugin, "it is neither an object nor a boolean"));
    }
    // No remote or file references can be fetched (the crate is built without them), so
    // a schema that needs one is malformed here too.
    jsonschema::validator_for(schema)
        .map(Some)
        .map_err(|e| malformed(plugin, e))
}

fn malformed(plugin: &Path, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::PluginProtocol,
        format!(
            "Plugin {}: its config_schema is not a valid JSON Schema: {why}",
            plugin.display()
        ),
        "Fix the config_schema of the plugin's describe answer (docs/plugin-protocol.md); it is used to check every config.",
    )
}

/// `INVALID_CONFIG` for the first place `config` breaks the schema, naming the key.
pub fn check(validator: &jsonschema::Validator, plugin_name: &str, config: &Value) -> Result<()> {
    let errors: Vec<ValidationError<'_>> = validator.iter_errors(config).collect();
    let Some(first) = errors.first() else { return Ok(()) };
    let pointer = key_pointer(first);
    let more = match errors.len() - 1 {
        0 => String::new(),
        1 => " (and 1 more error)".to_string(),
        n => format!(" (and {n} more errors)"),
    };
    Err(Error::invalid_config(
        format!(
            "{}: {first} (JSON pointer {}){more}",
            dotted(&pointer),
            if pointer.is_empty() { "\"\"" } else { &pointer },
        ),
        format!(
            "The config does not match the schema the plugin '{plugin_name}' declares (flare-deploy targets show {plugin_name}); fix that key."
        ),
    ))
}

/// The pointer of the key at fault: for a missing or an unexpected key, the key itself
/// rather than the object holding it.
fn key_pointer(error: &ValidationError<'_>) -> String {
    let at = error.instance_path().as_str().to_string();
    let key = match error.kind() {
        ValidationErrorKind::Required { property } => property.as_str().map(str::to_string),
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected.first().cloned(),
        _ => None,
    };
    match key {
        Some(key) => format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
        None => at,
    }
}

/// `/parent/image` as `parent.image`, `/a/0` as `a[0]`; the whole config as `config`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    if out.is_empty() {
        "config".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(schema: Value, config: Value) -> String {
        let validator = compile(Path::new("p"), Some(&schema))
            .expect("schema")
            .expect("validator");
        check(&validator, "p", &config).expect_err("invalid").message
    }

    #[test]
    fn errors_name_the_key_at_fault() {
        let schema = json!({"type": "object", "additionalProperties": false, "required": ["parent"],
            "properties": {"parent": {"type": "object", "required": ["image"],
                "properties": {"image": {"type": "string"}, "ports": {"type": "array", "items": {"type": "integer"}}}}}});
        let m = message(schema.clone(), json!({"parent": {"image": 5}}));
        assert!(m.starts_with("parent.image: 5 is not of type \"string\""), "{m}");
        assert!(m.contains("/parent/image"), "{m}");
        let m = message(schema.clone(), json!({"parent": {}}));
        assert!(m.starts_with("parent.image: "), "{m}");
        let m = message(schema.clone(), json!({"parent": {"image": "i"}, "bogus": 1}));
        assert!(m.starts_with("bogus: "), "{m}");
        let m = message(schema, json!({"parent": {"image": "i", "ports": [1, "x"]}}));
        assert!(m.starts_with("parent.ports[1]: "), "{m}");
    }

    #[test]
    fn a_missing_or_broken_schema() {
        assert!(compile(Path::new("p"), None).expect("none").is_none());
        let err = compile(Path::new("p"), Some(&json!(7))).expect_err("not a schema");
        assert_eq!(err.code, ErrorCode::PluginProtocol);
        let err = compile(Path::new("p"), Some(&json!({"type": "no-such-type"}))).expect_err("bad type");
        assert_eq!(err.code, ErrorCode::PluginProtocol);
        // Nothing is fetched: a remote or file reference cannot be resolved.
        for reference in ["https://example.invalid/schema.json", "file:///etc/passwd"] {
            let err = compile(Path::new("p"), Some(&json!({"$ref": reference}))).expect_err("unresolvable");
            assert_eq!(err.code, ErrorCode::PluginProtocol, "{reference}");
        }
    }
}
