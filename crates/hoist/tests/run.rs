//! `hoist run -f` end to end: a real registry on loopback, real runc, the hoist binary.
//! Needs root, runc and busybox-static (skipped outside CI without them).

mod common;

use common::{Env, busybox_with, pod, stderr, stdout};

#[test]
fn the_tutorials_pod_prints_success() {
    let Some(env) = Env::new() else { return };
    let image = env.busybox();
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: testing-for-image-pull\nspec:\n  \
         containers:\n    - name: neo4j-server\n      image: {image}\n      \
         imagePullPolicy: Always\n      command: [\"echo\", \"SUCCESS\"]\n"
    );
    let out = env.run(&yaml, &[]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "SUCCESS\n");
    let err = stderr(&out);
    assert!(
        err.contains("restartPolicy Always; each container runs once"),
        "the override of Always is said: {err}"
    );
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
}

#[test]
fn the_first_non_zero_exit_code_passes_through() {
    let Some(env) = Env::new() else { return };
    let image = env.busybox();
    let out = env.run(
        &pod("exits", &image, &["sh", "-c", "echo bye; exit 3"], ""),
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "bye\n");
    assert!(
        stderr(&out).contains("exited with code 3 (Error)"),
        "{}",
        stderr(&out)
    );

    let two = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: two\nspec:\n  restartPolicy: Never\n  \
         containers:\n    - name: a\n      image: {image}\n      command: [sh, -c, 'exit 0']\n    \
         - name: b\n      image: {image}\n      \
         command: [sh, -c, 'echo out; echo err >&2; exit 7']\n"
    );
    let out = env.run(&two, &[]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        stdout(&out),
        "[b] out\n",
        "several containers: lines are prefixed"
    );
    assert!(stderr(&out).contains("[b] err\n"), "{}", stderr(&out));
}

/// The four cases of Kubernetes' table for `command` and `args` against the image's
/// Entrypoint and Cmd.
#[test]
fn command_and_args_against_entrypoint_and_cmd() {
    let Some(env) = Env::new() else { return };
    let image = env.push(
        "ep",
        &busybox_with(|c| {
            c.entrypoint(&["echo", "entrypoint"]);
            c.cmd(&["cmd"]);
        }),
    );
    let case = |extra: &str| {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: table\nspec:\n  \
             restartPolicy: Never\n  containers:\n    - name: main\n      image: {image}\n{extra}"
        );
        let out = env.run(&yaml, &[]);
        assert!(out.status.success(), "{extra}: {}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(case(""), "entrypoint cmd\n", "neither: the image's both");
    assert_eq!(
        case("      command: [echo, own]\n"),
        "own\n",
        "command: image Cmd ignored"
    );
    assert_eq!(
        case("      args: [arg]\n"),
        "entrypoint arg\n",
        "args: image Entrypoint kept"
    );
    assert_eq!(
        case("      command: [echo, own]\n      args: [arg]\n"),
        "own arg\n",
        "both: the image's neither"
    );
}

#[test]
fn env_merges_image_and_container_and_expands_references() {
    let Some(env) = Env::new() else { return };
    let image = env.push(
        "env",
        &busybox_with(|c| {
            c.env("FROM_IMAGE=img");
            c.env("OVERRIDDEN=img");
        }),
    );
    let extra = "      env:\n        - {name: OVERRIDDEN, value: own}\n        \
                 - {name: EXPANDED, value: '$(FROM_IMAGE)-$(OVERRIDDEN)-$(MISSING)-$$(ESC)'}\n";
    let cmd = [
        "sh",
        "-c",
        "echo $FROM_IMAGE $OVERRIDDEN $EXPANDED; cat /proc/sys/kernel/hostname",
    ];
    let out = env.run(&pod("envpod", &image, &cmd, extra), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // As in Kubernetes, `$(VAR)` sees only the container's own earlier variables: the
    // image's environment is merged by the runtime, after expansion.
    assert_eq!(
        stdout(&out),
        "img own $(FROM_IMAGE)-own-$(MISSING)-$(ESC)\nenvpod\n"
    );
}

#[test]
fn users_from_the_pod_and_the_image() {
    let Some(env) = Env::new() else { return };
    let root_image = env.busybox();
    let id = ["sh", "-c", "echo $(id -u):$(id -g)"];

    let sc = "      securityContext: {runAsUser: 1234, runAsGroup: 5678}\n";
    let out = env.run(&pod("uid", &root_image, &id, sc), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1234:5678\n");

    let by_name = env.push("named", &busybox_with(|c| c.user = Some("app".into())));
    let out = env.run(&pod("named", &by_name, &id, ""), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "1000:1000\n",
        "image User `app` is resolved in its passwd"
    );

    let non_root = "      securityContext: {runAsNonRoot: true}\n";
    let out = env.run(&pod("nonroot", &root_image, &id, non_root), &[]);
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "", "nothing ran");
    assert!(stderr(&out).contains("runAsNonRoot"), "{}", stderr(&out));
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}

#[test]
fn a_container_over_its_memory_limit_is_oom_killed() {
    let Some(env) = Env::new() else { return };
    let image = env.busybox();
    let extra = "      resources: {limits: {memory: 16Mi}}\n";
    let cmd = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];
    let out = env.run(&pod("oom", &image, &cmd, extra), &[]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(stderr(&out).contains("(OOMKilled)"), "{}", stderr(&out));
}

#[test]
fn a_hostile_working_dir_is_refused_before_anything_runs() {
    let Some(env) = Env::new() else { return };
    let image = env.push(
        "wd",
        &busybox_with(|c| c.working_dir = Some("/proc/self/fd/3".into())),
    );
    let out = env.run(&pod("wd", &image, &["pwd"], ""), &[]);
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.contains("image WorkingDir") && err.contains("/proc"),
        "{err}"
    );
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
}

#[test]
fn the_sandbox_has_its_own_network_and_host_network_shares_the_hosts() {
    let Some(env) = Env::new() else { return };
    let image = env.busybox();
    // /sys/class/net lists the interfaces of the container's network namespace.
    let cmd = ["sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags"];
    let out = env.run(&pod("net", &image, &cmd, ""), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "lo\n0x9\n", "only loopback, and it is up");

    let host = pod("hostnet", &image, &["cat", "/proc/sys/kernel/hostname"], "").replace(
        "  restartPolicy: Never\n",
        "  restartPolicy: Never\n  hostNetwork: true\n",
    );
    let out = env.run(&host, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        stdout(&out),
        hostname,
        "hostNetwork keeps the node's hostname"
    );
}

#[test]
fn init_containers_run_first_and_a_failing_one_stops_the_pod() {
    let Some(env) = Env::new() else { return };
    let image = env.busybox();
    let yaml = |init_exit: i32| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: init\nspec:\n  restartPolicy: Never\n  \
             initContainers:\n    - name: setup\n      image: {image}\n      \
             command: [sh, -c, 'echo setup; exit {init_exit}']\n  containers:\n    \
             - name: app\n      image: {image}\n      command: [echo, app]\n"
        )
    };
    let out = env.run(&yaml(0), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "[setup] setup\n[app] app\n");
    let out = env.run(&yaml(4), &[]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        stdout(&out),
        "[setup] setup\n",
        "the app container never started"
    );
}

#[test]
fn crun_runs_or_says_plainly_why_not() {
    let Some(env) = Env::new() else { return };
    if !testkit::require(testkit::ci::have_binary("crun"), "crun is not installed") {
        return;
    }
    let image = env.busybox();
    let out = env.run(
        &pod("crun", &image, &["echo", "SUCCESS"], ""),
        &["--runtime", "crun"],
    );
    if runtime::cgroups::detect() == runtime::cgroups::Mode::Hybrid && !out.status.success() {
        let err = stderr(&out);
        assert!(err.contains("hybrid") && err.contains("runc"), "{err}");
    } else {
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "SUCCESS\n");
    }
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
}

#[test]
fn empty_dir_and_host_path_volumes_are_mounted_and_others_refused() {
    let Some(env) = Env::new() else { return };
    let image = env.busybox();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("greeting"), "from the host\n").unwrap();
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: vols\nspec:\n  restartPolicy: Never\n  \
         volumes:\n    - name: scratch\n      emptyDir: {{}}\n    - name: ram\n      \
         emptyDir: {{medium: Memory}}\n    - name: host\n      \
         hostPath: {{path: {host}, type: Directory}}\n  initContainers:\n    \
         - name: fill\n      image: {image}\n      \
         command: [sh, -c, 'echo shared > /scratch/f; echo mem > /ram/f']\n      \
         volumeMounts:\n        - {{name: scratch, mountPath: /scratch}}\n        \
         - {{name: ram, mountPath: /ram}}\n  containers:\n    - name: read\n      \
         image: {image}\n      command: [sh, -c, 'cat /scratch/f /ram/f /host/greeting; \
         echo x > /host/new || echo read-only']\n      volumeMounts:\n        \
         - {{name: scratch, mountPath: /scratch}}\n        \
         - {{name: ram, mountPath: /ram}}\n        \
         - {{name: host, mountPath: /host, readOnly: true}}\n",
        host = host.path().display()
    );
    let out = env.run(&yaml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "[read] shared\n[read] mem\n[read] from the host\n[read] read-only\n"
    );
    assert!(!host.path().join("new").exists(), "readOnly holds");
    assert!(
        env.mounts().is_empty(),
        "the Memory emptyDir is unmounted: {:?}",
        env.mounts()
    );

    let cm = pod(
        "cm",
        &image,
        &["true"],
        "      volumeMounts: [{name: c, mountPath: /c}]\n",
    )
    .replace(
        "  containers:\n",
        "  volumes: [{name: c, configMap: {name: x}}]\n  containers:\n",
    );
    let out = env.run(&cm, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("volume \"c\" is of type configMap"), "{err}");
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}
