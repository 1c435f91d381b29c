//! Startup kits shaped like the ones `nvflare provision` writes (reference spec 3.4),
//! with a real CA and real certificates whose subject carries CN=<name>, O=<org>.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};

pub const GPU_RESOURCE_MANAGER: &str = "nvflare.app_common.resource_managers.gpu_resource_manager.GPUResourceManager";
pub const GPU_RESOURCE_CONSUMER: &str =
    "nvflare.app_common.resource_consumers.gpu_resource_consumer.GPUResourceConsumer";
pub const CLIENT_PROCESS_LAUNCHER: &str =
    "nvflare.app_common.job_launcher.client_process_launcher.ClientProcessJobLauncher";
pub const SERVER_PROCESS_LAUNCHER: &str =
    "nvflare.app_common.job_launcher.server_process_launcher.ServerProcessJobLauncher";
pub const PASSTHROUGH_RESOURCE_MANAGER: &str =
    "nvflare.app_common.resource_managers.passthrough_resource_manager.PassthroughResourceManager";
pub const DOCKER_CLIENT_LAUNCHER: &str = "nvflare.app_opt.job_launcher.docker_launcher.ClientDockerJobLauncher";
pub const DOCKER_SERVER_LAUNCHER: &str = "nvflare.app_opt.job_launcher.docker_launcher.ServerDockerJobLauncher";

/// A provisioning project: its name and root CA.
pub struct Project {
    pub name: String,
    ca_params: CertificateParams,
    ca_key: KeyPair,
    ca_pem: String,
}

impl Project {
    pub fn new(name: &str) -> Project {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        let ca_pem = params.self_signed(&ca_key).expect("CA cert").pem();
        Project {
            name: name.to_string(),
            ca_params: params,
            ca_key,
            ca_pem,
        }
    }

    pub fn server(&self, name: &str) -> KitBuilder<'_> {
        KitBuilder::new(self, Role::Server, name)
    }

    pub fn client(&self, name: &str) -> KitBuilder<'_> {
        KitBuilder::new(self, Role::Client, name)
    }

    pub fn admin(&self, name: &str) -> KitBuilder<'_> {
        KitBuilder::new(self, Role::Admin, name)
    }

    /// A PEM certificate signed by the project CA with the given subject.
    pub fn certificate(&self, cn: &str, org: Option<&str>) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        if let Some(org) = org {
            dn.push(DnType::OrganizationName, org);
        }
        params.distinguished_name = dn;
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
    Admin,
}

/// Options of one generated kit; `build` writes it.
pub struct KitBuilder<'p> {
    project: &'p Project,
    role: Role,
    name: String,
    org: Option<String>,
    dir_name: Option<String>,
    fed_port: u16,
    admin_port: Option<Value>,
    fqsn: Option<Value>,
    comm_config: Option<Value>,
    resources: Option<Value>,
    legacy_docker_sh: bool,
    stale_resources_json: bool,
}

impl<'p> KitBuilder<'p> {
    fn new(project: &'p Project, role: Role, name: &str) -> Self {
        KitBuilder {
            project,
            role,
            name: name.to_string(),
            org: Some("nvidia".into()),
            dir_name: None,
            fed_port: 8002,
            admin_port: Some(json!(8003)),
            fqsn: None,
            comm_config: None,
            resources: None,
            legacy_docker_sh: true,
            stale_resources_json: true,
        }
    }

    /// Organisation in the certificate subject; `None` leaves O out.
    pub fn org(mut self, org: Option<&str>) -> Self {
        self.org = org.map(str::to_string);
        self
    }
    /// Kit directory name (default: the site name).
    pub fn dir_name(mut self, dir: &str) -> Self {
        self.dir_name = Some(dir.to_string());
        self
    }
    pub fn fed_port(mut self, port: u16) -> Self {
        self.fed_port = port;
        self
    }
    /// `servers[0].admin_port` (any JSON; `None` leaves the key out).
    pub fn admin_port(mut self, port: Option<Value>) -> Self {
        self.admin_port = port;
        self
    }
    /// `client.fqsn` (default: the site name).
    pub fn fqsn(mut self, fqsn: Value) -> Self {
        self.fqsn = Some(fqsn);
        self
    }
    /// Writes `local/comm_config.json` with this content.
    pub fn comm_config(mut self, doc: Value) -> Self {
        self.comm_config = Some(doc);
        self
    }
    /// Replaces the provisioned `local/resources.json.default`.
    pub fn resources(mut self, doc: Value) -> Self {
        self.resources = Some(doc);
        self
    }
    pub fn legacy_docker_sh(mut self, yes: bool) -> Self {
        self.legacy_docker_sh = yes;
        self
    }
    pub fn stale_resources_json(mut self, yes: bool) -> Self {
        self.stale_resources_json = yes;
        self
    }

    pub fn build(self, parent: &Path) -> Kit {
        let dir = parent.join(self.dir_name.as_deref().unwrap_or(&self.name));
        let startup = dir.join("startup");
        let local = dir.join("local");
        for d in [&startup, &local, &dir.join("transfer")] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        write(
            &dir.join("readme.txt"),
            "Provisioned by the flare-deploy test suite.\n",
            0o644,
        );
        write(&startup.join("rootCA.pem"), &self.project.ca_pem, 0o644);
        let (cert_base, cn) = match self.role {
            Role::Server => ("server", self.name.clone()),
            _ => ("client", self.name.clone()),
        };
        let (cert, key) = self.project.certificate(&cn, self.org.as_deref());
        write(&startup.join(format!("{cert_base}.crt")), &cert, 0o644);
        write(&startup.join(format!("{cert_base}.key")), &key, 0o600);
        let project = &self.project.name;
        match self.role {
            Role::Server => {
                let mut server = json!({
                    "name": project,
                    "service": {"target": format!("{}:{}", self.name, self.fed_port), "scheme": "grpc"},
                    "admin_server": self.name,
                });
                if let Some(port) = &self.admin_port {
                    server["admin_port"] = port.clone();
                }
                for (k, v) in [
                    ("ssl_private_key", "server.key"),
                    ("ssl_cert", "server.crt"),
                    ("ssl_root_cert", "rootCA.pem"),
                    ("connection_security", "mtls"),
                ] {
                    server[k] = json!(v);
                }
                write_json(
                    &startup.join("fed_server.json"),
                    &json!({"format_version": 2, "servers": [server]}),
                );
            }
            Role::Client => {
                let fqsn = self.fqsn.clone().unwrap_or_else(|| json!(self.name));
                write_json(
                    &startup.join("fed_client.json"),
                    &json!({
                        "format_version": 2,
                        "servers": [{"name": project, "service": {"target": "server1:8002", "scheme": "grpc"}, "identity": "server1"}],
                        "client": {"ssl_private_key": "client.key", "ssl_cert": "client.crt", "ssl_root_cert": "rootCA.pem",
                                   "fqsn": fqsn, "is_leaf": true, "connection_security": "mtls"}
                    }),
                );
            }
            Role::Admin => {
                write_json(
                    &startup.join("fed_admin.json"),
                    &json!({"format_version": 1, "admin": {"name": self.name, "server_identity": "server1", "project_name": project,
                            "client_key": "client.key", "client_cert": "client.crt", "ca_cert": "rootCA.pem", "prompt": "> ",
                            "upload_dir": "transfer", "download_dir": "transfer"}}),
                );
                write(&startup.join("fl_admin.sh"), "#!/usr/bin/env bash\necho admin\n", 0o755);
            }
        }
        if self.role != Role::Admin {
            for script in ["start.sh", "sub_start.sh", "stop_fl.sh"] {
                write(
                    &startup.join(script),
                    &format!("#!/usr/bin/env bash\n# provisioned {script}\n"),
                    0o755,
                );
            }
            if self.legacy_docker_sh {
                write(
                    &startup.join("docker.sh"),
                    "#!/usr/bin/env bash\n# legacy docker.sh\n",
                    0o755,
                );
            }
        }
        let resources = self.resources.clone().unwrap_or_else(|| match self.role {
            Role::Server => provisioned_server_resources(),
            _ => provisioned_client_resources(),
        });
        write_json(&local.join("resources.json.default"), &resources);
        if self.stale_resources_json {
            write_json(&local.join("resources.json"), &json!({"stale": true}));
        }
        write_json(
            &local.join("log_config.json.default"),
            &json!({"version": 1, "root": {"level": "INFO"}}),
        );
        write_json(
            &local.join("privacy.json.sample"),
            &json!({"scopes": [], "default_scope": "public"}),
        );
        write_json(
            &local.join("authorization.json.default"),
            &json!({"format_version": "1.0", "permissions": {}}),
        );
        if let Some(doc) = &self.comm_config {
            write_json(&local.join("comm_config.json"), doc);
        }
        Kit { dir }
    }
}

/// `resources.json.default` as provisioned for a server.
pub fn provisioned_server_resources() -> Value {
    json!({
        "format_version": 2,
        "class_allow_list": ["nvflare.app_common", "nvflare.app_opt"],
        "servers": [{"admin_storage": "transfer", "max_num_clients": 100, "heart_beat_timeout": 600,
                     "download_job_url": "http://download.server.com/", "admin_timeout": 5.0}],
        "snapshot_persistor": {
            "path": "nvflare.app_common.state_persistors.storage_state_persistor.StorageStatePersistor",
            "args": {"uri_root": "/", "storage": {"path": "nvflare.app_common.storages.filesystem_storage.FilesystemStorage",
                     "args": {"root_dir": "/tmp/nvflare/snapshot-storage", "uri_root": "/"}}}
        },
        "components": [
            {"id": "job_scheduler", "path": "nvflare.app_common.job_schedulers.job_scheduler.DefaultJobScheduler",
             "args": {"max_jobs": 4}},
            {"id": "job_manager", "path": "nvflare.apis.impl.job_def_manager.SimpleJobDefManager",
             "args": {"uri_root": "/tmp/nvflare/jobs-storage", "job_store_id": "job_store"}},
            {"id": "job_store", "path": "nvflare.app_common.storages.filesystem_storage.FilesystemStorage"},
            {"id": "process_launcher", "path": SERVER_PROCESS_LAUNCHER, "args": {}},
            {"id": "log_receiver", "path": "nvflare.app_common.logging.log_receiver.LogReceiver", "args": {}}
        ]
    })
}

/// `resources.json.default` as provisioned for a client (GPU manager with args).
pub fn provisioned_client_resources() -> Value {
    json!({
        "format_version": 2,
        "class_allow_list": ["nvflare.app_common", "nvflare.app_opt"],
        "allow_log_streaming": true,
        "client": {"retry_timeout": 30, "compression": "Gzip"},
        "components": [
            {"id": "resource_manager", "path": GPU_RESOURCE_MANAGER,
             "args": {"num_of_gpus": 0, "mem_per_gpu_in_GiB": 0, "expiration_period": 300}},
            {"id": "resource_consumer", "path": GPU_RESOURCE_CONSUMER, "args": {}},
            {"id": "process_launcher", "path": CLIENT_PROCESS_LAUNCHER, "args": {}},
            {"id": "site_log_streamer", "path": "nvflare.app_common.logging.site_log_streamer.SiteLogStreamer", "args": {}}
        ]
    })
}

/// A generated kit on disk.
#[derive(Debug, Clone)]
pub struct Kit {
    pub dir: PathBuf,
}

impl Kit {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn read_json(&self, rel: &str) -> Value {
        read_json(&self.dir.join(rel))
    }

    /// Writes `<kit>/config.yaml`.
    pub fn write_config(&self, yaml: &str) -> PathBuf {
        let path = self.dir.join("config.yaml");
        std::fs::write(&path, yaml).expect("write config");
        path
    }
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

pub fn write_json(path: &Path, value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("json");
    write(path, &text, 0o644);
}

pub fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A provisioned federation under `<root>/prod_00` of project `p`: the server `server1`,
/// one client kit for each of `clients` and, when `admin`, the admin kit `admin@x.com`.
pub fn federation(root: &Path, clients: &[&str], admin: bool) -> PathBuf {
    let dir = root.join("prod_00");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let project = Project::new("p");
    project.server("server1").build(&dir);
    for name in clients {
        project.client(name).build(&dir);
    }
    if admin {
        project.admin("admin@x.com").build(&dir);
    }
    dir
}

/// The component of a `resources.json` document with the given `id`, if any.
pub fn component<'a>(resources: &'a Value, id: &str) -> Option<&'a Value> {
    resources["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["id"] == id)
}
