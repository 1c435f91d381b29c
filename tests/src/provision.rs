//! Real provisioning with an installed NVFlare (`nvflare provision`): a project of one
//! server, two clients (`site-1` of org nvidia, `site-2` of org hospital) and an admin
//! (`admin@nvidia.com`), the shape every end-to-end and differential suite uses.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The project to provision.
pub struct ProjectSpec<'a> {
    pub name: &'a str,
    pub server: &'a str,
    pub fed_learn_port: u16,
    /// `None`: the server's admin port is its fed-learn port.
    pub admin_port: Option<u16>,
}

impl ProjectSpec<'_> {
    /// The `project.yml` text (API version 3, the standard builders).
    pub fn yaml(&self) -> String {
        let admin_port = self
            .admin_port
            .map_or(String::new(), |p| format!("  admin_port: {p}\n"));
        format!(
            "api_version: 3\nname: {}\ndescription: a flare-deploy test project\nparticipants:\n\
             - name: {}\n  type: server\n  org: nvidia\n  fed_learn_port: {}\n{admin_port}\
             - name: site-1\n  type: client\n  org: nvidia\n\
             - name: site-2\n  type: client\n  org: hospital\n\
             - name: admin@nvidia.com\n  type: admin\n  org: nvidia\n  role: project_admin\n\
             builders:\n\
             - path: nvflare.lighter.impl.workspace.WorkspaceBuilder\n\
             - path: nvflare.lighter.impl.static_file.StaticFileBuilder\n  args:\n    config_folder: config\n\
             - path: nvflare.lighter.impl.cert.CertBuilder\n\
             - path: nvflare.lighter.impl.signature.SignatureBuilder\n",
            self.name, self.server, self.fed_learn_port
        )
    }
}

/// Runs `nvflare provision` in `dir` and returns the kits' folder, `<dir>/ws/<name>/prod_00`.
pub fn provision(nvflare: &Path, dir: &Path, spec: &ProjectSpec<'_>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    std::fs::write(dir.join("project.yml"), spec.yaml()).expect("write project.yml");
    let out = Command::new(nvflare)
        .args(["provision", "-p", "project.yml", "-w", "ws", "--force"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", nvflare.display()));
    assert!(
        out.status.success(),
        "nvflare provision failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let prod = dir.join("ws").join(spec.name).join("prod_00");
    assert!(prod.join(spec.server).join("startup/fed_server.json").is_file());
    prod
}
