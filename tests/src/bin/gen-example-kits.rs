//! Writes the example kits under `examples/kits/` (a server, a client and an admin of
//! one project). Their keys are generated for tests and examples only.
//!
//! `cargo run -p flare-deploy-tests --bin gen-example-kits -- examples/kits`

use std::path::PathBuf;

use flare_deploy_tests::Project;
use serde_json::json;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "examples/kits".into()));
    if dir.exists() {
        eprintln!("{} exists; remove it first", dir.display());
        std::process::exit(2);
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let project = Project::new("example_project");
    project
        .server("server1")
        .fed_port(8002)
        .admin_port(Some(json!(8003)))
        .stale_resources_json(false)
        .build(&dir);
    project
        .client("site-1")
        .stale_resources_json(false)
        .comm_config(json!({"allow_adhoc_conns": false, "backbone_conn_gen": 2,
                             "internal": {"scheme": "tcp", "resources": {"host": "localhost", "port": 8102, "connection_security": "clear"}}}))
        .build(&dir);
    project
        .admin("admin@nvidia.com")
        .stale_resources_json(false)
        .build(&dir);
    println!("wrote example kits to {}", dir.display());
}
