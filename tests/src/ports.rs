//! TCP ports for tests whose servers (NVFlare parents) bind the ports themselves, so the
//! test cannot hold them until then.
//!
//! Binding port 0 and releasing it is racy: the kernel hands the same ephemeral port to
//! the next port-0 bind or outgoing connection on the machine. Ports here come from
//! below the kernel's ephemeral range (which neither uses), are checked bindable, and
//! are claimed with a lock file (`flock`) held while the [`Ports`] lives, so that tests
//! in other processes (parallel test binaries, other checkouts) using this module never
//! take the same one. Something else can still bind a port in between: [`with_ports`]
//! retries the boot with new ports when the server reports the port taken.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Reserved ports; the claims end when this is dropped.
#[derive(Debug)]
pub struct Ports {
    ports: Vec<u16>,
    _claims: Vec<File>,
}

impl Ports {
    pub fn get(&self, index: usize) -> u16 {
        self.ports[index]
    }

    pub fn all(&self) -> &[u16] {
        &self.ports
    }
}

/// The boot failed because a port was taken; the text says by what (the server's log).
#[derive(Debug)]
pub struct PortTaken(pub String);

/// How many boots [`with_ports`] tries before giving up.
pub const ATTEMPTS: usize = 4;

/// Whether a server's log or error says that a port it wanted to bind was taken
/// (NVFlare: `OSError: [Errno 98] error while attempting to bind on address (...):
/// address already in use`, logged while it retries; it has logged `Server started`
/// before that, so the log alone does not show a successful boot: see
/// [`listened_by_group`]).
pub fn reports_port_taken(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["address already in use", "eaddrinuse", "[errno 98]"]
        .iter()
        .any(|needle| text.contains(needle))
}

/// Whether a process of the process group `pgid` listens on TCP `port`, as `ss` shows
/// it; `None` when `ss` (iproute2) cannot tell.
pub fn listened_by_group(port: u16, pgid: u32) -> Option<bool> {
    let out = Command::new("ss")
        .args(["-Htlnp", &format!("sport = :{port}")])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    // `users:(("python",pid=123,fd=4),...)`
    let pids = text
        .split("pid=")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u32>().ok());
    Some(pids.map(process_group).any(|group| group == Some(pgid)))
}

/// The process group of `pid` (field 5 of `/proc/<pid>/stat`, after the `(comm)`).
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_comm) = stat.rsplit_once(')')?;
    after_comm.split_whitespace().nth(2)?.parse().ok()
}

/// Runs `boot` with `count` reserved ports; when it reports [`PortTaken`], tries again
/// with new ports, [`ATTEMPTS`] times in all. The ports stay claimed until `boot`
/// returns (by then the servers hold them).
pub fn with_ports<T>(count: usize, mut boot: impl FnMut(&Ports) -> Result<T, PortTaken>) -> T {
    let mut failures = Vec::new();
    for _ in 0..ATTEMPTS {
        let ports = reserve(count);
        match boot(&ports) {
            Ok(value) => return value,
            Err(PortTaken(why)) => {
                eprintln!("ports {:?} were taken; retrying with others", ports.all());
                failures.push(format!("ports {:?}: {why}", ports.all()));
            }
        }
    }
    panic!(
        "{ATTEMPTS} boots in a row found their ports taken:\n{}",
        failures.join("\n---\n")
    );
}

/// `count` distinct ports that are free now and claimed for this test.
pub fn reserve(count: usize) -> Ports {
    let (low, high) = candidate_range();
    let span = u32::from(high - low);
    let mut state = seed();
    let mut ports = Vec::with_capacity(count);
    let mut claims = Vec::with_capacity(count);
    for _ in 0..span {
        if ports.len() == count {
            break;
        }
        state = next(state);
        let port = low + (state % span) as u16;
        if ports.contains(&port) {
            continue;
        }
        let Some(claim) = claim(port) else { continue };
        if bindable(port) {
            ports.push(port);
            claims.push(claim);
        }
    }
    assert_eq!(
        ports.len(),
        count,
        "found only {} free ports in {low}..{high}",
        ports.len()
    );
    Ports { ports, _claims: claims }
}

/// Ports below the kernel's ephemeral range (`ip_local_port_range`, 32768 by default) and
/// above the well-known service ports.
fn candidate_range() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|w| w.parse::<u16>().ok()))
        .unwrap_or(32768);
    if ephemeral_low > 12000 {
        (10000, ephemeral_low)
    } else {
        // An unusual kernel setting: take ports above its range instead.
        (61000, 65000)
    }
}

fn seed() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    (nanos ^ std::process::id().rotate_left(16)) | 1
}

/// xorshift32: spreads the tries over the range.
fn next(mut x: u32) -> u32 {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    x
}

/// The lock file of `port`, locked by this process; `None` when another holds it.
fn claim(port: u16) -> Option<File> {
    let dir: PathBuf = std::env::temp_dir().join("flare-deploy-test-ports");
    std::fs::create_dir_all(&dir).ok()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{port}.lock")))
        .ok()?;
    file.try_lock().ok()?;
    Some(file)
}

/// Free on every address a server may bind (all interfaces and loopback).
fn bindable(port: u16) -> bool {
    TcpListener::bind(("0.0.0.0", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}
