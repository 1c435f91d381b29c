//! Finding registered targets by name.

use crate::error::{Error, Result};
use crate::target::{DynTarget, LauncherClass, Registration};

/// All targets linked into this binary, sorted by name.
pub struct Registry {
    entries: Vec<&'static Registration>,
}

impl Registry {
    /// Collects the registrations submitted through `inventory`. Two targets that claim
    /// one name are an error: picking either would be a silent guess.
    pub fn collect() -> Result<Registry> {
        let mut entries: Vec<&'static Registration> =
            inventory::iter::<Registration>.into_iter().collect();
        entries.sort_by_key(|r| (r.target.name(), r.crate_name));
        for pair in entries.windows(2) {
            if pair[0].target.name() == pair[1].target.name() {
                return Err(Error::internal(format!(
                    "runtime '{}' is registered twice (by crates '{}' and '{}')",
                    pair[0].target.name(),
                    pair[0].crate_name,
                    pair[1].crate_name
                )));
            }
        }
        Ok(Registry { entries })
    }

    pub fn entries(&self) -> &[&'static Registration] {
        &self.entries
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|r| r.target.name()).collect()
    }

    pub fn find(&self, name: &str) -> Option<&'static dyn DynTarget> {
        self.entries
            .iter()
            .find(|r| r.target.name() == name)
            .map(|r| r.target)
    }

    /// Every launcher any registered target installs: a kit prepared for one runtime
    /// may be prepared again for another.
    pub fn launchers(&self) -> Vec<LauncherClass> {
        self.entries.iter().map(|r| r.target.launcher()).collect()
    }
}
