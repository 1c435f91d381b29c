//! The job-launcher component a target installs; shared by targets, the registry and
//! the resources patch.

use crate::kit::Role;

/// The job-launcher component a target installs in `local/resources.json.default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LauncherClass {
    /// Component id, e.g. `docker_launcher`.
    pub id: &'static str,
    /// Class path for server kits.
    pub server_path: &'static str,
    /// Class path for client kits.
    pub client_path: &'static str,
}

impl LauncherClass {
    pub fn path_for(&self, role: Role) -> &'static str {
        match role {
            Role::Server => self.server_path,
            _ => self.client_path,
        }
    }
}
