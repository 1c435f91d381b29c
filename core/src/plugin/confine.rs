//! Kernel confinement of plugin processes. A plugin may write below the directories it
//! is given (the staging directory for `prepare`) and a private temporary directory
//! (`$TMPDIR`), nowhere else: Linux Landlock makes the kernel refuse any other write,
//! rename, removal or creation. Reading stays unrestricted. Where the kernel lacks
//! Landlock (or enforces only part of it), the engine falls back to an after-the-fact
//! check of the input kit ([`super::watch`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use landlock::{path_beneath_rules, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, ABI};

use crate::error::{Error, Result};

/// `off` turns the kernel confinement off (for testing the fallback, or to debug a
/// plugin); anything else, or unset, confines.
pub const CONFINEMENT_ENV: &str = "FLARE_DEPLOY_PLUGIN_CONFINEMENT";

/// Device files every program may write to.
const WRITABLE_DEVICES: [&str; 3] = ["/dev/null", "/dev/zero", "/dev/full"];

/// How far the kernel confined the plugin process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforcement {
    /// Every write outside the allowed directories is refused.
    Full,
    /// Not, or only partly (an older kernel): the reason, for messages.
    Incomplete(String),
}

/// The writable places of one plugin process and, once spawned, how it was confined.
pub struct Sandbox {
    tmp: tempfile::TempDir,
    writable: Vec<PathBuf>,
    enforcement: Enforcement,
}

impl Sandbox {
    /// A sandbox whose process may write below `writable` and its own temporary directory.
    pub fn new(writable: &[PathBuf]) -> Result<Sandbox> {
        let tmp = tempfile::Builder::new()
            .prefix("flare-deploy-plugin-")
            .tempdir()
            .map_err(|e| Error::prepare_failed(format_args!("cannot create the plugin's temporary directory: {e}")))?;
        let mut writable = writable.to_vec();
        writable.push(tmp.path().to_path_buf());
        Ok(Sandbox {
            tmp,
            writable,
            enforcement: Enforcement::Incomplete("not started".into()),
        })
    }

    /// The plugin's `$TMPDIR`.
    pub fn tmp_dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }

    /// Whether `path` is somewhere the plugin may write.
    pub fn allows(&self, path: &Path) -> bool {
        self.writable.iter().any(|w| path.starts_with(w)) || WRITABLE_DEVICES.iter().any(|d| path == Path::new(d))
    }

    /// Spawns `command` with `TMPDIR` pointing at the private directory, confined.
    ///
    /// Landlock restricts the calling thread and what it starts afterwards, so the
    /// restriction is made in a thread of its own that spawns the process and ends:
    /// the engine itself is never restricted.
    pub fn spawn(&mut self, command: &mut Command) -> std::io::Result<Child> {
        for var in ["TMPDIR", "TMP", "TEMP"] {
            command.env(var, self.tmp.path());
        }
        let turned_off = turned_off();
        let writable = &self.writable;
        let (child, enforcement) = std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let enforcement = if turned_off {
                        Enforcement::Incomplete(format!("turned off by {CONFINEMENT_ENV}=off"))
                    } else {
                        restrict_this_thread(writable)
                    };
                    (command.spawn(), enforcement)
                })
                .join()
                .unwrap_or_else(|_| {
                    (
                        Err(std::io::Error::other("the spawning thread panicked")),
                        Enforcement::Incomplete("the spawning thread panicked".into()),
                    )
                })
        });
        tracing::debug!(?enforcement, "plugin confinement");
        self.enforcement = enforcement;
        child
    }
}

/// Whether plugins will be fully confined: the answer of a probe (a throwaway thread
/// restricted like a plugin's), made once per process, and the environment switch.
pub fn fully_confined() -> bool {
    static PROBE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    !turned_off()
        && *PROBE.get_or_init(|| {
            std::thread::spawn(|| restrict_this_thread(&[]) == Enforcement::Full)
                .join()
                .unwrap_or(false)
        })
}

fn turned_off() -> bool {
    std::env::var(CONFINEMENT_ENV).is_ok_and(|v| v.trim().eq_ignore_ascii_case("off"))
}

/// Confines the current thread: every write right is handled, and granted only below
/// `writable` (and on a few devices).
fn restrict_this_thread(writable: &[PathBuf]) -> Enforcement {
    // ABI 5 is the newest whose filesystem rights we use (write, remove, make, refer,
    // truncate, device ioctl); older kernels get what they support.
    let abi = ABI::V5;
    let rights = AccessFs::from_write(abi);
    let restricted = Ruleset::default()
        .handle_access(rights)
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(writable, rights)))
        .and_then(|r| r.add_rules(path_beneath_rules(WRITABLE_DEVICES, rights)))
        .and_then(|r| r.restrict_self());
    match restricted {
        Ok(status) => match status.ruleset {
            RulesetStatus::FullyEnforced => Enforcement::Full,
            RulesetStatus::PartiallyEnforced => {
                Enforcement::Incomplete("this kernel's Landlock enforces only part of the rules".into())
            }
            RulesetStatus::NotEnforced => Enforcement::Incomplete("this kernel has no Landlock".into()),
        },
        Err(e) => Enforcement::Incomplete(format!("Landlock failed: {e}")),
    }
}

/// The first path outside the sandbox that `text` (a plugin's error and stderr) reports
/// a refused write for, e.g. Python's `[Errno 13] Permission denied: '/x'` or a shell's
/// `/x: Permission denied`. Relative paths are taken from `cwd`.
///
/// This reads the plugin's own words, so it can only name what the plugin reported; a
/// plugin that swallows the error has simply not written.
pub fn refused_path(text: &str, sandbox: &Sandbox, cwd: &Path) -> Option<PathBuf> {
    const REFUSALS: [&str; 3] = [
        "Permission denied",
        "Operation not permitted",
        "Invalid cross-device link",
    ];
    text.lines()
        .filter(|line| REFUSALS.iter().any(|r| line.contains(r)))
        .flat_map(path_candidates)
        // Resolved like the kernel does (`..`, links), so `<staging>/../x` is outside.
        .map(|p| crate::paths::resolve_lenient(&cwd.join(p)))
        .find(|p| !sandbox.allows(p))
}

/// Quoted strings, and words that start with `/`, in one line of an error.
fn path_candidates(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    for quote in ['\'', '"'] {
        let parts: Vec<&str> = line.split(quote).collect();
        // Odd-indexed parts sit between a pair of quotes.
        found.extend(
            parts
                .iter()
                .skip(1)
                .step_by(2)
                .filter(|p| !p.is_empty())
                .map(|p| p.to_string()),
        );
    }
    found.extend(
        line.split_whitespace()
            .filter(|w| w.starts_with('/'))
            .map(|w| w.trim_end_matches([':', ',', ';']).to_string()),
    );
    // Absolute paths first: a quoted word such as the method name in `exited without
    // answering 'action'` is a path only when nothing better is on the line.
    found.sort_by_key(|p| !p.starts_with('/'));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_found_in_common_error_shapes() {
        let sandbox = Sandbox::new(&[PathBuf::from("/stage")]).expect("sandbox");
        let cwd = Path::new("/stage");
        let find = |text: &str| refused_path(text, &sandbox, cwd);
        assert_eq!(
            find("PermissionError: [Errno 13] Permission denied: '/kit/local/x.txt'"),
            Some(PathBuf::from("/kit/local/x.txt"))
        );
        assert_eq!(
            find("plugin: line 3: /home/op/x: Permission denied"),
            Some(PathBuf::from("/home/op/x"))
        );
        assert_eq!(
            find("touch: cannot touch '../outside': Permission denied"),
            Some(PathBuf::from("/outside"))
        );
        // Inside the sandbox, or no refusal: nothing.
        assert_eq!(find("Permission denied: '/stage/a'"), None);
        assert_eq!(find("FileNotFoundError: '/kit/x'"), None);
    }
}
