//! Names derived from site names for runtimes with naming rules: a stable short digest
//! of the raw name keeps sanitised names distinct (reference spec section 7).

use sha2::{Digest, Sha256};

/// First 8 lower-case hex digits of SHA-256 of the raw name's UTF-8 bytes.
pub fn stable_digest(raw: &str) -> String {
    let digest = Sha256::digest(raw.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// `^[a-z]([-a-z0-9]*[a-z0-9])?$`, whole string (no trailing-newline leniency).
pub fn is_dns1035_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_lowercase()
                && (last.is_ascii_lowercase() || last.is_ascii_digit())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, whole string: a namespace.
pub fn is_dns1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-'),
        _ => false,
    }
}

/// Dot-separated DNS-1123 labels: a Secret or other object name.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_dns1123_label)
}

/// A Kubernetes-safe name of at most `max_len` characters: `raw` itself when it is
/// already a DNS-1035 label that fits, else a normalised head plus the stable digest.
pub fn stable_k8s_name(raw: &str, max_len: usize) -> String {
    if raw.chars().count() <= max_len && is_dns1035_label(raw) {
        return raw.to_string();
    }
    let mut normalized = String::with_capacity(raw.len());
    for c in raw.to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && normalized.ends_with('-')) {
            normalized.push(c);
        }
    }
    let mut normalized = normalized.trim_matches('-').to_string();
    if normalized.is_empty() {
        normalized = "site".into();
    }
    if !normalized.starts_with(|c: char| c.is_ascii_lowercase()) {
        normalized = format!("site-{normalized}");
    }
    let digest = stable_digest(raw);
    let head_max = max_len.saturating_sub(digest.len() + 1);
    let head: String = normalized.chars().take(head_max).collect();
    let head = head.trim_end_matches('-');
    let head = if head.is_empty() { "site" } else { head };
    format!("{head}-{digest}")
}

/// Docker container names match `[a-zA-Z0-9][a-zA-Z0-9_.-]+`. A site name that does not
/// is turned into one that does, with a digest of the raw name to keep it unique.
pub fn docker_container_name(site: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    let valid = site.len() >= 2 && site.starts_with(|c: char| c.is_ascii_alphanumeric()) && site.chars().all(allowed);
    if valid {
        return site.to_string();
    }
    let mut cleaned = String::new();
    for c in site.chars() {
        let c = if allowed(c) { c } else { '-' };
        if !(c == '-' && cleaned.ends_with('-')) {
            cleaned.push(c);
        }
    }
    let head = cleaned
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .trim_end_matches('-');
    let head: String = head.chars().take(54).collect();
    if head.is_empty() {
        format!("nvflare-{}", stable_digest(site))
    } else {
        format!("{head}-{}", stable_digest(site))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_test_vectors() {
        let a = |n: usize| "a".repeat(n);
        let cases: Vec<(String, &str, String)> = vec![
            ("site-1".into(), "site-1", "site-1".into()),
            ("Site_1".into(), "site-1-ab7f9d10", "site-1-ab7f9d10".into()),
            ("site_1".into(), "site-1-74a65083", "site-1-74a65083".into()),
            ("Site-1".into(), "site-1-c828b91c", "site-1-c828b91c".into()),
            ("SITE-1".into(), "site-1-bbc1ede8", "site-1-bbc1ede8".into()),
            ("site-1.".into(), "site-1-ce2afed9", "site-1-ce2afed9".into()),
            (
                "1-my-site".into(),
                "site-1-my-site-ef3ea7a5",
                "site-1-my-site-ef3ea7a5".into(),
            ),
            ("9".into(), "site-9-19581e27", "site-9-19581e27".into()),
            ("---".into(), "site-cb3f91d5", "site-cb3f91d5".into()),
            ("\u{e9}".into(), "site-4a99557e", "site-4a99557e".into()),
            ("-abc-".into(), "abc-4d40a3ac", "abc-4d40a3ac".into()),
            (
                "server.example.com".into(),
                "server-example-com-e1335e88",
                "server-example-com-e1335e88".into(),
            ),
        ];
        for (raw, want63, want53) in cases {
            assert_eq!(stable_k8s_name(&raw, 63), want63, "{raw} @63");
            assert_eq!(stable_k8s_name(&raw, 53), want53, "{raw} @53");
        }
        assert_eq!(stable_k8s_name(&a(53), 53), a(53));
        assert_eq!(stable_k8s_name(&a(54), 63), a(54));
        assert_eq!(stable_k8s_name(&a(54), 53), format!("{}-a3f01b69", a(44)));
        assert_eq!(stable_k8s_name(&a(63), 63), a(63));
        assert_eq!(stable_k8s_name(&a(63), 53), format!("{}-7d3e74a0", a(44)));
        assert_eq!(stable_k8s_name(&a(64), 63), format!("{}-ffe054fe", a(54)));
        assert_eq!(stable_k8s_name(&a(64), 53), format!("{}-ffe054fe", a(44)));
        assert_eq!(stable_k8s_name(&a(80), 63), format!("{}-0f45e858", a(54)));
        assert_eq!(stable_k8s_name(&a(80), 53), format!("{}-0f45e858", a(44)));
        let mixed = format!("{}_{}", "x".repeat(53), "y".repeat(20));
        assert_eq!(stable_k8s_name(&mixed, 63), format!("{}-a75d2321", "x".repeat(53)));
        assert_eq!(stable_k8s_name(&mixed, 53), format!("{}-a75d2321", "x".repeat(44)));
    }

    #[test]
    fn dns_checks() {
        for ok in ["nvflare", "1abc", "2026-prod", "a"] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in ["MyNamespace", "namespace_", "-bad", "bad-", "bad.name", "nvflare\n", ""] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
        assert!(is_dns1123_subdomain("mirror.registry.example.com"));
        for bad in ["bad..name", "a.", ".a", "GitLab-Regcred", "gitlab_regcred", ""] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn container_names_follow_docker_rules() {
        assert_eq!(docker_container_name("site-1"), "site-1");
        assert_eq!(docker_container_name("abc.aws.com"), "abc.aws.com");
        for hostile in ["a b", "$(touch x)", "x", "-lead", "\u{e9}", "'\"`\n"] {
            let name = docker_container_name(hostile);
            assert!(name.len() >= 2, "{name}");
            assert!(name.starts_with(|c: char| c.is_ascii_alphanumeric()), "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
                "{name}"
            );
        }
        assert_ne!(docker_container_name("a b"), docker_container_name("a\tb"));
    }

    #[test]
    fn trailing_newline_is_sanitised() {
        let name = stable_k8s_name("site-1\n", 63);
        assert_ne!(name, "site-1\n");
        assert!(is_dns1035_label(&name));
    }
}
