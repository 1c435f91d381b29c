//! Finding targets by name: targets linked into the binary (registered through
//! `inventory`), then executable plugins `flare-deploy-target-<name>` found in
//! `FLARE_DEPLOY_PLUGIN_PATH` and `PATH`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::error::{Error, ErrorCode, Result};
use crate::plugin::{self, ExecutableTarget};
use crate::target::{DynTarget, LauncherClass, Registration};

/// Where a target comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Shipped with this program.
    BuiltIn { crate_name: &'static str },
    /// A crate linked into this binary by whoever built it.
    LinkedCrate { crate_name: &'static str },
    /// An executable plugin speaking the JSON protocol.
    Executable { path: PathBuf },
}

impl Origin {
    /// `built-in`, `crate <name>` or `executable <path>`.
    pub fn describe(&self) -> String {
        match self {
            Origin::BuiltIn { .. } => "built-in".to_string(),
            Origin::LinkedCrate { crate_name } => format!("crate {crate_name}"),
            Origin::Executable { path } => format!("executable {}", path.display()),
        }
    }
}

/// A linked target (a static registration) or an executable plugin (made on lookup).
#[derive(Clone)]
pub enum TargetRef {
    Linked(&'static dyn DynTarget),
    Plugin(Arc<ExecutableTarget>),
}

impl std::ops::Deref for TargetRef {
    type Target = dyn DynTarget;

    fn deref(&self) -> &Self::Target {
        match self {
            TargetRef::Linked(target) => *target,
            TargetRef::Plugin(plugin) => plugin.as_ref(),
        }
    }
}

/// A target and where it comes from.
#[derive(Clone)]
pub struct Entry {
    pub target: TargetRef,
    pub origin: Origin,
}

/// The targets this binary knows.
pub struct Registry {
    linked: Vec<Entry>,
    plugin_dirs: Vec<PathBuf>,
    /// Plugins already looked up, so that a batch asks each plugin to describe itself once.
    found_plugins: Mutex<Vec<Entry>>,
}

impl Registry {
    /// Collects the linked targets (those of `builtin_crates` are built-in) and the
    /// plugin search path. Two linked targets that claim one name are an error: picking
    /// either would be a silent guess.
    pub fn collect(builtin_crates: &[&str]) -> Result<Registry> {
        let mut registrations: Vec<&'static Registration> = inventory::iter::<Registration>.into_iter().collect();
        registrations.sort_by_key(|r| (r.target.name(), r.crate_name));
        for pair in registrations.windows(2) {
            if pair[0].target.name() == pair[1].target.name() {
                return Err(Error::new(
                    ErrorCode::DuplicateTarget,
                    format!(
                        "Runtime '{}' is registered twice, by crates '{}' and '{}'.",
                        pair[0].target.name(),
                        pair[0].crate_name,
                        pair[1].crate_name
                    ),
                    "Link only one crate per runtime name into this binary.",
                ));
            }
        }
        let linked = registrations
            .into_iter()
            .map(|r| Entry {
                target: TargetRef::Linked(r.target),
                origin: if builtin_crates.contains(&r.crate_name) {
                    Origin::BuiltIn {
                        crate_name: r.crate_name,
                    }
                } else {
                    Origin::LinkedCrate {
                        crate_name: r.crate_name,
                    }
                },
            })
            .collect();
        Ok(Registry {
            linked,
            plugin_dirs: plugin::search_dirs(),
            found_plugins: Mutex::new(Vec::new()),
        })
    }

    /// The linked targets, by name.
    pub fn linked(&self) -> &[Entry] {
        &self.linked
    }

    /// Every target: linked ones and the executable plugins on the search path (whose
    /// names are not linked), by name.
    pub fn all(&self) -> Vec<Entry> {
        let mut entries = self.linked.clone();
        for (name, path) in plugin::discover(&self.plugin_dirs) {
            if self.linked.iter().any(|e| e.target.name() == name) {
                tracing::debug!(%name, path = %path.display(), "plugin shadowed by a linked target; ignored");
                continue;
            }
            entries.push(Entry {
                target: TargetRef::Plugin(Arc::new(ExecutableTarget::new(&name, path.clone()))),
                origin: Origin::Executable { path },
            });
        }
        entries.sort_by(|a, b| a.target.name().cmp(b.target.name()));
        entries
    }

    /// Names for messages: linked targets and discovered plugins.
    pub fn all_names(&self) -> Vec<String> {
        self.all().iter().map(|e| e.target.name().to_string()).collect()
    }

    /// The target called `name`: linked first, then an executable plugin.
    pub fn find(&self, name: &str) -> Option<Entry> {
        if let Some(entry) = self.linked.iter().find(|e| e.target.name() == name) {
            return Some(entry.clone());
        }
        let path = plugin::find_executable(&self.plugin_dirs, name)?;
        let mut found = self
            .found_plugins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = found
            .iter()
            .find(|e| e.target.name() == name && e.origin == Origin::Executable { path: path.clone() })
        {
            return Some(entry.clone());
        }
        let entry = Entry {
            target: TargetRef::Plugin(Arc::new(ExecutableTarget::new(name, path.clone()))),
            origin: Origin::Executable { path },
        };
        found.push(entry.clone());
        Some(entry)
    }

    /// The target an action command names: a linked target by name or alias, then an
    /// executable plugin by name.
    pub fn find_command(&self, word: &str) -> Option<Entry> {
        let by_alias = || {
            self.linked
                .iter()
                .find(|e| e.target.aliases().iter().any(|a| a == word))
                .cloned()
        };
        match self.linked.iter().find(|e| e.target.name() == word) {
            Some(entry) => Some(entry.clone()),
            None => by_alias().or_else(|| self.find(word)),
        }
    }

    /// Every launcher a linked target installs: a kit prepared for one runtime may be
    /// prepared again for another.
    pub fn launchers(&self) -> Vec<LauncherClass> {
        self.linked.iter().filter_map(|e| e.target.launcher()).collect()
    }
}
