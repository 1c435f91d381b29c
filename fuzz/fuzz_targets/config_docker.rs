//! Untrusted YAML config text -> `RuntimeConfig::parse` -> the Docker target's
//! `validate_config`. Any `Err` is fine; a panic, a hang or runaway memory is a bug.
#![no_main]

use std::path::Path;

use flare_deploy_core::{RuntimeConfig, RuntimeTarget};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = RuntimeConfig::parse(
        text,
        Path::new("fuzz.yaml"),
        |n| n == "docker" || n == "k8s",
        || vec!["docker".into(), "k8s".into()],
    );
    if let Ok(cfg) = parsed {
        let _ = RuntimeTarget::validate_config(&flare_deploy_docker::DockerTarget, &cfg);
    }
});
