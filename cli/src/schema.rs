//! `prepare --schema`: the machine-readable argument description the reference prints.

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
            {"name": "--schema", "type": "boolean", "required": false,
             "description": "print command schema as JSON and exit", "default": false}
        ],
        "examples": PREPARE_EXAMPLES,
    })
}
