//! Quoting for generated shell: every value that comes from input goes through here.

/// POSIX single-quote quoting, exactly like Python's `shlex.quote`: safe words are left
/// alone, everything else is wrapped in single quotes.
pub fn quote(value: &str) -> String {
    if value.is_empty() {
        return "''".to_string();
    }
    let safe = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        return value.to_string();
    }
    format!("'{}'", value.replace('\'', "'\"'\"'"))
}

/// A word for generated scripts: like [`quote`], but text with `$` or a backtick is
/// double-quoted with escapes instead of single-quoted, so that linters (shellcheck
/// SC2016) do not read the literal text as a forgotten expansion. Either form gives the
/// same argument.
pub fn word(value: &str) -> String {
    if value.contains(['$', '`']) {
        double_quote(value)
    } else {
        quote(value)
    }
}

/// The inside of a bash double-quoted string: `\`, `"`, `$` and backtick escaped, so the
/// value is taken literally between `"` and `"`.
pub fn double_quoted_inner(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "\\$")
        .replace('`', "\\`")
}

/// A complete bash double-quoted string.
pub fn double_quote(value: &str) -> String {
    format!("\"{}\"", double_quoted_inner(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_shlex() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("site-1"), "site-1");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\"'\"'s'");
        assert_eq!(quote("org=nvidia"), "org=nvidia");
    }

    #[test]
    fn words_choose_a_quoting_linters_accept() {
        assert_eq!(word("site-1"), "site-1");
        assert_eq!(word("a b"), "'a b'");
        assert_eq!(word("a $(x)"), "\"a \\$(x)\"");
    }

    #[test]
    fn double_quote_escapes_expansions() {
        assert_eq!(double_quote("a\"$(x)`y`\\"), "\"a\\\"\\$(x)\\`y\\`\\\\\"");
    }
}
