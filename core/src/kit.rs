//! Startup kits: validation and detection of role, site name, organisation and ports
//! (reference spec section 3).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, Result};
use crate::json;

/// The role a kit was provisioned for, from the role file in `startup/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
            Role::Admin => "admin",
        }
    }

    /// The file in `startup/` that marks the role.
    pub fn role_file(self) -> &'static str {
        match self {
            Role::Server => "fed_server.json",
            Role::Client => "fed_client.json",
            Role::Admin => "fed_admin.json",
        }
    }

    /// The certificate whose subject carries the organisation.
    pub fn cert_file(self) -> &'static str {
        match self {
            Role::Server => "server.crt",
            _ => "client.crt",
        }
    }

    fn identity_files(self) -> [&'static str; 3] {
        match self {
            Role::Server => ["rootCA.pem", "server.crt", "server.key"],
            _ => ["rootCA.pem", "client.crt", "client.key"],
        }
    }
}

/// What the engine knows about a validated input kit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitInfo {
    pub kit_dir: PathBuf,
    pub role: Role,
    /// Site name: the client's FQSN or the server's name.
    pub name: String,
    /// Organisation, from the certificate subject's O attribute.
    pub org: String,
    /// Server only: port of `servers[0].service.target`.
    pub fed_learn_port: Option<u16>,
    /// Server only: `servers[0].admin_port`, or the fed-learn port when absent.
    pub admin_port: Option<u16>,
}

pub const RESOURCES_JSON_DEFAULT: &str = "resources.json.default";

/// Where the site identity goes on the parent's command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uid {
    /// `uid=<name>` among the `--set` values (how `start_docker.sh` runs a client).
    Included,
    /// Left out; the runtime adds it (the Helm chart appends it as the last arg).
    Omitted,
}

impl KitInfo {
    /// The arguments after the python executable that start this kit's parent process
    /// (server or client) with the kit mounted at `workspace`.
    pub fn parent_args(&self, workspace: &str, uid: Uid) -> Vec<String> {
        let (module, role_file) = match self.role {
            Role::Server => ("nvflare.private.fed.app.server.server_train", "fed_server.json"),
            _ => ("nvflare.private.fed.app.client.client_train", "fed_client.json"),
        };
        let mut args: Vec<String> = [
            "-u",
            "-m",
            module,
            "-m",
            workspace,
            "-s",
            role_file,
            "--set",
            "secure_train=true",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let org = format!("org={}", self.org);
        if self.role == Role::Client && uid == Uid::Included {
            args.extend([format!("uid={}", self.name), org, "config_folder=config".into()]);
        } else {
            args.extend(["config_folder=config".into(), org]);
        }
        args
    }
}

/// The role of the kit at `kit_dir` when exactly one role file is present.
pub fn role_of(kit_dir: &Path) -> Option<Role> {
    let startup = kit_dir.join("startup");
    let found: Vec<Role> = [Role::Server, Role::Client, Role::Admin]
        .into_iter()
        .filter(|r| startup.join(r.role_file()).is_file())
        .collect();
    match found[..] {
        [role] => Some(role),
        _ => None,
    }
}

/// Checks the kit layout and reads its identity, in the reference's order.
pub fn inspect_kit(kit_dir: &Path) -> Result<KitInfo> {
    inspect(kit_dir).map(|(info, _)| info)
}

/// [`inspect_kit`], also returning the parsed `local/resources.json.default`, so that it
/// is parsed once per prepare.
pub fn inspect(kit_dir: &Path) -> Result<(KitInfo, Map<String, Value>)> {
    if !kit_dir.is_dir() {
        return Err(Error::invalid_kit(
            format!("Startup kit directory does not exist: {}", kit_dir.display()),
            "Provide an existing kit directory.",
        ));
    }
    let startup = kit_dir.join("startup");
    let local = kit_dir.join("local");
    if !startup.is_dir() {
        return Err(Error::invalid_kit(
            format!("Missing startup directory: {}", startup.display()),
            "Provide a valid startup kit.",
        ));
    }
    if !local.is_dir() {
        return Err(Error::invalid_kit(
            format!("Missing local directory: {}", local.display()),
            "Provide a valid startup kit.",
        ));
    }
    let found: Vec<Role> = [Role::Server, Role::Client, Role::Admin]
        .into_iter()
        .filter(|r| startup.join(r.role_file()).is_file())
        .collect();
    let [role] = found[..] else {
        let found = if found.is_empty() {
            "none".to_string()
        } else {
            let names: Vec<String> = found.iter().map(|r| format!("'{}'", r.as_str())).collect();
            format!("[{}]", names.join(", "))
        };
        return Err(Error::invalid_kit(
            format!("Expected exactly one role file in startup/, found: {found}"),
            "A kit should contain one of fed_server.json, fed_client.json, or fed_admin.json.",
        ));
    };
    let resources = json::load_object(&local.join(RESOURCES_JSON_DEFAULT), RESOURCES_JSON_DEFAULT)?;
    let role_config = json::load_object(&startup.join(role.role_file()), role.role_file())?;
    let dir_name = kit_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if role == Role::Admin {
        return Err(Error::new(
            ErrorCode::UnsupportedKit,
            "Admin startup kits are not supported by 'nvflare deploy prepare'.",
            "Use a server or client startup kit.",
        ));
    }
    let missing: Vec<String> = role
        .identity_files()
        .iter()
        .filter(|f| !startup.join(f).is_file())
        .map(|f| format!("'{f}'"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid_kit(
            format!(
                "Missing identity material in {}: [{}]",
                startup.display(),
                missing.join(", ")
            ),
            "Use a fully provisioned or packaged startup kit.",
        ));
    }
    let name = detect_name(role, &role_config, &dir_name)?;
    let org = detect_org(&startup, role)?;
    let (fed_learn_port, admin_port) = match role {
        Role::Server => detect_ports(&role_config)?,
        _ => (None, None),
    };
    let info = KitInfo {
        kit_dir: kit_dir.to_path_buf(),
        role,
        name,
        org,
        fed_learn_port,
        admin_port,
    };
    Ok((info, resources))
}

fn shape_error(file: &str, what: &str) -> Error {
    Error::invalid_kit(format!("{file} {what}"), "Fix the startup kit JSON.")
}

/// `servers[0]` of a role file, or an empty object when `servers` is absent or empty.
fn first_server<'a>(role_config: &'a Map<String, Value>, file: &str) -> Result<Option<&'a Map<String, Value>>> {
    match role_config.get("servers") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => match items.first() {
            None => Ok(None),
            Some(Value::Object(server)) => Ok(Some(server)),
            Some(_) => Err(shape_error(file, "servers[0] must be a JSON object.")),
        },
        Some(_) => Err(shape_error(file, "servers must be a list.")),
    }
}

/// Python's `str()` of a JSON scalar used as a name; falsy values mean "not set".
fn name_value(value: Option<&Value>, file: &str, key: &str) -> Result<Option<String>> {
    Ok(match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(true)) => Some("True".into()),
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => None,
        Some(Value::Number(n)) => Some(match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => json::python_float_repr(f),
            _ => n.to_string(),
        }),
        Some(_) => return Err(shape_error(file, &format!("{key} must be a string."))),
    })
}

fn detect_name(role: Role, role_config: &Map<String, Value>, dir_name: &str) -> Result<String> {
    let file = role.role_file();
    let found = match role {
        Role::Client => match role_config.get("client") {
            None | Some(Value::Null) => None,
            Some(Value::Object(client)) => name_value(client.get("fqsn"), file, "client.fqsn")?,
            Some(_) => return Err(shape_error(file, "client must be a JSON object.")),
        },
        _ => match first_server(role_config, file)? {
            None => None,
            Some(server) => match name_value(server.get("identity"), file, "servers[0].identity")? {
                Some(name) => Some(name),
                None => name_value(server.get("admin_server"), file, "servers[0].admin_server")?,
            },
        },
    };
    Ok(found.unwrap_or_else(|| dir_name.to_string()))
}

fn detect_org(startup: &Path, role: Role) -> Result<String> {
    let cert_name = role.cert_file();
    let pem = std::fs::read(startup.join(cert_name)).map_err(|e| {
        Error::invalid_kit(
            format!("Failed to parse {cert_name}: {e}"),
            "Use a valid provisioned startup kit.",
        )
    })?;
    organization_from_pem(&pem, cert_name)
}

/// The first organisation (O) of a PEM certificate's subject; `cert_name` is used in
/// messages.
pub fn organization_from_pem(pem_bytes: &[u8], cert_name: &str) -> Result<String> {
    let hint = "Use a valid provisioned startup kit.";
    let parse_error =
        |detail: &dyn std::fmt::Display| Error::invalid_kit(format!("Failed to parse {cert_name}: {detail}"), hint);
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_bytes).map_err(|e| parse_error(&e))?;
    let cert = pem.parse_x509().map_err(|e| parse_error(&e))?;
    let org = cert
        .subject()
        .iter_organization()
        .next()
        .map(|attr| attr.as_str().map(str::to_string))
        .transpose()
        .map_err(|e| parse_error(&e))?;
    match org {
        Some(org) if !org.is_empty() => Ok(org),
        _ => Err(Error::invalid_kit(
            format!("Missing organization in {cert_name}."),
            hint,
        )),
    }
}

fn detect_ports(role_config: &Map<String, Value>) -> Result<(Option<u16>, Option<u16>)> {
    let file = Role::Server.role_file();
    let Some(server) = first_server(role_config, file)? else {
        return Ok((None, None));
    };
    let target = match server.get("service") {
        None | Some(Value::Null) => None,
        Some(Value::Object(service)) => service.get("target").and_then(Value::as_str),
        Some(_) => return Err(shape_error(file, "servers[0].service must be a JSON object.")),
    };
    let fed_port = match target.and_then(port_text_from_target).and_then(parse_python_int) {
        None => None,
        Some(port) => Some(checked_port(port, file, "servers[0].service.target")?),
    };
    let admin_port = match server.get("admin_port") {
        // Booleans are not ports, unlike in the reference (Python's bool is an int).
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            let port = n
                .as_i64()
                .map_or(i128::from(n.as_u64().unwrap_or(u64::MAX)), i128::from);
            Some(checked_port(port, file, "servers[0].admin_port")?)
        }
        _ => fed_port,
    };
    Ok((fed_port, admin_port))
}

fn checked_port(port: i128, file: &str, key: &str) -> Result<u16> {
    u16::try_from(port).ok().filter(|p| *p != 0).ok_or_else(|| {
        Error::invalid_kit(
            format!("{file} {key} has port {port}; a port must be between 1 and 65535."),
            "Fix the startup kit JSON.",
        )
    })
}

fn port_text_from_target(target: &str) -> Option<&str> {
    target.rsplit_once(':').map(|(_, tail)| tail)
}

/// Python `int(str)`: surrounding whitespace, one sign and single `_` between digits.
fn parse_python_int(text: &str) -> Option<i128> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let cleaned: String = digits.chars().filter(|c| *c != '_').collect();
    if !cleaned.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // Python ints have no limit; anything past i128 is out of port range all the same.
    let value: i128 = cleaned.parse().unwrap_or(i128::MAX);
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_ports_are_reported_as_written() {
        let config = |admin: &str, target: &str| -> Map<String, Value> {
            serde_json::from_str(&format!(
                r#"{{"servers": [{{"service": {{"target": "{target}"}}, "admin_port": {admin}}}]}}"#
            ))
            .expect("json")
        };
        let err = detect_ports(&config("18446744073709551615", "h:8002")).expect_err("too big");
        assert!(
            err.message.contains("has port 18446744073709551615;"),
            "{}",
            err.message
        );
        let err = detect_ports(&config("8003", "h:99999999999999999999999")).expect_err("too big");
        assert!(
            err.message.contains("has port 99999999999999999999999;"),
            "{}",
            err.message
        );
        assert_eq!(
            detect_ports(&config("8003", "h:8002")).expect("valid"),
            (Some(8002), Some(8003))
        );
    }

    #[test]
    fn python_int_semantics_for_target_ports() {
        assert_eq!(parse_python_int(" 8002"), Some(8002));
        assert_eq!(parse_python_int("+8_002"), Some(8002));
        assert_eq!(parse_python_int("-5"), Some(-5));
        assert_eq!(parse_python_int("80a"), None);
        assert_eq!(parse_python_int("8__0"), None);
        assert_eq!(parse_python_int(""), None);
    }
}
