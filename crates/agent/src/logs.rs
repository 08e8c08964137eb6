//! Serving a container's CRI log for `pods/log`, as the kubelet does: the text of each
//! record (optionally after its timestamp), from the current instance's file or with
//! `previous` the one before it, with `tailLines`, `sinceSeconds`/`sinceTime`,
//! `limitBytes`, and `follow` until the container exits and its file is drained.
//!
//! Files are the runtime's: `<data>/pods/<ns>_<name>_<uid>/<container>/<restart>.log`. The
//! current instance is the highest number, the previous one the next lower.
//!
//! The container's monitor rotates its file (10 MiB × 5 files by default, see
//! `runtime::logs`). As with the kubelet, a plain read serves the current file only, and
//! `follow` goes on into the new file when the one it reads is rotated.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use runtime::logs::{Follower, Record};
use runtime::state::{self, ContainerStatus};

/// How often a followed file is read for more.
const POLL: Duration = Duration::from_millis(50);

/// The options of `pods/log`.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub tail_lines: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The request cannot be served as asked (HTTP 400 in the API).
    #[error("{0}")]
    BadRequest(String),
    /// There is no such log (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    #[error("reading the log {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Serves the logs of one data directory's containers.
#[derive(Debug, Clone)]
pub struct LogServer {
    data_dir: PathBuf,
}

impl LogServer {
    pub fn new(data_dir: &Path) -> Self {
        LogServer {
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// One container's log as `opts` asks (see the module header).
    pub async fn logs(
        &self,
        pod: &Pod,
        opts: &LogRequest,
    ) -> Result<BoxStream<'static, io::Result<Bytes>>, LogError> {
        let path = self.log_path(pod, opts)?;
        let mut fmt = Format::new(opts, jiff::Timestamp::now());
        let io_err = |source| LogError::Io {
            path: path.clone(),
            source,
        };
        // One open file serves what is there and what follows, even across a rotation.
        let mut follower = Follower::open(&path).map_err(io_err)?;
        let records = follower.read_new().map_err(io_err)?;
        let skip = match opts.tail_lines {
            Some(n) if n >= 0 => records.len().saturating_sub(n as usize),
            _ => 0,
        };
        let mut first = Vec::new();
        let mut done = false;
        for r in &records[skip..] {
            if !fmt.push(r, &mut first) {
                done = true;
                break;
            }
        }
        let head = stream::once(async move { Ok(Bytes::from(first)) });
        if !opts.follow || done {
            return Ok(head.boxed());
        }

        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(16);
        let data_dir = self.data_dir.clone();
        tokio::task::spawn_blocking(move || follow(&data_dir, &path, follower, fmt, tx));
        let rest = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        Ok(head.chain(rest).boxed())
    }

    /// The file `opts` names for `pod`, or why there is none.
    pub fn log_path(&self, pod: &Pod, opts: &LogRequest) -> Result<PathBuf, LogError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let container = pick_container(pod, opts.container.as_deref())?;
        let dir = self
            .data_dir
            .join("pods")
            .join(format!("{namespace}_{name}_{uid}"))
            .join(&container);
        let numbers = restart_numbers(&dir);
        let wanted = if opts.previous {
            numbers.iter().rev().nth(1)
        } else {
            numbers.last()
        };
        match wanted {
            Some(n) => Ok(dir.join(format!("{n}.log"))),
            None if opts.previous => Err(LogError::BadRequest(format!(
                "previous terminated container {container:?} in pod {name:?} not found"
            ))),
            None => Err(LogError::BadRequest(format!(
                "container {container:?} in pod {name:?} is waiting to start: \
                 ContainerCreating"
            ))),
        }
    }
}

/// The container the request names, or the pod's only one.
fn pick_container(pod: &Pod, asked: Option<&str>) -> Result<String, LogError> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let all: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .map(|c| c.name.clone())
        .collect();
    match asked {
        Some(c) if all.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(LogError::BadRequest(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if spec.containers.len() == 1 => Ok(spec.containers[0].name.clone()),
        None => {
            let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
            Err(LogError::BadRequest(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )))
        }
    }
}

/// The restart numbers of a container's log files, ascending.
pub fn restart_numbers(dir: &Path) -> Vec<u32> {
    let mut numbers: Vec<u32> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

/// Turns records into the bytes `pods/log` sends: since, timestamps and the byte limit.
pub struct Format {
    since: Option<jiff::Timestamp>,
    timestamps: bool,
    remaining: Option<u64>,
}

impl Format {
    pub fn new(opts: &LogRequest, now: jiff::Timestamp) -> Self {
        let since = match (opts.since_time, opts.since_seconds) {
            (Some(t), _) => Some(t),
            (None, Some(s)) => now.checked_sub(jiff::SignedDuration::from_secs(s)).ok(),
            (None, None) => None,
        };
        Format {
            since,
            timestamps: opts.timestamps,
            remaining: opts.limit_bytes.map(|n| n.max(0) as u64),
        }
    }

    /// Appends one record's bytes to `out`; `false` once the byte limit is reached.
    pub fn push(&mut self, r: &Record, out: &mut Vec<u8>) -> bool {
        if self.remaining == Some(0) {
            return false;
        }
        let at = r.timestamp.parse::<jiff::Timestamp>().ok();
        if let (Some(since), Some(at)) = (self.since, at)
            && at < since
        {
            return true;
        }
        let mut bytes = Vec::with_capacity(r.text.len() + 40);
        if self.timestamps {
            // RFC 3339 with as many fractional digits as needed, as Go's RFC3339Nano.
            match at {
                Some(t) => bytes.extend_from_slice(t.to_string().as_bytes()),
                None => bytes.extend_from_slice(r.timestamp.as_bytes()),
            }
            bytes.push(b' ');
        }
        bytes.extend_from_slice(&r.text);
        if !r.partial {
            bytes.push(b'\n');
        }
        if let Some(left) = self.remaining.as_mut() {
            let n = bytes.len().min(*left as usize);
            bytes.truncate(n);
            *left -= n as u64;
        }
        out.extend_from_slice(&bytes);
        self.remaining != Some(0)
    }
}

/// Sends what is appended to `path` after `offset` until its container has exited and
/// the file is drained, or the receiver goes away.
fn follow(
    data_dir: &Path,
    path: &Path,
    mut follower: Follower,
    mut fmt: Format,
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
) {
    loop {
        // Read the state before the file, so a final write is never missed.
        let exited = container_exited(data_dir, path);
        let records = match follower.read_new() {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let mut out = Vec::new();
        let mut more = true;
        for r in &records {
            if !fmt.push(r, &mut out) {
                more = false;
                break;
            }
        }
        if !out.is_empty() && tx.blocking_send(Ok(Bytes::from(out))).is_err() {
            return;
        }
        if !more || exited || tx.is_closed() {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// The one field of a container's record that says which log it writes.
#[derive(serde::Deserialize)]
struct LogOf {
    log_path: PathBuf,
}

/// Whether the container writing `log` has exited (or is gone).
fn container_exited(data_dir: &Path, log: &Path) -> bool {
    let containers = data_dir.join("containers");
    for e in std::fs::read_dir(&containers)
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(record) = state::read_json::<LogOf>(&e.path().join(state::RECORD)) else {
            continue;
        };
        if record.log_path == log {
            return state::read_json::<ContainerStatus>(&e.path().join(state::STATUS))
                .map(|s| s.is_exited())
                .unwrap_or(true);
        }
    }
    true
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;
