//! A pod's status as the kubelet reports it, built from what the runtime says of each
//! container (no IO here; the worker gathers the inputs and patches the result).
//!
//! The phase follows the kubelet's `getPhase`: pending while an init container has not
//! succeeded or an app container waits for its first start; running while any container
//! runs, or all stopped and `restartPolicy` will restart them; succeeded when every
//! container exited 0 and none will restart; failed when they all stopped, one failed, and
//! none will restart. A container waiting after an exit (`CrashLoopBackOff`) counts as
//! stopped, as in the kubelet.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus as K8sContainerStatus, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use runtime::ContainerStatus;

/// One run of a container, as the runtime recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: String,
    pub image: String,
    pub image_id: String,
    pub status: ContainerStatus,
    /// When it started running (the runtime keeps this only while it runs).
    pub started_at: Option<String>,
    pub created_at: String,
}

impl Instance {
    pub fn exit_code(&self) -> Option<i32> {
        match &self.status {
            ContainerStatus::Exited { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What the worker knows of one container of the pod.
#[derive(Debug, Clone, Default)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    /// The latest run, and the one before it.
    pub current: Option<Instance>,
    pub previous: Option<Instance>,
    pub restart_count: i32,
    /// Why it is not running now, when the worker knows better than the runtime
    /// (`ErrImagePull`, `ImagePullBackOff`, `CrashLoopBackOff`, `CreateContainerError`).
    pub waiting: Option<(String, String)>,
}

pub struct PodView<'a> {
    pub pod: &'a Pod,
    pub init: &'a [ContainerView],
    pub containers: &'a [ContainerView],
    pub sandbox_ready: bool,
    pub host_ip: &'a str,
    pub pod_ip: Option<&'a str>,
    pub now: jiff::Timestamp,
}

fn time(s: &str) -> Option<Time> {
    s.parse::<jiff::Timestamp>().ok().map(Time)
}

fn terminated(i: &Instance) -> Option<ContainerState> {
    let ContainerStatus::Exited {
        code,
        reason,
        message,
        finished_at,
    } = &i.status
    else {
        return None;
    };
    Some(ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: *code,
            reason: Some(reason.clone()),
            message: message.clone(),
            // A run too short to be seen running: its creation is the nearest known time.
            started_at: time(i.started_at.as_deref().unwrap_or(&i.created_at)),
            finished_at: time(finished_at),
            container_id: Some(format!("hoist://{}", i.id)),
            signal: None,
        }),
        ..Default::default()
    })
}

fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message: message.map(str::to_string),
        }),
        ..Default::default()
    }
}

/// One container's status; `default_wait` is the waiting reason before its first run.
pub fn container_status(v: &ContainerView, default_wait: &str) -> K8sContainerStatus {
    let cur = v.current.as_ref();
    let exited = cur.is_some_and(|i| i.status.is_exited());
    let (state, last) = match (&v.waiting, cur) {
        (Some((reason, message)), _) if cur.is_none() || exited => {
            let last = cur
                .and_then(terminated)
                .or_else(|| v.previous.as_ref().and_then(terminated));
            (waiting(reason, Some(message)), last)
        }
        (_, None) => (waiting(default_wait, None), None),
        (_, Some(i)) => {
            let last = v.previous.as_ref().and_then(terminated);
            let state = match &i.status {
                ContainerStatus::Created => waiting("ContainerCreating", None),
                ContainerStatus::Running { started_at, .. } => ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: time(started_at),
                    }),
                    ..Default::default()
                },
                ContainerStatus::Exited { .. } => terminated(i).unwrap_or_default(),
            };
            (state, last)
        }
    };
    let running = state.running.is_some();
    // The runtime's own ID of the running (or last) instance.
    let shown = cur.filter(|_| state.waiting.is_none() || exited).or(cur);
    K8sContainerStatus {
        name: v.name.clone(),
        image: v.image.clone(),
        image_id: shown.map(|i| i.image_id.clone()).unwrap_or_default(),
        container_id: shown.map(|i| format!("hoist://{}", i.id)),
        ready: running,
        started: Some(running),
        restart_count: v.restart_count,
        state: Some(state),
        last_state: Some(last.unwrap_or_default()),
        ..Default::default()
    }
}

#[derive(Debug, Default)]
struct Counts {
    running: usize,
    waiting: usize,
    stopped: usize,
    succeeded: usize,
}

fn count(statuses: &[K8sContainerStatus]) -> Counts {
    let mut c = Counts::default();
    for s in statuses {
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            c.running += 1;
        } else if let Some(t) = state.terminated {
            c.stopped += 1;
            if t.exit_code == 0 {
                c.succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            c.stopped += 1;
        } else {
            c.waiting += 1;
        }
    }
    c
}

/// Whether every init container has succeeded.
pub fn initialized(init: &[ContainerView]) -> bool {
    init.iter()
        .all(|v| v.current.as_ref().and_then(Instance::exit_code) == Some(0))
}

/// The pod's phase (see the module header).
pub fn phase(pod: &Pod, init: &[ContainerView], statuses: &[K8sContainerStatus]) -> &'static str {
    let policy = restart_policy(pod);
    let init_failed = init.iter().any(|v| {
        v.current
            .as_ref()
            .and_then(Instance::exit_code)
            .is_some_and(|c| c != 0)
    });
    if init_failed && policy == "Never" {
        return "Failed";
    }
    if !initialized(init) {
        return "Pending";
    }
    let c = count(statuses);
    if c.waiting > 0 {
        return "Pending";
    }
    if c.running > 0 {
        return "Running";
    }
    if c.stopped == 0 {
        return "Pending";
    }
    match policy {
        "Always" => "Running",
        _ if c.stopped == c.succeeded => "Succeeded",
        "Never" => "Failed",
        _ => "Running",
    }
}

pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn condition(
    pod: &Pod,
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: jiff::Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    // The transition time stays while the status does.
    let before = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == kind))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone());
    PodCondition {
        type_: kind.to_string(),
        status: status.to_string(),
        reason: if ok { None } else { reason.map(str::to_string) },
        message: if ok { None } else { message },
        last_transition_time: Some(before.unwrap_or(Time(now))),
        ..Default::default()
    }
}

fn names_where(statuses: &[K8sContainerStatus], f: impl Fn(&K8sContainerStatus) -> bool) -> String {
    let names: Vec<&str> = statuses
        .iter()
        .filter(|s| f(s))
        .map(|s| s.name.as_str())
        .collect();
    names.join(" ")
}

/// The whole status to patch onto `pods/NAME/status`.
pub fn build(v: &PodView<'_>) -> PodStatus {
    let init_done = initialized(v.init);
    // An init container is ready once it has succeeded, as the kubelet reports it.
    let init_statuses: Vec<_> = v
        .init
        .iter()
        .map(|c| {
            let mut s = container_status(c, "PodInitializing");
            s.ready = c.current.as_ref().and_then(Instance::exit_code) == Some(0);
            s
        })
        .collect();
    let app_wait = if init_done {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let statuses: Vec<_> = v
        .containers
        .iter()
        .map(|c| container_status(c, app_wait))
        .collect();
    let phase = phase(v.pod, v.init, &statuses);
    let completed = matches!(phase, "Succeeded" | "Failed");

    let all_ready = statuses.iter().all(|s| s.ready);
    let (ready_reason, unready) = if completed {
        ("PodCompleted", None)
    } else {
        let names = names_where(&statuses, |s| !s.ready);
        (
            "ContainersNotReady",
            Some(format!("containers with unready status: [{names}]")),
        )
    };
    let incomplete = names_where(&init_statuses, |s| {
        s.state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .is_none_or(|t| t.exit_code != 0)
    });
    let now = v.now;
    let old = v.pod.status.clone().unwrap_or_default();
    let scheduled = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled")
        .cloned()
        .unwrap_or_else(|| condition(v.pod, "PodScheduled", true, None, None, now));
    let conditions = vec![
        condition(
            v.pod,
            "PodReadyToStartContainers",
            v.sandbox_ready,
            None,
            None,
            now,
        ),
        condition(
            v.pod,
            "Initialized",
            init_done,
            Some("ContainersNotInitialized"),
            Some(format!("containers with incomplete status: [{incomplete}]")),
            now,
        ),
        condition(
            v.pod,
            "Ready",
            all_ready,
            Some(ready_reason),
            unready.clone(),
            now,
        ),
        condition(
            v.pod,
            "ContainersReady",
            all_ready,
            Some(ready_reason),
            unready,
            now,
        ),
        scheduled,
    ];

    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        host_ip: Some(v.host_ip.to_string()),
        host_ips: Some(vec![k8s_openapi::api::core::v1::HostIP {
            ip: v.host_ip.to_string(),
        }]),
        pod_ip: v.pod_ip.map(str::to_string),
        pod_ips: v.pod_ip.map(|ip| vec![PodIP { ip: ip.to_string() }]),
        start_time: old.start_time.or(Some(Time(now))),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        qos_class: old
            .qos_class
            .or_else(|| Some(podspec::defaults::qos_class(v.pod).to_string())),
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
