//! `startup/start_docker.sh`: starts the parent container the way the reference's
//! script does, with every input value quoted.

use flare_deploy_core::naming::stable_digest;
use flare_deploy_core::template::{self, Fill};
use flare_deploy_core::{shell, KitInfo, Result, Role, WORKSPACE_MOUNT_PATH};

use crate::config::DockerConfig;

const TEMPLATE: &str = include_str!("../../../templates/docker/start_docker.sh");

/// Python inside the parent image that runs the parent process.
pub const PARENT_PYTHON: &str = "/usr/local/bin/python3";
const DEFAULT_FED_LEARN_PORT: u16 = 8002;

/// Docker container names match `[a-zA-Z0-9][a-zA-Z0-9_.-]+`. A site name that does not
/// is turned into one that does, with a digest of the raw name to keep it unique.
pub fn container_name(site: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    let valid = site.len() >= 2
        && site.starts_with(|c: char| c.is_ascii_alphanumeric())
        && site.chars().all(allowed);
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

/// The parent process command line, as it runs inside the container.
pub fn parent_command(kit: &KitInfo) -> Vec<String> {
    let (module, role_file) = match kit.role {
        Role::Server => (
            "nvflare.private.fed.app.server.server_train",
            "fed_server.json",
        ),
        _ => (
            "nvflare.private.fed.app.client.client_train",
            "fed_client.json",
        ),
    };
    let mut command: Vec<String> = [
        PARENT_PYTHON,
        "-u",
        "-m",
        module,
        "-m",
        WORKSPACE_MOUNT_PATH,
        "-s",
        role_file,
        "--set",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let org = format!("org={}", kit.org);
    match kit.role {
        Role::Server => command.extend([
            "secure_train=true".into(),
            "config_folder=config".into(),
            org,
        ]),
        _ => command.extend([
            "secure_train=true".into(),
            format!("uid={}", kit.name),
            org,
            "config_folder=config".into(),
        ]),
    }
    command
}

/// Ports the server container publishes: fed-learn, then admin when it differs.
pub fn published_ports(kit: &KitInfo) -> Vec<u16> {
    if kit.role != Role::Server {
        return Vec::new();
    }
    let fed = kit.fed_learn_port.unwrap_or(DEFAULT_FED_LEARN_PORT);
    let mut ports = vec![fed];
    if let Some(admin) = kit.admin_port.filter(|a| *a != fed) {
        ports.push(admin);
    }
    ports
}

pub fn render(kit: &KitInfo, config: &DockerConfig) -> Result<String> {
    let role = match kit.role {
        Role::Server => "server",
        _ => "client",
    };
    let server_network_args = match kit.role {
        Role::Server => vec!["--network-alias server \\".to_string()],
        _ => Vec::new(),
    };
    let publish_ports: Vec<String> = published_ports(kit)
        .iter()
        .map(|p| format!("-p {p}:{p} \\"))
        .collect();
    // One quoted word per line, each but the last continued with a backslash.
    let command = parent_command(kit);
    let command_lines: Vec<String> = command
        .iter()
        .enumerate()
        .map(|(i, arg)| {
            let continuation = if i + 1 < command.len() { " \\" } else { "" };
            format!("{}{continuation}", shell::quote(arg))
        })
        .collect();
    let values = [
        ("ROLE", Fill::Text(role.to_string())),
        (
            "DOCKER_IMAGE",
            Fill::Text(shell::double_quote(&config.parent.docker_image)),
        ),
        (
            "SITE_NAME_IN_QUOTES",
            Fill::Text(shell::double_quoted_inner(&kit.name)),
        ),
        (
            "NETWORK_NAME",
            Fill::Text(shell::double_quote(&config.parent.network)),
        ),
        (
            "CONTAINER_NAME",
            Fill::Text(shell::quote(&container_name(&kit.name))),
        ),
        ("SERVER_NETWORK_ARGS", Fill::Lines(server_network_args)),
        ("PUBLISH_PORTS", Fill::Lines(publish_ports)),
        ("PARENT_COMMAND", Fill::Lines(command_lines)),
    ];
    template::render(TEMPLATE, &values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_docker_rules() {
        assert_eq!(container_name("site-1"), "site-1");
        assert_eq!(container_name("abc.aws.com"), "abc.aws.com");
        for hostile in ["a b", "$(touch x)", "x", "-lead", "é", "'\"`\n"] {
            let name = container_name(hostile);
            assert!(name.len() >= 2, "{name}");
            assert!(
                name.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{name}"
            );
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
                "{name}"
            );
        }
        assert_ne!(container_name("a b"), container_name("a\tb"));
    }
}
