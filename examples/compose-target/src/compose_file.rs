//! The Compose document: the same container `start_docker.sh` starts with `docker run`.

use std::os::unix::fs::MetadataExt;

use flare_deploy_core::kit::Uid;
use flare_deploy_core::naming::docker_container_name;
use flare_deploy_core::prepare::display_path;
use flare_deploy_core::{Role, StagedKit, WORKSPACE_MOUNT_PATH};
use serde_json::{json, Map, Value};

use crate::config::ComposeConfig;

const PARENT_PYTHON: &str = "/usr/local/bin/python3";
const DOCKER_SOCKET: &str = "/var/run/docker.sock";
const DEFAULT_FED_LEARN_PORT: u16 = 8002;

/// Compose interpolates `$NAME` in values; `$$` is a literal dollar.
fn literal(text: &str) -> Value {
    Value::String(text.replace('$', "$$"))
}

pub fn document(kit: &StagedKit<'_>, config: &ComposeConfig) -> Value {
    let info = &kit.info;
    let workspace = display_path(&kit.final_output);
    // `docker run --user "$(id -u):$(id -g)"` runs as whoever starts the script; Compose
    // cannot run commands, so the owner of the prepared kit (who ran prepare) is used.
    let owner = std::fs::metadata(kit.root())
        .map(|m| (m.uid(), m.gid()))
        .unwrap_or((0, 0));
    let mut service = Map::new();
    service.insert("image".into(), literal(&config.parent.docker_image));
    service.insert("container_name".into(), literal(&docker_container_name(&info.name)));
    service.insert("user".into(), json!(format!("{}:{}", owner.0, owner.1)));
    // The script adds the Docker socket's group when it is not root's; so does this file.
    if let Ok(meta) = std::fs::metadata(DOCKER_SOCKET) {
        if meta.gid() != 0 {
            service.insert("group_add".into(), json!([meta.gid().to_string()]));
        }
    }
    let mut network = Map::new();
    if info.role == Role::Server {
        network.insert("aliases".into(), json!(["server"]));
    }
    service.insert("networks".into(), json!({ "nvflare": Value::Object(network) }));
    service.insert(
        "volumes".into(),
        json!([
            {"type": "bind", "source": literal(&workspace), "target": WORKSPACE_MOUNT_PATH},
            {"type": "bind", "source": DOCKER_SOCKET, "target": DOCKER_SOCKET}
        ]),
    );
    service.insert(
        "environment".into(),
        json!({ "NVFL_DOCKER_WORKSPACE": literal(&workspace) }),
    );
    if info.role == Role::Server {
        let fed = info.fed_learn_port.unwrap_or(DEFAULT_FED_LEARN_PORT);
        let mut ports = vec![fed];
        ports.extend(info.admin_port.filter(|a| *a != fed));
        let ports: Vec<Value> = ports.iter().map(|p| json!(format!("{p}:{p}"))).collect();
        service.insert("ports".into(), Value::Array(ports));
    }
    let mut command = vec![literal(PARENT_PYTHON)];
    command.extend(
        info.parent_args(WORKSPACE_MOUNT_PATH, Uid::Included)
            .iter()
            .map(|a| literal(a)),
    );
    service.insert("command".into(), Value::Array(command));

    // No top-level `name`: Compose names the project after the kit's directory, and the
    // element is missing from older Compose schemas that validators still ship.
    json!({
        "services": { "parent": Value::Object(service) },
        "networks": { "nvflare": { "name": literal(&config.parent.network) } },
    })
}
