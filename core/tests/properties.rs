//! Property tests: Kubernetes names are always valid and stable, and shell quoting
//! survives a round trip through bash for any string.

use std::process::Command;

use flare_deploy_core::naming::{is_dns1035_label, stable_k8s_name};
use flare_deploy_core::shell;
use proptest::prelude::*;

fn bash_echo(script_word: &str) -> Vec<u8> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("printf '%s' {script_word}"))
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "bash failed for {script_word:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Arbitrary text without NUL (which no shell word can hold), biased towards the
/// characters that matter to shells and YAML.
fn shell_text() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '\'',
        '"',
        '$',
        '`',
        '\\',
        '\n',
        '\t',
        ' ',
        '!',
        '*',
        '?',
        '[',
        ']',
        '{',
        '}',
        '(',
        ')',
        ';',
        '&',
        '|',
        '<',
        '>',
        '#',
        '~',
        '-',
        '=',
        '%',
        'é',
        '医',
        '\u{1F600}',
        '\r',
        '\u{7f}',
    ]);
    let any = any::<char>().prop_filter("no NUL", |c| *c != '\0');
    prop::collection::vec(
        prop_oneof![3 => special, 2 => any, 2 => prop::char::range('a', 'z')],
        0..40,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn k8s_names_are_valid_short_and_stable(raw in "\\PC{0,80}", max in prop::sample::select(vec![53usize, 63])) {
        let name = stable_k8s_name(&raw, max);
        prop_assert!(is_dns1035_label(&name), "{name:?} from {raw:?}");
        prop_assert!(name.chars().count() <= max);
        prop_assert_eq!(&name, &stable_k8s_name(&raw, max));
        if raw.chars().count() <= max && is_dns1035_label(&raw) {
            prop_assert_eq!(name, raw);
        }
    }

    #[test]
    fn distinct_raw_names_give_distinct_k8s_names(a in "\\PC{0,70}", b in "\\PC{0,70}") {
        prop_assume!(a != b);
        prop_assert_ne!(stable_k8s_name(&a, 63), stable_k8s_name(&b, 63));
        prop_assert_ne!(stable_k8s_name(&a, 53), stable_k8s_name(&b, 53));
    }

    #[test]
    fn quoted_words_survive_bash(text in shell_text()) {
        prop_assert_eq!(bash_echo(&shell::quote(&text)), text.as_bytes().to_vec());
        prop_assert_eq!(bash_echo(&shell::double_quote(&text)), text.as_bytes().to_vec());
    }
}
