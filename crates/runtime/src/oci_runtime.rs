//! The OCI runtime binary (runc by default, crun on request) and the verbs hoist runs.
//!
//! Each hoist data directory has its own runtime state root (`<data>/runc`), so two hoist
//! instances never see each other's containers and cleanup can list what a killed run
//! left. Debian 12's crun 1.8 refuses hosts whose cgroups are in hybrid v1/v2 mode;
//! [`explain_failure`] turns that message into [`OciError::CrunHybrid`], which says so
//! and names runc as the way out.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    Runc,
    Crun,
}

impl RuntimeKind {
    pub fn binary_name(self) -> &'static str {
        match self {
            RuntimeKind::Runc => "runc",
            RuntimeKind::Crun => "crun",
        }
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self, OciError> {
        match s {
            "runc" => Ok(RuntimeKind::Runc),
            "crun" => Ok(RuntimeKind::Crun),
            other => Err(OciError::UnknownKind(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("unknown OCI runtime {0:?}: hoist runs `runc` or `crun`")]
    UnknownKind(String),
    #[error(
        "OCI runtime `{name}` not found in PATH or /usr/sbin, /usr/bin: install it \
         (`apt-get install {name}`)"
    )]
    Missing { name: &'static str },
    #[error(
        "crun {version} cannot run on this host: cgroups in hybrid mode not supported; use \
         runc (the default runtime)"
    )]
    CrunHybrid { version: String },
    #[error("`{runtime} {verb}` for container {id} failed: {message}")]
    Failed {
        runtime: &'static str,
        verb: &'static str,
        id: String,
        message: String,
    },
    #[error("running `{runtime} {verb}`")]
    Spawn {
        runtime: &'static str,
        verb: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A located runtime binary with its state root.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OciRuntime {
    pub kind: RuntimeKind,
    pub binary: PathBuf,
    pub root: PathBuf,
}

impl OciRuntime {
    /// Finds `kind`'s binary; `root` is the state directory passed as `--root`.
    pub fn locate(kind: RuntimeKind, root: &Path) -> Result<Self, OciError> {
        let name = kind.binary_name();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
        let binary = std::env::split_paths(&path)
            .chain(extra.iter().map(PathBuf::from))
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or(OciError::Missing { name })?;
        Ok(Self {
            kind,
            binary,
            root: root.to_path_buf(),
        })
    }

    /// A command for `verb` with the global options set.
    pub fn command(&self, verb: &str) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root).arg(verb);
        cmd
    }

    /// Runs `verb args…` to completion; a non-zero exit is an error with its stderr.
    pub fn run(&self, verb: &'static str, id: &str, args: &[&str]) -> Result<(), OciError> {
        let runtime = self.kind.binary_name();
        let out = self
            .command(verb)
            .args(args)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| OciError::Spawn {
                runtime,
                verb,
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(self.explain_failure(verb, id, message))
    }

    /// Sends `signal` (a name like `TERM`) to the container's processes.
    pub fn kill(&self, id: &str, signal: &str) -> Result<(), OciError> {
        let runtime = self.kind.binary_name();
        let out = self
            .command("kill")
            .args(["--all", id, signal])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| OciError::Spawn {
                runtime,
                verb: "kill",
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(OciError::Failed {
            runtime,
            verb: "kill",
            id: id.to_string(),
            message,
        })
    }

    /// Deletes the container from the runtime's state, killing what still runs.
    pub fn delete(&self, id: &str) -> Result<(), OciError> {
        self.run("delete", id, &["--force"])
    }

    /// The container ids the runtime has state for under its root.
    pub fn list(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Turns a failure's stderr into the error to report, recognising crun's refusal of
    /// hybrid cgroups.
    pub fn explain_failure(&self, verb: &'static str, id: &str, message: String) -> OciError {
        if self.kind == RuntimeKind::Crun && message.contains("hybrid mode") {
            return OciError::CrunHybrid {
                version: self.version(),
            };
        }
        OciError::Failed {
            runtime: self.kind.binary_name(),
            verb,
            id: id.to_string(),
            message,
        }
    }

    /// The runtime's version number, from the first line of `--version`.
    pub fn version(&self) -> String {
        Command::new(&self.binary)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                let first = text.lines().next()?.to_string();
                first.split_whitespace().nth(2).map(str::to_string)
            })
            .unwrap_or_else(|| "(unknown version)".into())
    }
}
