//! What the `hoist run` tests share: a real registry on loopback with busybox images pushed
//! to it, a data directory of the test's own, and the `hoist` binary run as a person would.
//! These tests need root, runc and busybox-static: outside CI they skip without them.

#![allow(dead_code)]

pub mod cluster;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use testkit::image::{BuiltImage, ImageBuilder};
use testkit::{Registry, busybox, require};

pub const HOIST: &str = env!("CARGO_BIN_EXE_hoist");

pub struct Env {
    pub reg: Registry,
    pub data: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Env {
    /// A registry and data directory, or `None` (skipped) without root, runc or busybox.
    pub fn new() -> Option<Env> {
        if !require(testkit::ci::is_root(), "hoist run needs root")
            || !require(testkit::ci::have_binary("runc"), "runc is not installed")
            || !require(
                busybox::busybox_available(),
                "busybox-static is not installed",
            )
        {
            return None;
        }
        let reg = Registry::start()?;
        let data = tempfile::Builder::new()
            .prefix("hoist-run-test")
            .tempdir()
            .expect("data dir");
        let rt = tokio::runtime::Runtime::new().expect("tokio");
        Some(Env { reg, data, rt })
    }

    /// Pushes `image` as `repo:1` and returns its reference.
    pub fn push(&self, repo: &str, image: &BuiltImage) -> String {
        self.rt
            .block_on(self.reg.push(repo, "1", image))
            .expect("push");
        format!("{}/{repo}:1", self.reg.host())
    }

    /// Pushes the plain busybox image.
    pub fn busybox(&self) -> String {
        self.push("busybox", &busybox::busybox_image().build())
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Writes `yaml` to a file and runs `hoist run -f` on it with `extra` arguments.
    pub fn run(&self, yaml: &str, extra: &[&str]) -> Output {
        self.command(yaml, extra).output().expect("run hoist")
    }

    pub fn command(&self, yaml: &str, extra: &[&str]) -> Command {
        let file = self.write_manifest(yaml);
        let mut cmd = Command::new(HOIST);
        cmd.arg("--data-dir")
            .arg(self.data.path())
            .arg("run")
            .arg("-f")
            .arg(file)
            .args(extra)
            .stdin(Stdio::null());
        cmd
    }

    pub fn write_manifest(&self, yaml: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = self.data.path().join(format!("pod-{n}.yaml"));
        std::fs::write(&file, yaml).expect("write manifest");
        file
    }

    /// What of this data directory is still mounted (sandbox namespaces, rootfs).
    pub fn mounts(&self) -> Vec<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.data.path().to_string_lossy().into_owned();
        info.lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&root))
            .map(str::to_string)
            .collect()
    }

    /// Entries left under `containers/` and `sandboxes/`.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        ["containers", "sandboxes"]
            .iter()
            .flat_map(|d| {
                std::fs::read_dir(self.data.path().join(d))
                    .into_iter()
                    .flatten()
            })
            .flatten()
            .map(|e| e.path())
            .collect()
    }
}

/// A one-container pod running `command` with `restartPolicy: Never`; `extra` is more YAML
/// for the container, indented by 6 spaces.
pub fn pod(name: &str, image: &str, command: &[&str], extra: &str) -> String {
    let cmd = serde_json::to_string(command).unwrap();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: Never\n  \
         containers:\n    - name: main\n      image: {image}\n      command: {cmd}\n{extra}"
    )
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The busybox image with a config edited by `f`.
pub fn busybox_with(f: impl FnOnce(&mut testkit::image::RunConfig)) -> BuiltImage {
    let b: ImageBuilder = busybox::busybox_image();
    b.config(f).build()
}
