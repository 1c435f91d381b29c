//! A config schema turned into the key table users read (`flare-deploy targets show`).

use serde_json::Value;

/// One config key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyDoc {
    /// Dotted path, e.g. `parent.docker_image`.
    pub key: String,
    /// JSON types, e.g. `string | null`.
    pub types: String,
    pub required: bool,
    pub default: Option<Value>,
    pub description: String,
    /// Limits such as `length <= 63`, `pattern ...`, `1..65535`, `const "docker"`.
    pub constraints: Vec<String>,
}

fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs").and_then(|d| d.get(name)))
            .map(|target| resolve(target, root))
            .unwrap_or(schema),
        None => schema,
    }
}

/// The alternatives of a schema (`anyOf`/`oneOf` members, or itself), resolved.
fn alternatives<'a>(schema: &'a Value, root: &'a Value) -> Vec<&'a Value> {
    let schema = resolve(schema, root);
    for key in ["anyOf", "oneOf"] {
        if let Some(items) = schema.get(key).and_then(Value::as_array) {
            return items.iter().flat_map(|s| alternatives(s, root)).collect();
        }
    }
    vec![schema]
}

fn types_of(alts: &[&Value]) -> Vec<String> {
    let mut types = Vec::new();
    for alt in alts {
        match alt.get("type") {
            Some(Value::String(t)) => types.push(t.clone()),
            Some(Value::Array(ts)) => types.extend(ts.iter().filter_map(Value::as_str).map(str::to_string)),
            _ if alt.get("const").is_some() => types.push("string".into()),
            _ => {}
        }
    }
    let mut seen = Vec::new();
    for t in types {
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    // `null` last: it reads as "or leave it unset".
    seen.sort_by_key(|t| t == "null");
    seen
}

fn constraints_of(alts: &[&Value]) -> Vec<String> {
    let mut out = Vec::new();
    for alt in alts {
        if let Some(c) = alt.get("const") {
            out.push(format!("const {c}"));
        }
        match (alt.get("minLength"), alt.get("maxLength")) {
            (Some(min), Some(max)) => out.push(format!("length {min}..{max}")),
            (Some(min), None) => out.push(format!("length >= {min}")),
            (None, Some(max)) => out.push(format!("length <= {max}")),
            _ => {}
        }
        match (alt.get("minimum"), alt.get("maximum")) {
            (Some(min), Some(max)) => out.push(format!("{min}..{max}")),
            (Some(min), None) => out.push(format!(">= {min}")),
            (None, Some(max)) => out.push(format!("<= {max}")),
            _ => {}
        }
        if let Some(p) = alt.get("pattern").and_then(Value::as_str) {
            out.push(format!("pattern {p}"));
        }
    }
    out
}

fn walk(schema: &Value, root: &Value, prefix: &str, out: &mut Vec<KeyDoc>) {
    let schema = resolve(schema, root);
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in properties {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let alts = alternatives(property, root);
        let nested = alts.iter().find(|a| a.get("properties").is_some());
        let description = property
            .get("description")
            .or_else(|| alts.iter().find_map(|a| a.get("description")))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(section) = nested {
            out.push(KeyDoc {
                key: key.clone(),
                types: types_of(&alts).join(" | "),
                required: required.contains(&name.as_str()),
                default: None,
                description,
                constraints: Vec::new(),
            });
            walk(section, root, &key, out);
            continue;
        }
        out.push(KeyDoc {
            key,
            types: types_of(&alts).join(" | "),
            required: required.contains(&name.as_str()),
            default: property.get("default").cloned(),
            description,
            constraints: constraints_of(&alts),
        });
    }
}

/// Every key of a config schema, sections first then their keys, in schema order.
pub fn keys(schema: &Value) -> Vec<KeyDoc> {
    let mut out = Vec::new();
    walk(schema, schema, "", &mut out);
    out
}
