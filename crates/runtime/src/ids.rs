//! Identifiers for sandboxes and containers, and who owns them.
//!
//! An id is 16 random hex digits (64 bits from the kernel's random pool): short enough for
//! overlayfs option strings and cgroup paths, long enough never to collide on one node.
//! An [`Owner`] is a process named by pid and start time, so that a reused pid is never
//! taken for the process that created a sandbox.

use std::fmt;
use std::io::Read;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a hoist id (16 lowercase hex digits)")]
pub struct IdError(String);

impl Id {
    /// A new random id.
    pub fn random() -> Self {
        let mut bytes = [0u8; 8];
        // /dev/urandom never blocks once the pool is initialised, which it is after boot.
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .expect("reading /dev/urandom");
        Id(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Id {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        if s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Id(s))
        } else {
            Err(IdError(s))
        }
    }
}

impl std::str::FromStr for Id {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Id::try_from(s.to_string())
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A process identified by pid and start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: i32,
    pub start_time: u64,
}

impl Owner {
    /// The calling process.
    pub fn current() -> Self {
        let pid = std::process::id() as i32;
        Owner {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        }
    }

    pub fn of(pid: i32) -> Option<Self> {
        Some(Owner {
            pid,
            start_time: start_time(pid)?,
        })
    }

    /// Whether this very process still exists (and is not a zombie).
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// Field 22 of `/proc/<pid>/stat`; `None` if the process is gone or a zombie.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}
