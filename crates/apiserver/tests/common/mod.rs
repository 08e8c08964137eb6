//! A hoist API server on a loopback port, in this test process, and the stock kubectl
//! binaries pointed at it. Tests that need kubectl skip outside CI when it is missing and
//! fail under `CI=true`.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use hoist_apiserver::{Config, RunningServer, Server};

/// The kubectl versions every flow runs with: the oldest, a middle and the newest one.
pub const VERSIONS: &[&str] = &["1.27", "1.30", "1.33"];

const SDK_BIN: &str = "/usr/lib/google-cloud-sdk/bin";

/// The path of `kubectl.<version>`, if the machine has it.
pub fn kubectl_path(version: &str) -> Option<PathBuf> {
    let p = Path::new(SDK_BIN).join(format!("kubectl.{version}"));
    testkit::ci::have_binary(p.to_str()?).then_some(p)
}

/// Whether every version in [`VERSIONS`] is installed, by the rule of `testkit::ci`.
pub fn have_kubectl() -> bool {
    let all = VERSIONS.iter().all(|v| kubectl_path(v).is_some());
    testkit::require(all, "the stock kubectl binaries are not installed")
}

/// A running server with its own data directory, and a kubectl cache of its own.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub server: Option<RunningServer>,
    pub rt: tokio::runtime::Runtime,
}

impl Cluster {
    pub fn start() -> Cluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let server = rt.block_on(async {
            let backend = store::SqliteBackend::open(dir.path().join("store.db")).expect("store");
            let cfg = Config::new(
                dir.path(),
                "127.0.0.1:0".parse().unwrap(),
                Arc::new(backend),
            );
            Server::start(cfg).await.expect("server starts")
        });
        Cluster {
            dir,
            server: Some(server),
            rt,
        }
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("running")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.server().kubeconfig_path().to_path_buf()
    }

    /// Writes `text` to a file in the data directory and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write manifest");
        p
    }

    /// Runs `kubectl.<version> args...` and returns what it did.
    pub fn kubectl(&self, version: &str, args: &[&str]) -> Run {
        let bin = kubectl_path(version).expect("kubectl installed");
        let cache = self.dir.path().join(format!("kcache-{version}"));
        let out = Command::new(&bin)
            .arg(format!("--cache-dir={}", cache.display()))
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .output()
            .expect("kubectl runs");
        Run::from(version, args, out)
    }
}

impl Cluster {
    /// Starts `kubectl.<version> args...` with its stdout piped, for `-w` and `-f`.
    pub fn kubectl_child(&self, version: &str, args: &[&str]) -> std::process::Child {
        let bin = kubectl_path(version).expect("kubectl installed");
        let cache = self.dir.path().join(format!("kcache-{version}"));
        Command::new(&bin)
            .arg(format!("--cache-dir={}", cache.display()))
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("kubectl starts")
    }
}

/// Reads the child's stdout lines until `count` of them satisfy `want` or 20 s pass.
pub fn read_lines_until(
    child: &mut std::process::Child,
    want: impl Fn(&str) -> bool,
    count: usize,
) -> Vec<String> {
    use std::io::BufRead;
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut lines = Vec::new();
    while lines.iter().filter(|l: &&String| want(l)).count() < count {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    lines
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
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
    fn from(version: &str, args: &[&str], out: Output) -> Run {
        Run {
            what: format!("kubectl.{version} {}", args.join(" ")),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code,
            Some(0),
            "{} failed:\n{}{}",
            self.what,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// Asserts failure and returns stderr.
    pub fn fails(&self) -> &str {
        assert_ne!(
            self.code,
            Some(0),
            "{} should fail:\n{}",
            self.what,
            self.stdout
        );
        &self.stderr
    }
}

/// A pod manifest of one busybox container.
pub fn pod_yaml(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  \
         containers:\n  - name: app\n    image: busybox:1.36\n    command: [\"echo\", \"SUCCESS\"]\n"
    )
}
