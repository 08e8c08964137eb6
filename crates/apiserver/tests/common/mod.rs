//! A hoist API server on a loopback port, in this test process, and the stock kubectl
//! binaries pointed at it (`testkit::kubectl`). Tests that need kubectl skip outside CI when
//! it is missing and fail under `CI=true`.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::path::PathBuf;
use std::sync::Arc;

use hoist_apiserver::{Config, RunningServer, Server};
pub use testkit::kubectl::{Run, VERSIONS, available as have_kubectl, read_lines_until};

/// A running server with its own data directory, and a kubectl cache of its own.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub server: Option<RunningServer>,
    pub rt: tokio::runtime::Runtime,
    kubectl: testkit::kubectl::Kubectl,
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
        let kubectl = testkit::kubectl::Kubectl::new(server.kubeconfig_path(), dir.path());
        Cluster {
            dir,
            server: Some(server),
            rt,
            kubectl,
        }
    }

    /// Writes `text` to a file in the data directory and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write manifest");
        p
    }

    /// Runs `kubectl.<version> args...` and returns what it did.
    pub fn kubectl(&self, version: &str, args: &[&str]) -> Run {
        self.kubectl.run(version, args)
    }

    /// Starts `kubectl.<version> args...` with its stdout piped, for `-w` and `-f`.
    pub fn kubectl_child(&self, version: &str, args: &[&str]) -> std::process::Child {
        self.kubectl.spawn(version, args)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

/// A pod manifest of one busybox container.
pub fn pod_yaml(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  \
         containers:\n  - name: app\n    image: busybox:1.36\n    \
         command: [\"echo\", \"SUCCESS\"]\n"
    )
}
