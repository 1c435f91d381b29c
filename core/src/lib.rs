//! flare-deploy-core: the engine that turns an NVFlare startup kit into a kit prepared
//! for a deployment runtime. It knows kits, configs, the [`RuntimeTarget`] trait, the
//! registry, atomic output and the result envelope; it knows no runtime.

pub mod action;
pub mod atomic;
pub mod batch;
pub mod config;
pub mod error;
pub mod json;
pub mod kit;
pub mod launcher;
pub mod lock;
pub mod naming;
pub mod output;
pub mod patch;
pub mod paths;
pub mod plan;
pub mod plan_diff;
pub mod plugin;
pub mod prepare;
pub mod pyrepr;
pub mod receipt;
pub mod registry;
pub mod release;
pub mod report;
pub mod schema_doc;
pub mod shell;
pub mod staged;
pub mod target;
pub mod template;
pub mod verify;
pub mod yaml_write;

pub use action::{ActionContext, ActionOption, ActionOptions, ActionRequest, ActionSpec};
pub use config::RuntimeConfig;
pub use error::{Error, ErrorCode, Result};
pub use kit::{KitInfo, Role};
pub use prepare::{prepare, PrepareRequest, Prepared};
pub use registry::{Entry, Origin, Registry};
pub use release::NvflareRelease;
pub use report::{Format, Outcome};
pub use staged::StagedKit;
pub use target::{DynTarget, LauncherClass, Registration, RuntimeTarget};

#[doc(hidden)]
pub use inventory;

/// Where the parent container mounts the prepared kit.
pub const WORKSPACE_MOUNT_PATH: &str = "/var/tmp/nvflare/workspace";
