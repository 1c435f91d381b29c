//! `prepare --schema`: the machine-readable argument description the reference prints.

use flare_deploy_core::NvflareRelease;
use serde_json::{json, Value};

use crate::args::PREPARE_EXAMPLES;

pub fn prepare_schema() -> Value {
    let kit_help = "Existing input startup kit directory.";
    json!({
        "schema_version": "1",
        "command": "flare-deploy prepare",
        "description": "Prepare an existing server/client startup kit for a deployment runtime.",
        "args": [
            {"name": "kit", "type": "string", "required": false, "description": kit_help, "default": null, "nargs": "?"},
            {"name": "--kit", "type": "string", "required": false, "description": kit_help, "default": null},
            {"name": "--output", "type": "path", "required": false,
             "description": "Directory to write the prepared startup kit copy. Defaults to <kit>/prepared/<runtime>.",
             "default": null},
            {"name": "--config", "type": "string", "required": false,
             "description": "YAML runtime config file with a top-level runtime: key. Defaults to <kit>/config.yaml.",
             "default": null},
            {"name": "--nvflare-version", "type": "string", "required": false,
             "description": "NVFlare release the site runs: 2.8 or 2.9 (a full version such as 2.9.0 selects its minor release). Wins over the config's nvflare_version; default 2.9.",
             "default": null, "choices": NvflareRelease::ALL.map(NvflareRelease::as_str)},
            {"name": "--schema", "type": "boolean", "required": false,
             "description": "print command schema as JSON and exit", "default": false}
        ],
        "examples": PREPARE_EXAMPLES,
    })
}
