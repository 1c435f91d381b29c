//! `startup/start_docker.sh`: starts the parent container the way the reference's
//! script does, with every input value quoted.

use flare_deploy_core::kit::Uid;
use flare_deploy_core::naming::docker_container_name as container_name;
use flare_deploy_core::template::{self, Fill};
use flare_deploy_core::{shell, KitInfo, Result, Role, WORKSPACE_MOUNT_PATH};

use crate::config::DockerConfig;

const TEMPLATE: &str = include_str!("../../../templates/docker/start_docker.sh");

/// Python inside the parent image that runs the parent process.
pub const PARENT_PYTHON: &str = "/usr/local/bin/python3";
const DEFAULT_FED_LEARN_PORT: u16 = 8002;

/// The parent process command line, as it runs inside the container.
pub fn parent_command(kit: &KitInfo) -> Vec<String> {
    let mut command = vec![PARENT_PYTHON.to_string()];
    command.extend(kit.parent_args(WORKSPACE_MOUNT_PATH, Uid::Included));
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
    let publish_ports: Vec<String> = published_ports(kit).iter().map(|p| format!("-p {p}:{p} \\")).collect();
    // One quoted word per line, each but the last continued with a backslash.
    let command = parent_command(kit);
    let command_lines: Vec<String> = command
        .iter()
        .enumerate()
        .map(|(i, arg)| {
            let continuation = if i + 1 < command.len() { " \\" } else { "" };
            format!("{}{continuation}", shell::word(arg))
        })
        .collect();
    let values = [
        ("ROLE", Fill::Text(role.to_string())),
        (
            "DOCKER_IMAGE",
            Fill::Text(shell::double_quote(&config.parent.docker_image)),
        ),
        ("SITE_NAME", Fill::Text(shell::word(&kit.name))),
        ("NETWORK_NAME", Fill::Text(shell::double_quote(&config.parent.network))),
        ("CONTAINER_NAME", Fill::Text(shell::word(&container_name(&kit.name)))),
        ("SERVER_NETWORK_ARGS", Fill::Lines(server_network_args)),
        ("PUBLISH_PORTS", Fill::Lines(publish_ports)),
        ("PARENT_COMMAND", Fill::Lines(command_lines)),
    ];
    template::render(TEMPLATE, &values)
}
