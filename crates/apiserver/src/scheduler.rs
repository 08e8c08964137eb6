//! A small scheduler: it binds every pod without a node to a Ready, schedulable node and
//! records the `Scheduled` event, as the default scheduler words it. It looks again after
//! each pod or node write and every few seconds.
//!
//! It does not weigh resources, affinity, taints or node selectors: with one node that
//! costs nothing; with several, pods are spread round-robin and a pod that asks for a node
//! that cannot serve it is bound anyway.
//!
//! Each pass lists every pod to find the unbound ones, after each burst of pod writes
//! (notifications coalesce), so its cost grows with the pods stored; the create bench (1,000
//! pods at 3,385/s) kept up with it. Far beyond that, an index of pending pods kept from a
//! watch would be needed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::api::Api;
use crate::handlers::binding::bind_pod;
use crate::handlers::create::{self, CreateOptions};
use crate::objects;
use crate::resources;

const RESCAN: Duration = Duration::from_secs(5);

/// Runs until `stop` turns true.
pub async fn run(api: Arc<Api>, mut stop: watch::Receiver<bool>) {
    let mut turn = 0usize;
    loop {
        if let Err(e) = pass(&api, &mut turn).await {
            tracing::warn!(error = %e.message, "scheduling pass failed; trying again");
        }
        tokio::select! {
            _ = api.schedule.notified() => {}
            _ = tokio::time::sleep(RESCAN) => {}
            _ = stop.changed() => return,
        }
    }
}

fn ready(node: &Value) -> bool {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    ready && node.pointer("/spec/unschedulable") != Some(&json!(true))
}

async fn pass(api: &Api, turn: &mut usize) -> Result<(), crate::ApiError> {
    let pods = resources::pods();
    let (all, _) = api.list_all(pods, &pods.prefix()).await?;
    let pending: Vec<&Value> = all
        .iter()
        .filter(|p| {
            p.pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        })
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let nodes = resources::nodes();
    let (nodes, _) = api.list_all(nodes, &nodes.prefix()).await?;
    let ready: Vec<&str> = nodes
        .iter()
        .filter(|n| ready(n))
        .map(objects::name)
        .collect();
    if ready.is_empty() {
        tracing::debug!(pending = pending.len(), "no Ready node to schedule on");
        return Ok(());
    }
    for pod in pending {
        let node = ready[*turn % ready.len()];
        *turn += 1;
        let ns = objects::namespace(pod).unwrap_or("default");
        let name = objects::name(pod);
        match bind_pod(api, ns, name, node).await {
            Ok(bound) => {
                tracing::debug!(pod = name, node, "scheduled");
                scheduled_event(api, &bound, node).await;
            }
            Err(e) if e.code == 409 || e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn scheduled_event(api: &Api, pod: &Value, node: &str) {
    let ns = objects::namespace(pod).unwrap_or("default");
    let name = objects::name(pod);
    let now = objects::now();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{}", objects::name_suffix()), "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": name,
                           "uid": objects::uid(pod), "apiVersion": "v1",
                           "resourceVersion": objects::meta_str(pod, "resourceVersion")},
        "reason": "Scheduled",
        "message": format!("Successfully assigned {ns}/{name} to {node}"),
        "source": {"component": "default-scheduler"},
        "reportingComponent": "default-scheduler",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": "Normal",
    });
    let events = resources::events();
    if let Err(e) = create::create(api, events, event, &CreateOptions::internal()).await {
        tracing::warn!(pod = name, error = %e.message, "recording the Scheduled event failed");
    }
}
