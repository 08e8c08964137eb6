//! `hoist run` over a pod's life: every byte of its output in the CRI log, a stop by signal,
//! and nothing left behind when `hoist run` itself is killed. Needs root, runc and
//! busybox-static (skipped outside CI without them).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Env, busybox_with, pod, stderr, stdout};
use runtime::logs::{Record, Stream, parse_record, reassemble};
use testkit::image::Compression;
use testkit::layer::LayerBuilder;

fn log_files(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![data.join("pods")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "log") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn records(path: &Path) -> Vec<Record> {
    std::fs::read(path)
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| parse_record(l).expect("every line is a CRI record"))
        .collect()
}

#[test]
fn the_log_file_holds_every_byte_in_order() {
    let Some(env) = Env::new() else { return };
    let image = env.busybox();
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: loud\nspec:\n  restartPolicy: Never\n  \
         containers:\n    - name: lines\n      image: {image}\n      command: [sh, -c, \
         'i=0; while [ $i -lt 100000 ]; do echo \"line $i\"; i=$((i+1)); done']\n    \
         - name: long\n      image: {image}\n      \
         command: [dd, if=/dev/zero, bs=1048576, count=1]\n"
    );
    let out = env.run(&yaml, &["--rm=false"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let logs = log_files(env.data_dir());
    assert_eq!(logs.len(), 2, "{logs:?}");
    let (lines, long) = if logs[0].to_string_lossy().contains("/lines/") {
        (&logs[0], &logs[1])
    } else {
        (&logs[1], &logs[0])
    };
    let expected: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
    let got = reassemble(&records(lines), Stream::Stdout);
    assert!(
        got == expected.as_bytes(),
        "100,000 lines, in order, none lost"
    );

    let recs = records(long);
    let mut zeros = reassemble(&recs, Stream::Stdout);
    assert_eq!(
        zeros.pop(),
        Some(b'\n'),
        "output without a newline ends as an F record"
    );
    assert_eq!(zeros.len(), 1 << 20);
    assert!(zeros.iter().all(|&b| b == 0));
    let partials = recs
        .iter()
        .filter(|r| r.stream == Stream::Stdout && r.partial)
        .count();
    let full = recs
        .iter()
        .filter(|r| r.stream == Stream::Stdout && !r.partial)
        .count();
    assert_eq!(
        (partials, full),
        (63, 1),
        "1 MiB in 16 KiB records: 63 P, the last F"
    );
    // The printed copy has every byte too, behind `[lines] ` on each line and `[long] `.
    let printed = expected.len() + 8 * 100_000 + 7 + (1 << 20) + 1;
    assert_eq!(out.stdout.len(), printed);

    // The next `hoist run` removes what `--rm=false` kept, all but the logs.
    assert!(
        !env.mounts().is_empty(),
        "--rm=false keeps the pod's mounts"
    );
    let after = env.run(&pod("after", &image, &["true"], ""), &[]);
    assert!(after.status.success(), "{}", stderr(&after));
    assert!(env.mounts().is_empty(), "left mounted: {:?}", env.mounts());
    assert!(logs.iter().all(|l| l.exists()), "the kept logs stay");
}

#[test]
fn a_signal_stops_the_pod_within_its_grace_period_and_cleans_up() {
    let Some(env) = Env::new() else { return };
    let image = env.busybox();
    let yaml = pod("sleeper", &image, &["sleep", "1000"], "").replace(
        "  restartPolicy: Never\n",
        "  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n",
    );
    let child = env
        .command(&yaml, &[])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_running(env.data_dir());
    let started = Instant::now();
    nix_kill(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped, not hung"
    );
    // PID 1 ignores SIGTERM without a handler: SIGKILL after the grace period, as kubelet.
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
}

#[test]
fn a_killed_hoist_run_leaves_nothing_after_the_next_run() {
    let Some(env) = Env::new() else { return };
    let image = env.busybox();
    let yaml = pod("orphan", &image, &["sleep", "1000"], "");
    let mut child = env
        .command(&yaml, &[])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let container = wait_running(env.data_dir());
    let cgroups = cgroup_dirs(&container);
    assert!(
        !cgroups.is_empty(),
        "the container has cgroups while it runs"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !env.leftovers().is_empty(),
        "the container outlives hoist run (its monitor)"
    );

    let out = env.run(&pod("next", &image, &["echo", "next"], ""), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "next\n");
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    assert!(
        env.mounts().is_empty(),
        "no rootfs or namespace mount: {:?}",
        env.mounts()
    );
    let left: Vec<_> = cgroups.iter().filter(|p| p.exists()).collect();
    assert!(left.is_empty(), "cgroups removed: {left:?}");
    let runc_state = std::fs::read_dir(env.data_dir().join("runc"))
        .unwrap()
        .count();
    assert_eq!(runc_state, 0, "no runtime state left");
}

#[test]
fn a_passwd_that_links_to_the_host_is_read_inside_the_rootfs() {
    let Some(env) = Env::new() else { return };
    // The host's /etc/passwd names `daemon` (uid 1); the image's passwd is a link that would
    // reach it if followed on the host. Confined, it points back into the rootfs.
    let escape = LayerBuilder::new()
        .symlink("etc/passwd", "../../../../../../etc/passwd")
        .into_layer(Compression::Gzip);
    let image = testkit::busybox::busybox_image()
        .layer(escape)
        .config(|c| c.user = Some("daemon".into()))
        .build();
    let image = env.push("passwd", &image);
    let out = env.run(&pod("passwd", &image, &["id", "-u"], ""), &[]);
    assert!(!out.status.success(), "stdout: {}", stdout(&out));
    assert_eq!(stdout(&out), "", "never ran as the host's uid for daemon");
    assert!(stderr(&out).contains("/etc/passwd"), "{}", stderr(&out));

    let huge = env.push(
        "huge",
        &busybox_with(|c| c.user = Some("4294967296".into())),
    );
    let out = env.run(&pod("huge", &huge, &["id", "-u"], ""), &[]);
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "", "a uid above 2^32 never becomes uid 0");
}

/// Waits until a container of `data` runs; returns its id.
fn wait_running(data: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for e in std::fs::read_dir(data.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let status = std::fs::read_to_string(e.path().join("status.json")).unwrap_or_default();
            if status.contains("\"running\"") {
                return e.file_name().to_string_lossy().into_owned();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no container started within 30 s");
}

fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    runtime::cgroups::paths_for(&format!("/hoist/{id}"))
        .into_iter()
        .filter(|p| p.exists())
        .collect()
}

fn nix_kill(pid: u32, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid}");
}
