//! `hoist server` as a person starts it (the real binary, on a loopback port, with its own
//! data directory), and the stock kubectl pointed at the kubeconfig it writes
//! (`testkit::kubectl`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// Each test binary uses a different part of these.
#[allow(unused_imports)]
pub use testkit::kubectl::{Run, VERSIONS, available as have_kubectl};

use super::HOIST;

/// A running `hoist server`.
pub struct Cluster {
    pub data: PathBuf,
    child: Option<Child>,
}

impl Cluster {
    /// Starts the server in `data` and waits until its node is Ready.
    pub fn start(data: &Path) -> Cluster {
        let mut child = Command::new(HOIST)
            .arg("--data-dir")
            .arg(data)
            .args(["server", "--listen", "127.0.0.1:0", "--node-name", "node1"])
            .env("HOIST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("hoist server starts");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains("is Ready") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!("hoist server did not report its node Ready within 30 s");
                }
            }
        }
        Cluster {
            data: data.to_path_buf(),
            child: Some(child),
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data.join("api/kubeconfig.yaml")
    }

    /// Runs kubectl and returns what it printed.
    pub fn kubectl(&self, version: &str, args: &[&str]) -> Run {
        testkit::kubectl::Kubectl::new(self.kubeconfig(), &self.data).run(version, args)
    }

    /// Writes a manifest into the data directory.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.data.join(name);
        std::fs::write(&p, text).expect("write manifest");
        p.to_string_lossy().into_owned()
    }

    /// Runs `kubectl.1.33 args` until its stdout satisfies `done` or `secs` pass; returns
    /// the last output.
    pub fn until(&self, args: &[&str], secs: u64, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.kubectl("1.33", args);
            if done(&r.stdout) {
                return r.stdout;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} never gave what was waited for; last:\n{}{}",
                    r.what, r.stdout, r.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Stops the server with SIGTERM (containers keep running) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    // Deletes every pod (the agent stops and removes their containers), then stops.
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        let _ = self.kubectl(
            "1.33",
            &[
                "delete",
                "pods",
                "--all",
                "--grace-period=1",
                "--wait=true",
                "--timeout=30s",
            ],
        );
        self.stop();
    }
}
