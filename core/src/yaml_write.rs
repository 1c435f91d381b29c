//! A small block-style YAML writer for generated files (Helm values, Chart.yaml, ...).
//!
//! Strings are written plain only when every YAML 1.1 and 1.2 reader takes them as the
//! same string (Helm reads YAML 1.1, where `yes`, `on` or `1_000` are not strings); all
//! others are written as JSON strings, which are valid YAML double-quoted scalars.

use serde_json::Value;

/// The document for `value` (an object or array), with a trailing newline.
pub fn to_string(value: &Value) -> String {
    match scalar(value) {
        Some(s) => format!("{s}\n"),
        None => block(value, 0),
    }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/' || first == '_') {
        return false;
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || "_./@-".contains(c)) {
        return false;
    }
    // Words YAML 1.1 resolves to booleans or null.
    let lower = s.to_ascii_lowercase();
    !matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
    )
}

fn string(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
    }
}

/// Inline form of scalars and empty containers; `None` for a non-empty container.
fn scalar(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        _ => return None,
    })
}

fn block(value: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                out.push_str(&format!("{pad}{}:", string(key)));
                match scalar(child) {
                    Some(s) => out.push_str(&format!(" {s}\n")),
                    None => {
                        out.push('\n');
                        // Lists sit at the key's indentation, maps one level deeper.
                        let child_indent = if child.is_array() { indent } else { indent + 2 };
                        out.push_str(&block(child, child_indent));
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match scalar(item) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        let nested = block(item, indent + 2);
                        out.push_str(&pad);
                        out.push_str("- ");
                        out.push_str(&nested[indent + 2..]);
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_style_like_pyyaml() {
        let v = json!({
            "name": "site-1",
            "image": {"repository": "nvflare/nvflare", "tag": "2.8.1"},
            "imagePullSecrets": [{"name": "a", "x": 1}],
            "args": ["-u", "uid=yes"],
            "empty": {}, "none": [], "n": null, "nested": [[1, 2]]
        });
        assert_eq!(
            to_string(&v),
            "name: site-1\nimage:\n  repository: nvflare/nvflare\n  tag: \"2.8.1\"\nimagePullSecrets:\n- name: a\n  x: 1\n\
             args:\n- \"-u\"\n- \"uid=yes\"\nempty: {}\nnone: []\n\"n\": null\nnested:\n- - 1\n  - 2\n"
        );
    }

    #[test]
    fn ambiguous_words_are_quoted() {
        for s in [
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "true",
            "null",
            "1_000",
            "1:30",
            "2026-01-01",
            "0777",
            "",
            "~",
            "a b",
        ] {
            assert!(string(s).starts_with('"'), "{s}");
        }
        for s in ["site-1", "nvflare/nvflare", "IfNotPresent", "/usr/local/bin/python3"] {
            assert_eq!(string(s), s);
        }
    }
}
