//! Untrusted kit JSON files -> `kit::inspect_kit` and the patches that edit them
//! (`patch::resources::install_launcher`, `patch::storage::relocate_server_storage`,
//! `patch::comm::edit`). Any `Err` is fine; a panic is a bug, and so is a patch that
//! reports success but leaves a file it cannot read back.
//!
//! Input layout: the first byte selects what the rest becomes.
//!   bits 0-1: 0 = startup/fed_server.json (server kit), 1 = startup/fed_client.json
//!             (client kit), 2 = local/resources.json.default, 3 = local/comm_config.json
//!   bit 2:    for 2 and 3, the kit: 0 = server (server1), 1 = client (site-1)
//!   bit 3:    also leave an active local/resources.json override (the patch removes it)
//!   bit 4:    install the launcher like `prepare` does, with the real Docker and
//!             Kubernetes launchers known, instead of an unknown `docker_launcher`/`x.Y`
//!   bit 5:    edit the comm config like `prepare` does (`listen_in_container`) instead
//!             of only setting the scheme and creating `internal.resources`
//! Every other file of the kit is the valid example kit from examples/kits.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flare_deploy_core::kit::inspect_kit;
use flare_deploy_core::patch::{comm, resources, storage};
use flare_deploy_core::{json, LauncherClass, Role};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// (path inside the kit, contents) of one example kit.
type KitFiles = &'static [(&'static str, &'static [u8])];

macro_rules! kit_file {
    ($kit:literal, $path:literal) => {
        (
            $path,
            include_bytes!(concat!("../../examples/kits/", $kit, "/", $path)) as &[u8],
        )
    };
}

const SERVER_KIT: KitFiles = &[
    kit_file!("server1", "startup/fed_server.json"),
    kit_file!("server1", "startup/rootCA.pem"),
    kit_file!("server1", "startup/server.crt"),
    kit_file!("server1", "startup/server.key"),
    kit_file!("server1", "local/resources.json.default"),
];

const CLIENT_KIT: KitFiles = &[
    kit_file!("site-1", "startup/fed_client.json"),
    kit_file!("site-1", "startup/rootCA.pem"),
    kit_file!("site-1", "startup/client.crt"),
    kit_file!("site-1", "startup/client.key"),
    kit_file!("site-1", "local/resources.json.default"),
    kit_file!("site-1", "local/comm_config.json"),
];

/// Files a run may create or replace and the reset removes.
const WRITABLE: [&str; 2] = ["local/comm_config.json", "local/resources.json"];

struct Kits {
    _root: tempfile::TempDir,
    server: PathBuf,
    client: PathBuf,
}

fn kits() -> &'static Kits {
    static KITS: OnceLock<Kits> = OnceLock::new();
    KITS.get_or_init(|| {
        // Each run rewrites the kit a few times: a RAM-backed directory keeps that cheap.
        let base = std::env::var_os("FUZZ_KIT_TMPDIR")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
            .unwrap_or_else(std::env::temp_dir);
        let root = tempfile::Builder::new()
            .prefix("flare-deploy-fuzz-kit")
            .tempdir_in(base)
            .expect("temp dir");
        let server = root.path().join("server1");
        let client = root.path().join("site-1");
        for (kit, files) in [(&server, SERVER_KIT), (&client, CLIENT_KIT)] {
            fs::create_dir_all(kit.join("startup")).expect("startup dir");
            fs::create_dir_all(kit.join("local")).expect("local dir");
            for (name, bytes) in files {
                fs::write(kit.join(name), bytes).expect("write kit file");
            }
        }
        Kits {
            _root: root,
            server,
            client,
        }
    })
}

/// Lays the example kit's JSON files down again (the previous run's patches edited them;
/// the certificates and keys are never written and stay as laid out once).
fn reset(kit: &Path, files: KitFiles) {
    for name in WRITABLE {
        let _ = fs::remove_file(kit.join(name));
    }
    for (name, bytes) in files
        .iter()
        .filter(|(name, _)| name.ends_with(".json") || name.ends_with(".default"))
    {
        fs::write(kit.join(name), bytes).expect("write kit file");
    }
}

/// serde_json parses floats fast rather than exactly, so a value written in shortest
/// round-trip form may read back one ulp off; anything else must be identical.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15,
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        _ => a == b,
    }
}

/// The kit writer (Python `json.dumps(indent=4)` form) must produce JSON that reads back
/// as the same document, keys in the same order.
fn check_writer_round_trip(input: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    let text = json::to_file_string(&value).expect("an in-memory JSON value serialises");
    let back: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("json::to_file_string wrote unreadable JSON ({e}):\n{text}"));
    assert!(
        same(&value, &back),
        "json::to_file_string changed the document:\n{text}"
    );
    let line = json::to_line(&value);
    let back: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("json::to_line wrote unreadable JSON ({e}):\n{line}"));
    assert!(same(&value, &back), "json::to_line changed the document:\n{line}");
}

fn component_ids(doc: &Map<String, Value>) -> Vec<String> {
    doc.get("components")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const DOCKER: LauncherClass = flare_deploy_docker::DOCKER_LAUNCHER;
const K8S: LauncherClass = flare_deploy_k8s::K8S_LAUNCHER;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let kits = kits();
    let (fuzzed, client) = match selector & 3 {
        0 => ("startup/fed_server.json", false),
        1 => ("startup/fed_client.json", true),
        2 => ("local/resources.json.default", selector & 4 != 0),
        _ => ("local/comm_config.json", selector & 4 != 0),
    };
    let (kit, files) = if client {
        (&kits.client, CLIENT_KIT)
    } else {
        (&kits.server, SERVER_KIT)
    };
    let local = kit.join("local");
    let lay_out = || {
        reset(kit, files);
        fs::write(kit.join(fuzzed), input).expect("write fuzzed file");
        if selector & 8 != 0 {
            fs::write(local.join("resources.json"), b"{}").expect("write resources.json");
        }
    };

    check_writer_round_trip(input);

    lay_out();
    let _ = inspect_kit(kit);

    // The launcher, as `prepare` installs it.
    let (known, id, path): (&[LauncherClass], &str, &str) = if selector & 16 != 0 {
        let role = if client { Role::Client } else { Role::Server };
        (&[DOCKER, K8S], DOCKER.id, DOCKER.path_for(role))
    } else {
        (&[], "docker_launcher", "x.Y")
    };
    let mut warnings = Vec::new();
    if resources::install_launcher(&local, known, id, path, Map::new(), &mut warnings).is_ok() {
        let doc = resources::load(&local).expect("install_launcher wrote a readable resources.json.default");
        let ids = component_ids(&doc);
        assert_eq!(
            ids.last().map(String::as_str),
            Some(id),
            "launcher is the last component: {ids:?}"
        );
        assert_eq!(ids.iter().filter(|i| *i == id).count(), 1, "one launcher: {ids:?}");
        assert_eq!(
            ids.iter().filter(|i| *i == "resource_manager").count(),
            1,
            "one resource manager: {ids:?}"
        );
        assert!(!local.join("resources.json").exists(), "the active override is removed");
    }

    // Server storage, on the kit as it was.
    lay_out();
    let mut warnings = Vec::new();
    if storage::relocate_server_storage(&local, "/ws", &mut warnings).is_ok() {
        resources::load(&local).expect("relocate_server_storage wrote a readable resources.json.default");
    }

    // The internal connection.
    lay_out();
    let edited = comm::edit(&local, |c| {
        if selector & 32 != 0 {
            c.listen_in_container()
        } else {
            c.set_scheme("tcp")?;
            c.internal_resources().map(|_| ())
        }
    });
    if edited.is_ok() {
        let doc = json::load_object(&local.join(comm::COMM_CONFIG_JSON), comm::COMM_CONFIG_JSON)
            .expect("comm::edit wrote a readable comm_config.json");
        let scheme = doc.get("internal").and_then(|i| i.get("scheme"));
        assert_eq!(scheme, Some(&Value::from("tcp")), "internal.scheme is set");
        let resources = doc.get("internal").and_then(|i| i.get("resources"));
        assert!(
            resources.is_some_and(Value::is_object),
            "internal.resources is a mapping"
        );
        if selector & 32 != 0 {
            let host = resources.and_then(|r| r.get("host"));
            assert_eq!(
                host,
                Some(&Value::from("0.0.0.0")),
                "the parent listens on every interface"
            );
            assert!(
                resources.is_some_and(|r| r.get("connection_security").is_some()),
                "connection_security is set"
            );
        }
    }
});
