//! Property tests: Kubernetes names are always valid and stable, and shell quoting
//! survives a round trip through bash for any string.

use std::process::Command;

use flare_deploy_core::naming::{docker_container_name, is_dns1035_label, stable_digest, stable_k8s_name};
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

    /// What does hold for two names: distinct valid labels stay distinct (they map to
    /// themselves), and a name that is changed ends in the digest of its own raw form, so
    /// it never equals the mapping of a different name that is changed the same way
    /// unless their digests collide. Distinct names in general can collide: see
    /// `a_valid_name_can_collide_with_a_sanitised_one` (and `prepare --all` refuses such
    /// a federation).
    #[test]
    fn valid_names_stay_distinct_and_changed_names_carry_their_digest(
        a in prop_oneof!["[a-z][a-z0-9-]{0,20}[a-z0-9]", "\\PC{0,70}"],
        b in "[a-z][a-z0-9-]{0,20}[a-z0-9]",
    ) {
        for max in [53usize, 63] {
            let name = stable_k8s_name(&a, max);
            if name != a {
                let suffix = format!("-{}", stable_digest(&a));
                prop_assert!(name.ends_with(&suffix), "{name:?} from {a:?}");
            }
            if a != b && a.chars().count() <= max && is_dns1035_label(&a) {
                prop_assert_ne!(stable_k8s_name(&a, max), stable_k8s_name(&b, max));
            }
        }
    }

    #[test]
    fn quoted_words_survive_bash(text in shell_text()) {
        prop_assert_eq!(bash_echo(&shell::quote(&text)), text.as_bytes().to_vec());
        prop_assert_eq!(bash_echo(&shell::double_quote(&text)), text.as_bytes().to_vec());
    }
}

/// The property that does not hold: different site names can give one Kubernetes name.
/// `Site_1` is not a label, so it becomes `site-1-<digest of "Site_1">`, which is itself
/// a valid label and so maps to itself. Docker container names collide the same way.
#[test]
fn a_valid_name_can_collide_with_a_sanitised_one() {
    let sanitised = stable_k8s_name("Site_1", 63);
    assert_eq!(sanitised, "site-1-ab7f9d10");
    assert_eq!(stable_k8s_name("site-1-ab7f9d10", 63), sanitised);
    assert_eq!(stable_k8s_name("Site_1", 53), stable_k8s_name("site-1-ab7f9d10", 53));
    let container = docker_container_name("site 1");
    assert_ne!(container, "site 1");
    assert_eq!(docker_container_name(&container), container);
}
