//! Test support for the flare-deploy integration tests: realistic startup kits generated
//! with real X.509 certificates, and a small harness that runs the built binary.

pub mod fsutil;
pub mod harness;
pub mod json;
pub mod kitgen;
pub mod oracle;
pub mod ports;
pub mod provision;
pub mod snapshot;
pub mod stub_docker;
pub mod stub_kubectl;
pub mod tools;

pub use harness::{flare_deploy, Run};
pub use kitgen::{Kit, KitBuilder, Project};
pub use snapshot::Snapshot;
