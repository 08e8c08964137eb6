//! The agent's Node: what it says of the machine (pure, from [`HostFacts`]), its
//! registration, and the heartbeats: a Lease in `kube-node-lease` renewed every 10 s, as
//! the kubelet does, and the node's conditions re-posted every minute.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Namespace, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec,
    NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};

pub const KUBELET_VERSION: &str = "v1.33.0";
pub const RUNTIME_VERSION: &str = concat!("hoist://", env!("CARGO_PKG_VERSION"));
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const LEASE_RENEW: Duration = Duration::from_secs(10);
const LEASE_DURATION_SECONDS: i32 = 40;
const STATUS_EVERY: Duration = Duration::from_secs(60);
/// The kubelet's default `maxPods`.
const MAX_PODS: &str = "110";

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("registering node {node}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("posting the status of node {node}")]
    Status {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("renewing the lease of node {node}")]
    Lease {
        node: String,
        #[source]
        source: kube::Error,
    },
}

/// What the node reports about the machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFacts {
    pub os_image: String,
    pub kernel_version: String,
    pub architecture: String,
    pub machine_id: String,
    pub boot_id: String,
    pub cpus: usize,
    pub memory_kib: u64,
    /// When the agent started: its conditions hold since then.
    pub started: jiff::Timestamp,
    /// The port of the agent's log endpoint (see [`crate::log_endpoint`]); 0 when it serves
    /// none.
    pub log_port: u16,
}

impl HostFacts {
    /// Reads the facts from `/etc` and `/proc`; what cannot be read stays empty.
    pub fn gather() -> Self {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        HostFacts {
            os_image: os_image(&read("/etc/os-release")),
            kernel_version: read("/proc/sys/kernel/osrelease"),
            architecture: go_arch(std::env::consts::ARCH).to_string(),
            machine_id: read("/etc/machine-id"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_kib: mem_total_kib(&read("/proc/meminfo")),
            started: jiff::Timestamp::now(),
            log_port: 0,
        }
    }
}

/// `PRETTY_NAME` of an os-release file, as the kubelet reports `osImage`.
pub fn os_image(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| "Unknown".into())
}

fn mem_total_kib(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Rust's architecture names as Go (and so Kubernetes) spells them.
pub fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// `times`: now, and since when the condition holds.
fn condition(
    kind: &str,
    ok: bool,
    reason: &str,
    message: &str,
    times: &(jiff::Timestamp, jiff::Timestamp),
) -> NodeCondition {
    NodeCondition {
        type_: kind.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(Time(times.0)),
        last_transition_time: Some(Time(times.1)),
    }
}

/// The node's status as the kubelet posts it.
pub fn node_status(name: &str, facts: &HostFacts, now: jiff::Timestamp) -> NodeStatus {
    let now = &(now, facts.started);
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity(facts.cpus.to_string())),
        (
            "memory".to_string(),
            Quantity(format!("{}Ki", facts.memory_kib)),
        ),
        ("pods".to_string(), Quantity(MAX_PODS.into())),
    ]);
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                now,
            ),
            condition(
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                now,
            ),
            condition(
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                now,
            ),
            condition(
                "Ready",
                true,
                "KubeletReady",
                "kubelet is posting ready status",
                now,
            ),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: "127.0.0.1".into(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: name.into(),
            },
        ]),
        // Where the API server reaches this node's log endpoint, as it reaches a kubelet's.
        daemon_endpoints: (facts.log_port > 0).then(|| NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(facts.log_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: facts.architecture.clone(),
            boot_id: facts.boot_id.clone(),
            container_runtime_version: RUNTIME_VERSION.into(),
            kernel_version: facts.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: facts.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: facts.os_image.clone(),
            system_uuid: facts.machine_id.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Node object, with its well-known labels.
pub fn node_object(name: &str, facts: &HostFacts, now: jiff::Timestamp) -> Node {
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), facts.architecture.clone()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        (
            "beta.kubernetes.io/arch".to_string(),
            facts.architecture.clone(),
        ),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(node_status(name, facts, now)),
    }
}

/// Creates the Node (or keeps the one there) and posts its status.
pub async fn register(
    client: &kube::Client,
    name: &str,
    facts: &HostFacts,
) -> Result<(), NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let node = node_object(name, facts, jiff::Timestamp::now());
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => tracing::debug!(node = name, "node registered"),
        Err(kube::Error::Api(s)) if s.is_already_exists() => {
            tracing::debug!(node = name, "node already registered")
        }
        Err(source) => {
            return Err(NodeError::Register {
                node: name.into(),
                source,
            });
        }
    }
    post_status(client, name, facts).await
}

async fn post_status(
    client: &kube::Client,
    name: &str,
    facts: &HostFacts,
) -> Result<(), NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let status = node_status(name, facts, jiff::Timestamp::now());
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(|source| NodeError::Status {
            node: name.into(),
            source,
        })
}

/// Renews the node's lease (creating it, and its namespace, when missing).
pub async fn renew_lease(client: &kube::Client, name: &str) -> Result<(), NodeError> {
    let err = |source| NodeError::Lease {
        node: name.into(),
        source,
    };
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = MicroTime(jiff::Timestamp::now());
    let patch = serde_json::json!({ "spec": { "renewTime": now, "holderIdentity": name } });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => {}
        Err(e) => return Err(err(e)),
    }
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(LEASE_NAMESPACE.into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.into()),
            lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
            renew_time: Some(now),
            ..Default::default()
        }),
    };
    match api.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => {
            // The namespace is missing (a server that does not make it): make it, once.
            let ns: Api<Namespace> = Api::all(client.clone());
            let object = Namespace {
                metadata: ObjectMeta {
                    name: Some(LEASE_NAMESPACE.into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            let _ = ns.create(&PostParams::default(), &object).await;
            api.create(&PostParams::default(), &lease)
                .await
                .map(drop)
                .map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

/// Renews the lease every 10 s and re-posts the node's status every minute, forever.
pub async fn heartbeat(client: kube::Client, name: String, facts: HostFacts) {
    let mut since_status = Duration::ZERO;
    loop {
        if let Err(e) = renew_lease(&client, &name).await {
            tracing::warn!(node = %name, error = %crate::chain(&e), "node lease not renewed");
        }
        if since_status >= STATUS_EVERY {
            since_status = Duration::ZERO;
            if let Err(e) = post_status(&client, &name, &facts).await {
                tracing::warn!(node = %name, error = %crate::chain(&e), "node status not posted");
            }
        }
        tokio::time::sleep(LEASE_RENEW).await;
        since_status += LEASE_RENEW;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_os_and_memory() {
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(os_image(os), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os_image(""), "Unknown");
        assert_eq!(
            mem_total_kib("MemTotal:        8000000 kB\nMemFree: 1 kB"),
            8_000_000
        );
        assert_eq!(go_arch("x86_64"), "amd64");
    }

    #[test]
    fn node_says_ready_with_the_kubelets_version() {
        let facts = HostFacts {
            architecture: "amd64".into(),
            cpus: 2,
            memory_kib: 1024,
            ..Default::default()
        };
        let n = node_object("n1", &facts, jiff::Timestamp::UNIX_EPOCH);
        let s = n.status.unwrap();
        let ready = s
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        let info = s.node_info.unwrap();
        assert_eq!(info.kubelet_version, "v1.33.0");
        assert!(info.container_runtime_version.starts_with("hoist://"));
        assert_eq!(s.capacity.unwrap()["memory"].0, "1024Ki");
        let addrs = s.addresses.unwrap();
        assert_eq!(
            (addrs[0].type_.as_str(), addrs[0].address.as_str()),
            ("InternalIP", "127.0.0.1")
        );
    }
}
