//! Single-pass `@@NAME@@` token substitution for the text files targets embed.
//!
//! A token alone on a line (after indentation) expands to the value's lines, each with
//! that indentation, and an empty value removes the line; elsewhere the value is inserted
//! as is. Values are never scanned again, so input cannot inject tokens.

use crate::error::{Error, Result};

pub fn render(template: &str, values: &[(&str, &str)]) -> Result<String> {
    let lookup = |name: &str| {
        values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| Error::prepare_failed(format!("template token @@{name}@@ has no value")))
    };
    let mut out = String::with_capacity(template.len() + 256);
    for line in template.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let indent_len = body.len() - body.trim_start().len();
        let (indent, rest) = body.split_at(indent_len);
        if let Some(name) = rest.strip_prefix("@@").and_then(|r| r.strip_suffix("@@")) {
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                for value_line in lookup(name)?.lines() {
                    out.push_str(indent);
                    out.push_str(value_line);
                    out.push('\n');
                }
                continue;
            }
        }
        let mut remaining = line;
        while let Some(start) = remaining.find("@@") {
            let after = &remaining[start + 2..];
            let Some(end) = after.find("@@") else { break };
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                out.push_str(&remaining[..start + 2]);
                remaining = after;
                continue;
            }
            out.push_str(&remaining[..start]);
            out.push_str(lookup(name)?);
            remaining = &after[end + 2..];
        }
        out.push_str(remaining);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_inline_and_on_their_own_line() {
        let t = "a @@X@@ b\n    @@LINES@@\n    @@EMPTY@@\nend\n";
        let got = render(
            t,
            &[("X", "@@LINES@@"), ("LINES", "one\ntwo"), ("EMPTY", "")],
        )
        .expect("renders");
        assert_eq!(got, "a @@LINES@@ b\n    one\n    two\nend\n");
    }

    #[test]
    fn unknown_token_is_an_error() {
        assert!(render("@@NOPE@@\n", &[]).is_err());
    }
}
