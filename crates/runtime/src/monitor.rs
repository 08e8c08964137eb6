//! The container monitor: one small process per container run (`hoist monitor DIR`, or
//! this crate's `hoist-runtime-monitor` in tests) that outlives whoever started it.
//!
//! Started by [`crate::Runtime::start_container`], it forks; the parent waits until the
//! container runs (or failed to) and exits with that answer, while the child leaves the
//! starter's session (`setsid`), becomes a child subreaper and does the work:
//! 1. `runc create` with two pipes as the container's stdout and stderr (no terminal), so
//!    the container's init is reparented to the monitor when runc exits;
//! 2. copies both pipes into the CRI log file ([`crate::logs`]), one thread each;
//! 3. `runc start`, then records `Running` and tells the parent;
//! 4. reaps the init, reads the cgroup's OOM-kill count, records the exit code, reason
//!    (`Completed`, `Error`, `OOMKilled`) and finish time atomically, and deletes the
//!    runtime's container and its cgroups.
//!
//! A failure before the container runs is recorded as `Exited` with reason `StartError`
//! and the runtime's own message, which the starter turns back into an error.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{ExitCode, Stdio};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use crate::cgroups;
use crate::logs::{LogFile, Stream};
use crate::state::{self, ContainerRecord, ContainerStatus};
use crate::time;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("reading the container record {path}")]
    Record {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("monitor step `{step}` failed")]
    Os {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{verb}: {message}")]
    Runtime { verb: &'static str, message: String },
    #[error(transparent)]
    Oci(crate::oci_runtime::OciError),
}

fn os(step: &'static str) -> impl FnOnce(Errno) -> MonitorError {
    move |e| MonitorError::Os {
        step,
        source: e.into(),
    }
}

fn io(step: &'static str) -> impl FnOnce(std::io::Error) -> MonitorError {
    move |source| MonitorError::Os { step, source }
}

/// The monitor's entry point: exit 0 once the container runs, 1 (with the reason on
/// stderr) if it could not be started.
pub fn main(state_dir: &Path) -> ExitCode {
    match run(state_dir) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hoist monitor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the monitor for the container whose state is in `state_dir`. Must be called while
/// the process has a single thread (it forks).
pub fn run(state_dir: &Path) -> Result<ExitCode, MonitorError> {
    let path = state_dir.join(state::RECORD);
    let record: ContainerRecord =
        state::read_json(&path).map_err(|source| MonitorError::Record {
            path: path.display().to_string(),
            source,
        })?;
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os("pipe"))?;

    // SAFETY: the callers (`hoist monitor`, the test binary) call this before starting any
    // thread, so the child is a complete copy of a single-threaded process.
    #[allow(unsafe_code)]
    let fork = unsafe { nix::unistd::fork() }.map_err(os("fork"))?;
    match fork {
        ForkResult::Parent { .. } => {
            drop(ready_w);
            let mut answer = String::new();
            File::from(ready_r)
                .read_to_string(&mut answer)
                .map_err(io("waiting for start"))?;
            if answer == "ok" {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{answer}");
                Ok(ExitCode::FAILURE)
            }
        }
        ForkResult::Child => {
            drop(ready_r);
            let mut ready = Some(File::from(ready_w));
            let result = detach()
                .and_then(|()| {
                    let me = crate::ids::Owner::current();
                    state::write_json_atomic(&state_dir.join(state::MONITOR), &me)
                        .map_err(io("recording the monitor"))
                })
                .and_then(|()| supervise(state_dir, &record, &mut ready));
            if let Err(e) = result {
                let status = ContainerStatus::Exited {
                    code: 128,
                    reason: "StartError".into(),
                    message: Some(e.to_string()),
                    finished_at: time::now(),
                };
                let _ = state::write_json_atomic(&state_dir.join(state::STATUS), &status);
                if let Some(mut w) = ready.take() {
                    let _ = w.write_all(e.to_string().as_bytes());
                }
                std::process::exit(1);
            }
            std::process::exit(0);
        }
    }
}

/// Leaves the starter's session and stdio, and adopts orphaned descendants.
fn detach() -> Result<(), MonitorError> {
    nix::unistd::setsid().map_err(os("setsid"))?;
    std::env::set_current_dir("/").map_err(io("chdir /"))?;
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(io("/dev/null"))?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors; no Rust object owns 0-2 here.
        #[allow(unsafe_code)]
        let target = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let mut target = unsafe_owned(target);
        nix::unistd::dup2(&null, &mut target).map_err(os("dup2"))?;
        std::mem::forget(target);
    }
    nix::sys::prctl::set_child_subreaper(true).map_err(os("set child subreaper"))?;
    Ok(())
}

/// An `OwnedFd` for a standard descriptor, which the caller must `forget`.
fn unsafe_owned(fd: std::os::fd::BorrowedFd<'_>) -> OwnedFd {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: used only for fds 0-2 and always forgotten, never closed.
    #[allow(unsafe_code)]
    unsafe {
        OwnedFd::from_raw_fd(fd.as_raw_fd())
    }
}

fn supervise(
    state_dir: &Path,
    record: &ContainerRecord,
    ready: &mut Option<File>,
) -> Result<(), MonitorError> {
    let rt = &record.runtime;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os("pipe"))?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os("pipe"))?;
    let pid_file = state_dir.join("pid");

    let mut create = rt.command("create");
    create
        .arg("--bundle")
        .arg(&record.bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&record.id)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));
    let status = create.status().map_err(io("spawning the runtime's create"));
    // The Command holds the pipes' write ends: drop it so only the container has them.
    drop(create);
    let status = status?;
    if !status.success() {
        // The runtime has exited and no container exists: the pipe ends at its output.
        let mut message = String::new();
        let _ = File::from(err_r).read_to_string(&mut message);
        let _ = rt.delete(&record.id);
        return Err(MonitorError::Oci(rt.explain_failure(
            "create",
            &record.id,
            message.trim().into(),
        )));
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .map_err(io("reading the pid file"))?
        .trim()
        .parse()
        .map_err(|_| MonitorError::Runtime {
            verb: "create",
            message: "bad pid file".into(),
        })?;

    let log = LogFile::open_rotating(&record.log_path, record.log_rotation)
        .map_err(io("opening the log file"))?;
    let copiers: Vec<_> = [(Stream::Stdout, out_r), (Stream::Stderr, err_r)]
        .into_iter()
        .map(|(stream, fd)| {
            let log = log.clone();
            std::thread::spawn(move || log.copy_stream(stream, File::from(fd)))
        })
        .collect();

    if let Err(e) = rt.run("start", &record.id, &[]) {
        let _ = rt.delete(&record.id);
        for c in copiers {
            let _ = c.join();
        }
        return Err(MonitorError::Oci(e));
    }
    let running = ContainerStatus::Running {
        pid,
        started_at: time::now(),
    };
    state::write_json_atomic(&state_dir.join(state::STATUS), &running)
        .map_err(io("writing the status"))?;
    if let Some(mut w) = ready.take() {
        w.write_all(b"ok").map_err(io("telling the starter"))?;
    }
    tracing::debug!(id = %record.id, pid, "container running");

    let code = reap(pid);
    for c in copiers {
        match c.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "copying container output to its log"),
            Err(_) => tracing::warn!("a log copier panicked"),
        }
    }

    let paths = cgroups::paths_for(&record.cgroups_path);
    let oom = cgroups::oom_kills(&paths) > 0;
    let reason = if oom {
        "OOMKilled"
    } else if code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let exited = ContainerStatus::Exited {
        code,
        reason: reason.into(),
        message: None,
        finished_at: time::now(),
    };
    state::write_json_atomic(&state_dir.join(state::STATUS), &exited)
        .map_err(io("writing the status"))?;
    if let Err(e) = rt.delete(&record.id) {
        tracing::warn!(error = %e, "deleting the runtime's container");
    }
    cgroups::remove(&paths);
    Ok(())
}

/// Waits for `pid` (the container's init, a child of this subreaper), reaping any other
/// orphan on the way; returns the exit code, 128 + the signal for a killed process.
fn reap(pid: i32) -> i32 {
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => return 128 + sig as i32,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => {
                // Not our child (a subreaper was refused): poll until it is gone.
                while Path::new(&format!("/proc/{pid}")).exists() {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                return 255;
            }
        }
    }
}
