//! Printing a container's CRI log file to the terminal as it grows: stdout records to
//! stdout, stderr records to stderr, each logical line prefixed with `[container] ` when a
//! run has several containers.

use std::io::Write;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use runtime::logs::{Follower, Record, Stream};
use runtime::state::{self, ContainerStatus};

/// How often a growing log file is read.
const POLL: Duration = Duration::from_millis(10);

pub struct LogPrinter {
    prefix: Option<String>,
    /// Whether the next byte of each stream starts a line (stdout, stderr).
    at_line_start: [bool; 2],
}

impl LogPrinter {
    pub fn new(prefix: Option<String>) -> Self {
        LogPrinter {
            prefix,
            at_line_start: [true, true],
        }
    }

    pub fn print(&mut self, records: &[Record]) {
        let mut out = std::io::stdout().lock();
        let mut err = std::io::stderr().lock();
        for r in records {
            let (w, i): (&mut dyn Write, usize) = match r.stream {
                Stream::Stdout => (&mut out, 0),
                Stream::Stderr => (&mut err, 1),
            };
            let mut bytes = Vec::with_capacity(r.text.len() + 32);
            if self.at_line_start[i]
                && let Some(p) = &self.prefix
            {
                bytes.extend_from_slice(p.as_bytes());
            }
            bytes.extend_from_slice(&r.text);
            if !r.partial {
                bytes.push(b'\n');
            }
            self.at_line_start[i] = !r.partial;
            // A closed terminal or pipe is no reason to stop the pod.
            let _ = w.write_all(&bytes);
        }
        let _ = out.flush();
        let _ = err.flush();
    }
}

/// Follows `log` on a thread of its own until the container's status file says it has
/// exited and everything it wrote has been printed.
pub fn spawn(log: PathBuf, status: PathBuf, mut printer: LogPrinter) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut follower = None;
        loop {
            let exited = state::read_json::<ContainerStatus>(&status)
                .map(|s| s.is_exited())
                .unwrap_or(true);
            if follower.is_none() {
                follower = Follower::open(&log).ok();
            }
            if let Some(f) = follower.as_mut() {
                match f.read_new() {
                    Ok(records) => printer.print(&records),
                    Err(e) => {
                        tracing::warn!(log = %log.display(), error = %e, "reading the log");
                        return;
                    }
                }
            }
            if exited {
                return;
            }
            std::thread::sleep(POLL);
        }
    })
}
