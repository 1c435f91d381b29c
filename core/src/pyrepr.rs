//! Python `repr` of YAML values, used where the reference's messages embed one
//! (e.g. `Unknown keys in parent: ['bogus', 'zzz']`, `'nvflare\n'`).

use serde_yaml::Value;

/// `repr(value)` as Python would print the equivalent object.
pub fn repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.is_nan() => "nan".into(),
            (_, _, Some(f)) if f.is_infinite() => if f > 0.0 { "inf" } else { "-inf" }.into(),
            (_, _, Some(f)) => crate::json::python_float_repr(f),
            _ => n.to_string(),
        },
        Value::String(s) => str_repr(s),
        Value::Sequence(items) => format!("[{}]", items.iter().map(repr).collect::<Vec<_>>().join(", ")),
        Value::Mapping(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", repr(k), repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Tagged(t) => repr(&t.value),
    }
}

/// Python's `repr(str)`: single quotes unless the text has a single quote and no double
/// quote; backslash, the quote and control characters escaped.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => match c as u32 {
                n @ 0..=0xff => out.push_str(&format!("\\x{n:02x}")),
                n @ 0x100..=0xffff => out.push_str(&format!("\\u{n:04x}")),
                n => out.push_str(&format!("\\U{n:08x}")),
            },
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable()` for one character: everything but the Unicode
/// categories Other (Cc, Cf, Cs, Co, Cn) and Separator (Zl, Zp, Zs), the ASCII space
/// excepted. (Python 3.11 uses Unicode 14; characters assigned since may differ.)
fn is_printable(c: char) -> bool {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    c == ' '
        || !matches!(
            get_general_category(c),
            G::Control
                | G::Format
                | G::Surrogate
                | G::PrivateUse
                | G::Unassigned
                | G::LineSeparator
                | G::ParagraphSeparator
                | G::SpaceSeparator
        )
}

/// Python's `repr(sorted(keys))`. Python cannot sort mixed types (the reference crashes);
/// here numbers and other scalars sort before strings, each group in natural order.
pub fn sorted_list(keys: &[&Value]) -> String {
    let mut keys: Vec<&Value> = keys.to_vec();
    keys.sort_by(|a, b| {
        let rank = |v: &Value| match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            _ => 4,
        };
        rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
            (Value::String(x), Value::String(y)) => x.cmp(y),
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
            }
            _ => repr(a).cmp(&repr(b)),
        })
    });
    format!("[{}]", keys.iter().map(|k| repr(k)).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_repr_matches_python() {
        assert_eq!(str_repr("Bad"), "'Bad'");
        assert_eq!(str_repr("nvflare\n"), "'nvflare\\n'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(str_repr("back\\slash"), "'back\\\\slash'");
    }

    #[test]
    fn non_printable_unicode_is_escaped_like_python() {
        // Expected values printed by CPython 3.11's repr().
        for (raw, python) in [
            ("nbsp\u{a0}x", "'nbsp\\xa0x'"),
            ("a\u{3000}b", "'a\\u3000b'"),
            ("soft\u{ad}hy", "'soft\\xadhy'"),
            ("zw\u{200b}j", "'zw\\u200bj'"),
            ("bom\u{feff}", "'bom\\ufeff'"),
            ("ls\u{2028}ps\u{2029}", "'ls\\u2028ps\\u2029'"),
            ("tag\u{e0001}", "'tag\\U000e0001'"),
            ("caf\u{e9} \u{4e2d}", "'caf\u{e9} \u{4e2d}'"),
        ] {
            assert_eq!(str_repr(raw), python, "{raw:?}");
        }
    }
}
