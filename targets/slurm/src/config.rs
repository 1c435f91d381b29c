//! `runtime: slurm` config: keys, defaults and validation in nvflare 2.9.0's order with
//! its messages (docs/dev/nvflare-2.9-behaviour.md C.1, C.2). The structs mirror the
//! YAML; their docs are the JSON Schema users read (`flare-deploy targets show slurm`).
//!
//! Unlike the Docker and Kubernetes configs, and like nvflare 2.9.0, an explicit `null`
//! is refused for `internal_port`, `internal_connection_security` and the timeouts.

use flare_deploy_core::config::allowed_keys;
use flare_deploy_core::patch::comm::InternalSecurity;
use flare_deploy_core::{pyrepr, Error, Result, RuntimeConfig};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value as Json};
use serde_yaml::{Mapping, Value};

/// The `#SBATCH` options a config may set (parent and job directives).
pub const SBATCH_DIRECTIVES: [&str; 6] = ["partition", "account", "qos", "time", "constraint", "reservation"];
/// Scheduler commands the parent runs (absolute paths when configured).
const PARENT_EXECUTABLES: [&str; 4] = ["sbatch", "squeue", "sacct", "scancel"];
/// Commands run on the compute nodes (any non-empty string).
const COMPUTE_EXECUTABLES: [&str; 2] = ["apptainer", "srun"];
const RESERVED_ENV_NAMES: [&str; 12] = [
    "PYTHONPATH",
    "NVFL_WORKSPACE_OWNER_FQCN",
    "NVFL_WORKSPACE_TRANSFER_TOKEN",
    "NVFLARE_JOB_AUTH_TOKEN",
    "NVFLARE_JOB_TOKEN_SIGNATURE",
    "NVFLARE_JOB_SSID",
    "BASHOPTS",
    "EUID",
    "SHELLOPTS",
    "UID",
    "NVFL_APPTAINER",
    "NVFL_SRUN",
];
const RESERVED_ENV_PREFIXES: [&str; 7] = [
    "SLURM_",
    "APPTAINER_",
    "APPTAINERENV_",
    "SINGULARITY_",
    "SINGULARITYENV_",
    "NVFLARE_SLURM_",
    "_nvfl_",
];
pub const DEFAULT_INTERNAL_PORT: u16 = 8102;

const JOB_LAUNCHER_HINT: &str = "Fix slurm config.job_launcher.";
const PARENT_DIRECTIVES_HINT: &str = "Fix the parent Slurm directives.";
const FIX_CONFIG_HINT: &str = "Fix the runtime config.";

/// Runtime config for Slurm: the site's parent (server or client) runs on a login node
/// or as a Slurm batch job, and NVFlare's Slurm job launcher submits every FL job as its
/// own Slurm job. The prepared output is the live workspace on the shared filesystem.
/// Needs NVFlare 2.9 or later.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "flare-deploy runtime config: slurm")]
pub struct SlurmConfig {
    /// Selects this target.
    #[schemars(extend("const" = "slurm"))]
    pub runtime: String,
    /// Client kits only: run the client parent itself as a Slurm batch job
    /// (`startup/parent.slurm`, submitted with the printed `submit_command`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<SlurmParent>,
    /// The Slurm job launcher that submits FL jobs.
    pub job_launcher: SlurmJobLauncher,
}

/// `parent:` keys (client kits only).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlurmParent {
    /// `#SBATCH` options of the parent job, one line each in `startup/parent.slurm`.
    #[serde(default)]
    #[schemars(with = "Option<SbatchDirectives>")]
    pub sbatch_directives: Map<String, Json>,
    /// Shell code run before the parent starts (e.g. `module load python/3.11`), copied
    /// into `startup/parent.slurm` as it is: it is the site's own code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_setup: Option<String>,
}

/// Where FL jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sandbox {
    /// In an Apptainer container (`image` is a `.sif` file).
    Apptainer,
    /// In a Pyxis/enroot container (`image` is a squashfs file).
    Pyxis,
    /// Directly on the compute node with `python_path`.
    None,
}

impl Sandbox {
    pub fn as_str(self) -> &'static str {
        match self {
            Sandbox::Apptainer => "apptainer",
            Sandbox::Pyxis => "pyxis",
            Sandbox::None => "none",
        }
    }
}

/// The `#SBATCH` options a config may set; values are strings or integers without
/// whitespace.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SbatchDirectives {
    partition: Option<StringOrInt>,
    account: Option<StringOrInt>,
    qos: Option<StringOrInt>,
    /// Quote times with colons (`"1:30:00"`).
    time: Option<StringOrInt>,
    constraint: Option<StringOrInt>,
    reservation: Option<StringOrInt>,
}

/// A string (no whitespace) or an integer.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum StringOrInt {
    Text(#[schemars(length(min = 1), regex(pattern = r"^\S+$"))] String),
    Int(i64),
}

/// Configured paths of the Slurm commands; `null` means a `PATH` lookup.
#[derive(Debug, Clone, PartialEq, Default, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Executables {
    /// Absolute path of `sbatch` on the parent's host.
    pub sbatch: Option<String>,
    /// Absolute path of `squeue` on the parent's host.
    pub squeue: Option<String>,
    /// Absolute path of `sacct` on the parent's host.
    pub sacct: Option<String>,
    /// Absolute path of `scancel` on the parent's host.
    pub scancel: Option<String>,
    /// `apptainer` command on the compute nodes.
    pub apptainer: Option<String>,
    /// `srun` command on the compute nodes.
    pub srun: Option<String>,
}

/// `job_launcher:` keys.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlurmJobLauncher {
    /// Where jobs run: `apptainer`, `pyxis` or `none` (required).
    pub sandbox: Sandbox,
    /// Absolute path of the Python (with nvflare 2.9) that runs jobs (required).
    #[schemars(length(min = 1))]
    pub python_path: String,
    /// Paths of the Slurm commands (default: looked up on `PATH`).
    #[serde(default)]
    #[schemars(with = "Option<Executables>")]
    pub executables: Executables,
    /// Absolute path of the container image; required for `apptainer` and `pyxis` (an
    /// existing file, stored resolved), optional for `none`.
    #[serde(default)]
    pub image: Option<String>,
    /// Port on which the parent listens for its jobs (default 8102).
    #[serde(default = "default_internal_port")]
    #[schemars(with = "u16", range(min = 1, max = 65535))]
    pub internal_port: u16,
    /// How the parent and its jobs secure their link: `mtls` (default) or `clear`.
    /// A kit whose internal scheme is `shared-file` uses clear files; `mtls` is then refused.
    #[serde(default = "default_security")]
    #[schemars(with = "InternalSecurity")]
    pub internal_connection_security: InternalSecurity,
    /// `#SBATCH` options of every job.
    #[serde(default)]
    #[schemars(with = "Option<SbatchDirectives>")]
    pub sbatch_directives: Map<String, Json>,
    /// Shell code run in every job before Python starts (default empty).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub setup: String,
    /// Names of parent environment variables passed on to jobs (not launcher-owned
    /// names such as `PYTHONPATH` or `SLURM_*`).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub forward_env: Vec<String>,
    /// Host name the jobs connect back to; needed for a parent that does not run inside
    /// a Slurm allocation (a server on a login node).
    #[serde(default)]
    pub parent_host: Option<String>,
    /// Seconds `sbatch` may take (default 30).
    #[serde(default = "default_submit_timeout")]
    #[schemars(with = "f64", extend("exclusiveMinimum" = 0))]
    pub submit_timeout: f64,
    /// Seconds `squeue`/`sacct` may take (default 10).
    #[serde(default = "default_query_timeout")]
    #[schemars(with = "f64", extend("exclusiveMinimum" = 0))]
    pub query_timeout: f64,
    /// Seconds `scancel` may take (default 10).
    #[serde(default = "default_cancel_timeout")]
    #[schemars(with = "f64", extend("exclusiveMinimum" = 0))]
    pub cancel_timeout: f64,
    /// Seconds between job state polls (default 10).
    #[serde(default = "default_poll_interval")]
    #[schemars(with = "f64", extend("exclusiveMinimum" = 0))]
    pub poll_interval: f64,
    /// Seconds a job may stay pending before it is cancelled (default 600).
    #[serde(default = "default_pending_timeout")]
    #[schemars(with = "f64", extend("exclusiveMinimum" = 0))]
    pub pending_timeout: f64,
    /// Rendezvous ports of multi-node jobs, `"START-END"` or `[START, END]` (1024..65535,
    /// not containing `internal_port`); written only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<PortRange>")]
    pub multi_node_port_range: Option<[u16; 2]>,
    /// Whether the config set `internal_port` (a shared-file kit does not use it).
    #[serde(skip)]
    #[schemars(skip)]
    pub internal_port_set: bool,
    /// Whether the config set `internal_connection_security`.
    #[serde(skip)]
    #[schemars(skip)]
    pub internal_connection_security_set: bool,
}

/// `"START-END"` or `[START, END]`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum PortRange {
    Text(#[schemars(regex(pattern = r"^[0-9]+-[0-9]+$"))] String),
    Pair([u16; 2]),
}

fn default_submit_timeout() -> f64 {
    30.0
}

fn default_query_timeout() -> f64 {
    10.0
}

fn default_cancel_timeout() -> f64 {
    10.0
}

fn default_poll_interval() -> f64 {
    10.0
}

fn default_pending_timeout() -> f64 {
    600.0
}

fn default_internal_port() -> u16 {
    DEFAULT_INTERNAL_PORT
}

fn default_security() -> InternalSecurity {
    InternalSecurity::Mtls
}

fn launcher_error(message: impl Into<String>) -> Error {
    Error::invalid_config(message, JOB_LAUNCHER_HINT)
}

pub fn validate(config: &RuntimeConfig) -> Result<SlurmConfig> {
    let root = &config.root;
    allowed_keys(root, &["runtime", "parent", "job_launcher"], "slurm config")?;
    let parent = match root.get("parent") {
        None | Some(Value::Null) => None,
        Some(value) => Some(parent(value)?),
    };
    let Some(job_launcher) = root.get("job_launcher") else {
        return Err(Error::invalid_config(
            "slurm config.job_launcher is required.",
            "Add the Slurm launcher settings.",
        ));
    };
    let Value::Mapping(job_launcher) = job_launcher else {
        return Err(Error::invalid_config(
            "job_launcher must be a YAML mapping.",
            FIX_CONFIG_HINT,
        ));
    };
    allowed_keys(
        job_launcher,
        &[
            "sandbox",
            "image",
            "internal_port",
            "internal_connection_security",
            "sbatch_directives",
            "setup",
            "python_path",
            "executables",
            "forward_env",
            "parent_host",
            "submit_timeout",
            "query_timeout",
            "cancel_timeout",
            "poll_interval",
            "pending_timeout",
            "multi_node_port_range",
        ],
        "job_launcher",
    )?;
    let security = match job_launcher.get("internal_connection_security") {
        None => InternalSecurity::Mtls,
        Some(Value::String(s)) if s == "mtls" => InternalSecurity::Mtls,
        Some(Value::String(s)) if s == "clear" => InternalSecurity::Clear,
        Some(_) => {
            return Err(Error::invalid_config(
                "job_launcher.internal_connection_security must be 'clear' or 'mtls'.",
                "Set job_launcher.internal_connection_security to 'clear' or 'mtls'.",
            ))
        }
    };
    let mut launcher = normalize_launcher(job_launcher).map_err(launcher_error)?;
    launcher.internal_connection_security = security;
    launcher.internal_connection_security_set = job_launcher.contains_key("internal_connection_security");
    Ok(SlurmConfig {
        runtime: config.runtime().to_string(),
        parent,
        job_launcher: launcher,
    })
}

fn parent(value: &Value) -> Result<SlurmParent> {
    let Value::Mapping(map) = value else {
        return Err(Error::invalid_config("parent must be a YAML mapping.", FIX_CONFIG_HINT));
    };
    allowed_keys(map, &["sbatch_directives", "environment_setup"], "parent")?;
    let sbatch_directives = directives(map.get("sbatch_directives"), "parent.sbatch_directives")
        .map_err(|m| Error::invalid_config(m, PARENT_DIRECTIVES_HINT))?;
    let environment_setup = match map.get("environment_setup") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.contains('\0') => {
            return Err(Error::invalid_config(
                "parent.environment_setup must not contain NUL characters.",
                FIX_CONFIG_HINT,
            ))
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(Error::invalid_config(
                "parent.environment_setup must be a string.",
                FIX_CONFIG_HINT,
            ))
        }
    };
    Ok(SlurmParent {
        sbatch_directives,
        environment_setup,
    })
}

/// The normaliser's checks; errors are its message (no trailing period).
type Check<T> = std::result::Result<T, String>;

fn string(value: Option<&Value>, name: &str, allow_empty: bool) -> Check<String> {
    match value {
        Some(Value::String(s)) if allow_empty || !s.is_empty() => {
            if s.contains('\0') {
                Err(format!("{name} contains a forbidden NUL"))
            } else {
                Ok(s.clone())
            }
        }
        _ if allow_empty => Err(format!("{name} must be a string")),
        _ => Err(format!("{name} must be a non-empty string")),
    }
}

fn absolute_path(value: Option<&Value>, name: &str) -> Check<String> {
    let path = string(value, name, false)?;
    if !path.starts_with('/') {
        return Err(format!("{name} must be absolute"));
    }
    Ok(path)
}

/// An integer of any size (YAML 1.2 integers), as i128; `None` for anything else.
fn integer(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    }
}

fn positive_number(value: Option<&Value>, name: &str, default: f64) -> Check<f64> {
    let number = match value {
        None => return Ok(default),
        Some(Value::Number(n)) => n.as_f64(),
        Some(_) => None,
    };
    match number {
        Some(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!("{name} must be a finite positive number")),
    }
}

fn env_name(value: &Value) -> Check<String> {
    let valid = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match value {
        Value::String(s) if valid(s) => {
            if RESERVED_ENV_NAMES.contains(&s.as_str()) || RESERVED_ENV_PREFIXES.iter().any(|p| s.starts_with(p)) {
                Err(format!("forward_env entry '{s}' is launcher-owned"))
            } else {
                Ok(s.clone())
            }
        }
        _ => Err("forward_env entry must match [A-Za-z_][A-Za-z0-9_]*".into()),
    }
}

/// Python's `str.isspace` for one character (Unicode whitespace and the ASCII
/// information separators).
fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `normalize_slurm_directives`: values become strings, in YAML order.
pub fn directives(value: Option<&Value>, label: &str) -> Check<Map<String, Json>> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Mapping(map)) => map,
        Some(_) => return Err(format!("{label} must be a mapping")),
    };
    let unknown: Vec<&Value> = map
        .keys()
        .filter(|k| !k.as_str().is_some_and(|k| SBATCH_DIRECTIVES.contains(&k)))
        .collect();
    if !unknown.is_empty() {
        return Err(format!("unsupported {label}: {}", pyrepr::sorted_list(&unknown)));
    }
    let mut out = Map::new();
    for (key, item) in map {
        let key = key.as_str().unwrap_or_default();
        let text = match item {
            Value::String(s) => s.clone(),
            other => match integer(other) {
                Some(i) => i.to_string(),
                None => return Err(format!("{label}.{key} must be a string or integer")),
            },
        };
        if text.is_empty() {
            return Err(format!("{label}.{key} must be a non-empty string"));
        }
        if text.contains('\0') {
            return Err(format!("{label}.{key} contains a forbidden NUL"));
        }
        if text.chars().any(python_space) {
            return Err(format!("{label}.{key} must not contain whitespace"));
        }
        out.insert(key.to_string(), Json::String(text));
    }
    Ok(out)
}

fn executables(value: Option<&Value>) -> Check<Executables> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Executables::default()),
        Some(Value::Mapping(map)) => map,
        // nvflare 2.9.0 treats [], "", 0 and false as {} (deviation SL4).
        Some(_) => return Err("executables must be a mapping".into()),
    };
    let unknown: Vec<&Value> = map
        .keys()
        .filter(|k| {
            !k.as_str()
                .is_some_and(|k| PARENT_EXECUTABLES.contains(&k) || COMPUTE_EXECUTABLES.contains(&k))
        })
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "executables has unknown key(s): {}",
            pyrepr::sorted_list(&unknown)
        ));
    }
    let get = |name: &str, parent: bool| -> Check<Option<String>> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) if parent => absolute_path(Some(v), &format!("executables.{name}")).map(Some),
            Some(v) => string(Some(v), &format!("executables.{name}"), false).map(Some),
        }
    };
    Ok(Executables {
        sbatch: get("sbatch", true)?,
        squeue: get("squeue", true)?,
        sacct: get("sacct", true)?,
        scancel: get("scancel", true)?,
        apptainer: get("apptainer", false)?,
        srun: get("srun", false)?,
    })
}

fn image(value: Option<&Value>, sandbox: &str) -> Check<(Sandbox, Option<String>)> {
    let sandbox = match sandbox {
        "apptainer" => Sandbox::Apptainer,
        "pyxis" => Sandbox::Pyxis,
        "none" => Sandbox::None,
        _ => return Err("sandbox must be one of ['apptainer', 'none', 'pyxis']".into()),
    };
    let image = match value {
        None | Some(Value::Null) if sandbox == Sandbox::None => return Ok((sandbox, None)),
        None | Some(Value::Null) => return Err(format!("image is required for sandbox '{}'", sandbox.as_str())),
        Some(v) => absolute_path(Some(v), "image")?,
    };
    if sandbox == Sandbox::None {
        return Ok((sandbox, Some(image)));
    }
    match std::fs::canonicalize(&image) {
        Ok(real) if real.is_file() => Ok((sandbox, Some(real.to_string_lossy().into_owned()))),
        _ => Err(format!("image is not an existing regular file: {image}")),
    }
}

fn port_range(value: &Value, internal_port: u16) -> Check<[u16; 2]> {
    const FORM: &str = "multi_node_port_range must have the form 'START-END'";
    let (start, end) = match value {
        Value::String(text) => {
            let Some((a, b)) = text.split_once('-') else {
                return Err(FORM.into());
            };
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
            if !digits(a) || !digits(b) {
                return Err(FORM.into());
            }
            // Digits only: a parse fails only on overflow, which is out of range anyway.
            let parse = |s: &str| s.parse::<i128>().unwrap_or(i128::MAX);
            (parse(a), parse(b))
        }
        Value::Sequence(items) if items.len() == 2 => {
            let bound = |v: &Value, which: &str| {
                integer(v).filter(|i| *i >= 1024).ok_or_else(|| {
                    format!("multi_node_port_range {which} must be an integer greater than or equal to 1024")
                })
            };
            (bound(&items[0], "start")?, bound(&items[1], "end")?)
        }
        _ => return Err(FORM.into()),
    };
    for (bound, which) in [(start, "start"), (end, "end")] {
        if bound < 1024 {
            return Err(format!(
                "multi_node_port_range {which} must be an integer greater than or equal to 1024"
            ));
        }
    }
    if end > 65535 || start > end {
        return Err("multi_node_port_range must be within 1024..65535 with START <= END".into());
    }
    let port = i128::from(internal_port);
    if start <= port && port <= end {
        return Err("multi_node_port_range must not contain internal_port".into());
    }
    // Both within 1024..=65535 here.
    let narrow = |i: i128| u16::try_from(i).unwrap_or(u16::MAX);
    Ok([narrow(start), narrow(end)])
}

/// `normalize_slurm_launcher_settings` on the raw `job_launcher` mapping.
fn normalize_launcher(map: &Mapping) -> Check<SlurmJobLauncher> {
    let sandbox = string(map.get("sandbox"), "sandbox", false)?;
    let python_path = absolute_path(map.get("python_path"), "python_path")?;
    let internal_port = match map.get("internal_port") {
        None => i128::from(DEFAULT_INTERNAL_PORT),
        Some(v) => integer(v)
            .filter(|i| *i >= 1)
            .ok_or("internal_port must be an integer greater than or equal to 1")?,
    };
    let internal_port = u16::try_from(internal_port).map_err(|_| "internal_port must be at most 65535")?;
    let submit_timeout = positive_number(map.get("submit_timeout"), "submit_timeout", default_submit_timeout())?;
    let query_timeout = positive_number(map.get("query_timeout"), "query_timeout", default_query_timeout())?;
    let cancel_timeout = positive_number(map.get("cancel_timeout"), "cancel_timeout", default_cancel_timeout())?;
    let poll_interval = positive_number(map.get("poll_interval"), "poll_interval", default_poll_interval())?;
    let pending_timeout = positive_number(map.get("pending_timeout"), "pending_timeout", default_pending_timeout())?;
    let setup = match map.get("setup") {
        None | Some(Value::Null) => String::new(),
        v => string(v, "setup", true)?,
    };
    let forward_env = match map.get("forward_env") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().map(env_name).collect::<Check<_>>()?,
        Some(_) => return Err("forward_env must be a list".into()),
    };
    let executables = executables(map.get("executables"))?;
    let (sandbox, image) = image(map.get("image"), &sandbox)?;
    let sbatch_directives = directives(map.get("sbatch_directives"), "sbatch_directives")?;
    let parent_host = match map.get("parent_host") {
        None | Some(Value::Null) => None,
        v => Some(string(v, "parent_host", false)?),
    };
    // nvflare 2.9.0 writes the default range for an explicit null (deviation SL5).
    let multi_node_port_range = match map.get("multi_node_port_range") {
        None | Some(Value::Null) => None,
        Some(v) => Some(port_range(v, internal_port)?),
    };
    Ok(SlurmJobLauncher {
        sandbox,
        python_path,
        executables,
        image,
        internal_port,
        internal_connection_security: default_security(),
        sbatch_directives,
        setup,
        forward_env,
        parent_host,
        submit_timeout,
        query_timeout,
        cancel_timeout,
        poll_interval,
        pending_timeout,
        multi_node_port_range,
        internal_port_set: map.contains_key("internal_port"),
        internal_connection_security_set: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).expect("yaml")
    }

    #[test]
    fn port_ranges() {
        assert_eq!(port_range(&yaml("'2000-3000'"), 8102), Ok([2000, 3000]));
        assert_eq!(port_range(&yaml("[2000, 3000]"), 8102), Ok([2000, 3000]));
        assert!(port_range(&yaml("'2000-3000'"), 2500).is_err());
        assert!(port_range(&yaml("'2000-'"), 1).is_err());
        assert!(port_range(&yaml("[true, 3000]"), 1).is_err());
        assert!(port_range(&yaml("'99999999999999999999999999999999999999999-3'"), 1).is_err());
    }

    #[test]
    fn directive_values_are_strings_without_whitespace() {
        let ok = directives(Some(&yaml("{account: 42, time: '1:30:00'}")), "d").expect("valid");
        assert_eq!(ok["account"], "42");
        assert_eq!(ok["time"], "1:30:00");
        assert!(directives(Some(&yaml("{qos: \"a\\x1fb\"}")), "d").is_err());
        assert!(directives(Some(&yaml("{qos: true}")), "d").is_err());
        assert!(directives(Some(&yaml("{qos: 1.5}")), "d").is_err());
    }
}
