use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn pod(policy: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("p".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some(policy.into()),
            containers: vec![Container {
                name: "main".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn exited(id: &str, code: i32) -> Instance {
    Instance {
        id: id.into(),
        image: "busybox".into(),
        image_id: "sha256:abc".into(),
        status: ContainerStatus::Exited {
            code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            finished_at: "2024-01-01T00:00:05.000000000Z".into(),
        },
        started_at: Some("2024-01-01T00:00:01.000000000Z".into()),
        created_at: "2024-01-01T00:00:00.000000000Z".into(),
    }
}

fn running(id: &str) -> Instance {
    Instance {
        status: ContainerStatus::Running {
            pid: 1,
            started_at: "2024-01-01T00:00:10.000000000Z".into(),
        },
        ..exited(id, 0)
    }
}

fn view(current: Option<Instance>, previous: Option<Instance>, restarts: i32) -> ContainerView {
    ContainerView {
        name: "main".into(),
        image: "busybox".into(),
        current,
        previous,
        restart_count: restarts,
        waiting: None,
    }
}

fn build_for(pod: &Pod, c: ContainerView) -> PodStatus {
    build(&PodView {
        pod,
        init: &[],
        containers: &[c],
        sandbox_ready: true,
        host_ip: "127.0.0.1",
        pod_ip: Some("127.0.0.1"),
        now: jiff::Timestamp::UNIX_EPOCH,
    })
}

fn condition_of(s: &PodStatus, kind: &str) -> String {
    let cs = s.conditions.as_ref().unwrap();
    cs.iter().find(|c| c.type_ == kind).unwrap().status.clone()
}

#[test]
fn completed_never_pod_succeeds_with_terminated_state() {
    let p = pod("Never");
    let s = build_for(&p, view(Some(exited("a1", 0)), None, 0));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    let c = &s.container_statuses.as_ref().unwrap()[0];
    let t = c.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(t.container_id.as_deref(), Some("hoist://a1"));
    assert!(t.started_at.is_some() && t.finished_at.is_some());
    assert_eq!(c.container_id.as_deref(), Some("hoist://a1"));
    assert!(!c.ready);
    assert_eq!(condition_of(&s, "Ready"), "False");
    let ready = s
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready");
    assert_eq!(ready.unwrap().reason.as_deref(), Some("PodCompleted"));
}

#[test]
fn failed_never_pod_fails() {
    let s = build_for(&pod("Never"), view(Some(exited("a1", 3)), None, 0));
    assert_eq!(s.phase.as_deref(), Some("Failed"));
}

#[test]
fn running_container_is_ready_with_last_state() {
    let p = pod("Always");
    let s = build_for(&p, view(Some(running("a2")), Some(exited("a1", 1)), 1));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert!(c.ready && c.started == Some(true));
    assert_eq!(c.restart_count, 1);
    let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(
        (last.exit_code, last.container_id.as_deref()),
        (1, Some("hoist://a1"))
    );
    assert_eq!(condition_of(&s, "Ready"), "True");
    assert_eq!(condition_of(&s, "ContainersReady"), "True");
    assert_eq!(condition_of(&s, "Initialized"), "True");
    assert_eq!(condition_of(&s, "PodReadyToStartContainers"), "True");
    assert_eq!(condition_of(&s, "PodScheduled"), "True");
}

#[test]
fn crash_loop_waits_with_the_exit_as_last_state_and_pod_running() {
    let p = pod("Always");
    let mut v = view(Some(exited("a3", 0)), Some(exited("a2", 0)), 2);
    v.waiting = Some(("CrashLoopBackOff".into(), "back-off 10s restarting".into()));
    let s = build_for(&p, v);
    assert_eq!(s.phase.as_deref(), Some("Running"));
    let c = &s.container_statuses.as_ref().unwrap()[0];
    let w = c.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
    let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(last.container_id.as_deref(), Some("hoist://a3"));
    assert_eq!(c.restart_count, 2);
}

#[test]
fn image_errors_keep_the_pod_pending() {
    let mut v = view(None, None, 0);
    v.waiting = Some((
        "ErrImagePull".into(),
        "Failed to pull image \"x\": 401".into(),
    ));
    let s = build_for(&pod("Always"), v);
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let c = &s.container_statuses.as_ref().unwrap()[0];
    let w = c.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(w.reason.as_deref(), Some("ErrImagePull"));
    assert!(w.message.as_deref().unwrap().contains("401"));
    assert_eq!(c.container_id, None);
}

#[test]
fn app_containers_wait_for_init_containers() {
    let mut p = pod("Always");
    p.spec.as_mut().unwrap().init_containers = Some(vec![Container {
        name: "setup".into(),
        ..Default::default()
    }]);
    let mut init = view(Some(running("i1")), None, 0);
    init.name = "setup".into();
    let s = build(&PodView {
        pod: &p,
        init: &[init],
        containers: &[view(None, None, 0)],
        sandbox_ready: true,
        host_ip: "127.0.0.1",
        pod_ip: None,
        now: jiff::Timestamp::UNIX_EPOCH,
    });
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(condition_of(&s, "Initialized"), "False");
    let app = &s.container_statuses.as_ref().unwrap()[0];
    let w = app.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(w.reason.as_deref(), Some("PodInitializing"));
    assert_eq!(s.init_container_statuses.as_ref().unwrap().len(), 1);
}

#[test]
fn init_failure_fails_a_never_pod() {
    let mut p = pod("Never");
    p.spec.as_mut().unwrap().init_containers = Some(vec![Container {
        name: "setup".into(),
        ..Default::default()
    }]);
    let mut init = view(Some(exited("i1", 1)), None, 0);
    init.name = "setup".into();
    let statuses = vec![container_status(&view(None, None, 0), "PodInitializing")];
    assert_eq!(phase(&p, &[init], &statuses), "Failed");
}

#[test]
fn a_succeeded_init_container_is_ready_and_the_app_starts() {
    let mut p = pod("Always");
    p.spec.as_mut().unwrap().init_containers = Some(vec![Container {
        name: "setup".into(),
        ..Default::default()
    }]);
    let mut init = view(Some(exited("i1", 0)), None, 0);
    init.name = "setup".into();
    let s = build(&PodView {
        pod: &p,
        init: &[init],
        containers: &[view(Some(running("a1")), None, 0)],
        sandbox_ready: true,
        host_ip: "127.0.0.1",
        pod_ip: None,
        now: jiff::Timestamp::UNIX_EPOCH,
    });
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert!(s.init_container_statuses.as_ref().unwrap()[0].ready);
    assert_eq!(condition_of(&s, "Initialized"), "True");
}

#[test]
fn on_failure_restarts_failures_and_succeeds_on_zero() {
    let p = pod("OnFailure");
    assert_eq!(
        build_for(&p, view(Some(exited("a", 0)), None, 0))
            .phase
            .as_deref(),
        Some("Succeeded")
    );
    assert_eq!(
        build_for(&p, view(Some(exited("a", 1)), None, 0))
            .phase
            .as_deref(),
        Some("Running")
    );
}

#[test]
fn transition_times_stay_while_a_condition_holds() {
    let mut p = pod("Always");
    let first = build_for(&p, view(Some(running("a")), None, 0));
    p.status = Some(first.clone());
    let later = build(&PodView {
        pod: &p,
        init: &[],
        containers: &[view(Some(running("a")), None, 0)],
        sandbox_ready: true,
        host_ip: "127.0.0.1",
        pod_ip: None,
        now: "2030-01-01T00:00:00Z".parse().unwrap(),
    });
    assert_eq!(first.conditions, later.conditions);
    assert_eq!(first.start_time, later.start_time);
}
