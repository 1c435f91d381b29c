//! Image references split into repository, tag and digest.

/// `registry[:port]/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

/// Splits an image reference. A `:` belongs to the tag only after the last `/` (before
/// it, it is a registry port), and `@` starts a digest.
pub fn split_image(image: &str) -> ImageRef {
    let (name, digest) = image.split_once('@').unwrap_or((image, ""));
    let last_slash = name.rfind('/');
    let (repository, tag) = match name.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => (&name[..colon], &name[colon + 1..]),
        _ => (name, ""),
    };
    ImageRef {
        repository: repository.to_string(),
        tag: tag.to_string(),
        digest: digest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(image: &str) -> (String, String, String) {
        let r = split_image(image);
        (r.repository, r.tag, r.digest)
    }

    #[test]
    fn registry_ports_and_digests() {
        let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(parts("nvflare/nvflare:2.8.1"), s("nvflare/nvflare", "2.8.1", ""));
        assert_eq!(parts("nvflare"), s("nvflare", "", ""));
        assert_eq!(parts("localhost:5000/repo"), s("localhost:5000/repo", "", ""));
        assert_eq!(parts("localhost:5000/repo:1.0"), s("localhost:5000/repo", "1.0", ""));
        assert_eq!(parts("repo@sha256:abc"), s("repo", "", "sha256:abc"));
        assert_eq!(
            parts("reg:5000/repo:1.0@sha256:abc"),
            s("reg:5000/repo", "1.0", "sha256:abc")
        );
    }
}
