//! Single-pass `@@NAME@@` token substitution for the text files targets embed.
//!
//! A token alone on a line (after indentation) filled with [`Fill::Lines`] expands to
//! one line per item, each with that indentation; no items remove the line. Any token
//! filled with [`Fill::Text`] is replaced by the text as is (a quoted value may itself
//! hold newlines, which must not be indented). Values are never scanned again, so input
//! cannot inject tokens.

use crate::error::{Error, Result};

/// The value of one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fill {
    Text(String),
    Lines(Vec<String>),
}

fn is_token_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

pub fn render(template: &str, values: &[(&str, Fill)]) -> Result<String> {
    let lookup = |name: &str| {
        values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .ok_or_else(|| Error::prepare_failed(format!("template token @@{name}@@ has no value")))
    };
    let mut out = String::with_capacity(template.len() + 256);
    for line in template.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let indent_len = body.len() - body.trim_start().len();
        let (indent, rest) = body.split_at(indent_len);
        let own_line = rest
            .strip_prefix("@@")
            .and_then(|r| r.strip_suffix("@@"))
            .filter(|n| is_token_name(n));
        if let Some(name) = own_line {
            if let Fill::Lines(items) = lookup(name)? {
                for item in items {
                    out.push_str(indent);
                    out.push_str(item);
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
            if !is_token_name(name) {
                out.push_str(&remaining[..start + 2]);
                remaining = after;
                continue;
            }
            out.push_str(&remaining[..start]);
            match lookup(name)? {
                Fill::Text(text) => out.push_str(text),
                Fill::Lines(_) => {
                    return Err(Error::prepare_failed(format!(
                        "template token @@{name}@@ takes lines and must stand alone on its line"
                    )))
                }
            }
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
        let t = "a @@X@@ b\n    @@LINES@@\n    @@EMPTY@@\n    @@TEXT@@\nend\n";
        let values = [
            ("X", Fill::Text("@@LINES@@".into())),
            ("LINES", Fill::Lines(vec!["one".into(), "'two\nthree'".into()])),
            ("EMPTY", Fill::Lines(vec![])),
            ("TEXT", Fill::Text("x\ny".into())),
        ];
        let got = render(t, &values).expect("renders");
        assert_eq!(got, "a @@LINES@@ b\n    one\n    'two\nthree'\n    x\ny\nend\n");
    }

    #[test]
    fn unknown_token_is_an_error() {
        assert!(render("@@NOPE@@\n", &[]).is_err());
    }
}
