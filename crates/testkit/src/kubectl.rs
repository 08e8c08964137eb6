//! The stock kubectl binaries, pointed at a kubeconfig: what the API tests run to assert on
//! what a person would see. Each run has its own discovery cache under a home directory of
//! the test's, so no test reads another's cache.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The versions the flows run with: the oldest, a middle and the newest one supported.
pub const VERSIONS: &[&str] = &["1.27", "1.30", "1.33"];

const SDK_BIN: &str = "/usr/lib/google-cloud-sdk/bin";

/// The path of `kubectl.<version>`.
pub fn path(version: &str) -> PathBuf {
    Path::new(SDK_BIN).join(format!("kubectl.{version}"))
}

/// Whether every version in [`VERSIONS`] is installed, by the rule of [`crate::require`].
pub fn available() -> bool {
    let all = VERSIONS
        .iter()
        .all(|v| crate::ci::have_binary(path(v).to_str().unwrap_or("")));
    crate::require(all, "the stock kubectl binaries are not installed")
}

/// kubectl for one cluster.
#[derive(Debug, Clone)]
pub struct Kubectl {
    kubeconfig: PathBuf,
    home: PathBuf,
}

impl Kubectl {
    /// kubectl with `kubeconfig`, keeping its caches under `home`.
    pub fn new(kubeconfig: impl Into<PathBuf>, home: impl Into<PathBuf>) -> Kubectl {
        Kubectl {
            kubeconfig: kubeconfig.into(),
            home: home.into(),
        }
    }

    /// The command `kubectl.<version> args...`, not yet run.
    pub fn command(&self, version: &str, args: &[&str]) -> Command {
        let cache = self.home.join("kcache").join(version);
        let mut cmd = Command::new(path(version));
        cmd.arg(format!("--cache-dir={}", cache.display()))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `kubectl.<version> args...` and returns what it printed.
    pub fn run(&self, version: &str, args: &[&str]) -> Run {
        let out = self.command(version, args).output().expect("kubectl runs");
        Run {
            what: format!("kubectl.{version} {}", args.join(" ")),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts `kubectl.<version> args...` with its stdout piped, for `-w` and `-f`.
    pub fn spawn(&self, version: &str, args: &[&str]) -> Child {
        self.command(version, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl starts")
    }
}

/// What one kubectl command printed.
#[derive(Debug)]
pub struct Run {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        let (what, out, err) = (&self.what, &self.stdout, &self.stderr);
        assert_eq!(self.code, Some(0), "{what} failed:\n{out}{err}");
        &self.stdout
    }

    /// Asserts failure and returns stderr.
    pub fn fails(&self) -> &str {
        let (what, out) = (&self.what, &self.stdout);
        assert_ne!(self.code, Some(0), "{what} should fail:\n{out}");
        &self.stderr
    }
}

/// Reads the child's stdout lines until `count` of them satisfy `want` or 20 s pass.
pub fn read_lines_until(
    child: &mut Child,
    want: impl Fn(&str) -> bool,
    count: usize,
) -> Vec<String> {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines: Vec<String> = Vec::new();
    while lines.iter().filter(|l| want(l)).count() < count {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    lines
}
