//! Debian's `docker-registry` (distribution 2.8) started for one test: a free loopback port,
//! storage in a tempdir, deletes enabled, optionally htpasswd Basic auth. The process is
//! killed when the [`Registry`] is dropped.
//!
//! The registry writes an access-log line per request (`"GET /v2/r/blobs/sha256:… HTTP/1.1"
//! 200 …`) into a log file, which [`Registry::requests`] and [`Registry::blob_gets`] parse so
//! tests can count what a client downloaded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::image::{BuiltImage, BuiltIndex};
use crate::push::{PushError, Pusher};

/// Where Debian installs the registry.
pub const DOCKER_REGISTRY: &str = "/usr/bin/docker-registry";
/// Where apache2-utils installs htpasswd.
pub const HTPASSWD: &str = "/usr/bin/htpasswd";

/// A running `docker-registry`.
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    credentials: Option<(String, String)>,
    syncs: std::sync::atomic::AtomicUsize,
}

/// One access-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The request URI: path and query.
    pub uri: String,
    pub status: u16,
}

impl Registry {
    /// Starts an anonymous registry. Returns `None` (after printing why) when
    /// `docker-registry` is not installed and we are not in CI; panics under `CI=true` or when
    /// the registry does not come up.
    pub fn start() -> Option<Registry> {
        Self::launch(None)
    }

    /// Starts a registry that demands Basic credentials `user`/`pass` (htpasswd, bcrypt).
    /// Same `None` rule as [`Registry::start`], also for a missing `htpasswd`.
    pub fn start_with_htpasswd(user: &str, pass: &str) -> Option<Registry> {
        Self::launch(Some((user.to_string(), pass.to_string())))
    }

    fn launch(credentials: Option<(String, String)>) -> Option<Registry> {
        let have = crate::ci::have_binary(DOCKER_REGISTRY);
        if !crate::require(
            have,
            "docker-registry is not installed (apt install docker-registry)",
        ) {
            return None;
        }
        if credentials.is_some() {
            let have = crate::ci::have_binary(HTPASSWD);
            if !crate::require(
                have,
                "htpasswd is not installed (apt install apache2-utils)",
            ) {
                return None;
            }
        }

        // The port is picked by binding and releasing it; another process may take it in
        // between, so a registry that exits at start is tried again on a new port.
        let mut last_error = String::new();
        for _ in 0..5 {
            match Self::try_launch(credentials.clone()) {
                Ok(reg) => return Some(reg),
                Err(e) => last_error = e,
            }
        }
        panic!("docker-registry did not start: {last_error}");
    }

    fn try_launch(credentials: Option<(String, String)>) -> Result<Registry, String> {
        let dir = tempfile::Builder::new()
            .prefix("hoist-registry-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let port = free_port().map_err(|e| format!("free port: {e}"))?;
        let config = config_yaml(dir.path(), port, credentials.as_ref())?;
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).map_err(|e| format!("write config: {e}"))?;

        let log = std::fs::File::create(dir.path().join("registry.log"))
            .map_err(|e| format!("create log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("clone log: {e}"))?;
        let child = Command::new(DOCKER_REGISTRY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawn {DOCKER_REGISTRY}: {e}"))?;
        let mut reg = Registry {
            child,
            port,
            dir,
            credentials,
            syncs: Default::default(),
        };

        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = reg.child.try_wait() {
                return Err(format!("exited with {status}: {}", reg.log_text()));
            }
            // An htpasswd registry answers 401 to /v2/, which still says it is up.
            if let Ok(status) = raw_get(port, "/v2/")
                && (status == 200 || status == 401)
            {
                return Ok(reg);
            }
            if Instant::now() > deadline {
                return Err(format!("no answer on port {port}: {}", reg.log_text()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The storage root directory (`docker/registry/v2/...` below it).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The credentials of an htpasswd registry.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// A pusher for this registry, with its credentials when it has some.
    pub fn pusher(&self) -> Pusher {
        let pusher = Pusher::new(&self.host());
        match self.credentials() {
            Some((u, p)) => pusher.basic_auth(u, p),
            None => pusher,
        }
    }

    /// Pushes an image (with credentials when needed).
    pub async fn push(&self, repo: &str, tag: &str, image: &BuiltImage) -> Result<(), PushError> {
        self.pusher().push_image(repo, tag, image).await
    }

    /// Pushes an index and its images (with credentials when needed).
    pub async fn push_index(
        &self,
        repo: &str,
        tag: &str,
        index: &BuiltIndex,
    ) -> Result<(), PushError> {
        self.pusher().push_index(repo, tag, index).await
    }

    /// Everything the registry process wrote so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Every request the registry has answered, in order.
    ///
    /// The registry writes a request's log line just after sending the response, so a
    /// client may see the response first. To read a complete log, this first sends a marked
    /// request of its own and waits until that line appears (the requests before it have
    /// all returned by then).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        let n = self
            .syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let marker = format!("/v2/?testkit-sync={n}");
        let _ = raw_get(self.port, &marker);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let all = parse_access_log(&self.log_text());
            if all.iter().any(|r| r.uri == marker) || Instant::now() > deadline {
                return all
                    .into_iter()
                    .filter(|r| !r.uri.contains("testkit-sync="))
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many `GET`s of the blob `digest` (any repository) the registry answered.
    pub fn blob_gets(&self, digest: &str) -> usize {
        let suffix = format!("/blobs/{digest}");
        self.requests()
            .iter()
            .filter(|r| {
                r.method == "GET" && r.uri.split('?').next().unwrap_or("").ends_with(&suffix)
            })
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn config_yaml(
    dir: &Path,
    port: u16,
    credentials: Option<&(String, String)>,
) -> Result<String, String> {
    let storage = dir.join("storage");
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: error\n  formatter: text\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: hoist-testkit-secret\n",
        storage.display()
    );
    if let Some((user, pass)) = credentials {
        let out = Command::new(HTPASSWD)
            .args(["-Bbn", user, pass])
            .output()
            .map_err(|e| format!("run htpasswd: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "htpasswd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let path = dir.join("htpasswd");
        std::fs::write(&path, &out.stdout).map_err(|e| format!("write htpasswd: {e}"))?;
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: hoist-test\n    path: {}\n",
            path.display()
        ));
    }
    Ok(yaml)
}

/// A minimal HTTP/1.0 GET on loopback; returns the status code.
fn raw_get(port: u16, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))
}

/// Parses the combined-format access log lines
/// (`127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 2 "" "agent"`), ignoring other lines.
pub fn parse_access_log(text: &str) -> Vec<LoggedRequest> {
    text.lines()
        .filter(|l| !l.starts_with("time="))
        .filter_map(|line| {
            let (_, rest) = line.split_once("] \"")?;
            let (request, rest) = rest.split_once("\" ")?;
            let mut parts = request.split(' ');
            let method = parts.next()?.to_string();
            let uri = parts.next()?.to_string();
            let status = rest.split(' ').next()?.parse().ok()?;
            Some(LoggedRequest {
                method,
                uri,
                status,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_access_log_lines() {
        let log = "time=\"x\" level=error msg=\"response completed\" http.request.uri=/v2/\n\
            127.0.0.1 - - [03/Dec/2026:20:26:40 +0000] \"GET /v2/foo/blobs/sha256:00 HTTP/1.1\" \
            404 157 \"\" \"curl/7.88.1\"\n";
        assert_eq!(
            parse_access_log(log),
            vec![LoggedRequest {
                method: "GET".into(),
                uri: "/v2/foo/blobs/sha256:00".into(),
                status: 404,
            }]
        );
    }
}
