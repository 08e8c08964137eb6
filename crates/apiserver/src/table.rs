//! `meta.k8s.io/v1` Table output, which `kubectl get` asks for: the columns of each kind
//! (those of `-o wide` at priority 1), one row per object with the cells formatted as the
//! Kubernetes API server formats them (pod status reasons, ready counts, ages), and the
//! object's metadata as a `PartialObjectMetadata` for the namespace column, `--show-labels`
//! and `-L`.

use serde_json::{Value, json};

use crate::objects;
use crate::resources::Resource;

pub const CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// A Table of `items`, read at `resource_version`; `include_object` is the request's
/// `includeObject` (`Object` puts the whole object in each row, for `--sort-by`).
pub fn table(
    res: &Resource,
    items: &[Value],
    resource_version: &str,
    include_object: Option<&str>,
) -> Value {
    let columns: Vec<Value> = columns(res.kind)
        .iter()
        .map(|(name, ty, priority)| {
            let mut c = json!({"name": name, "type": ty, "format": "", "description": "",
                               "priority": priority});
            if *name == "Name" {
                c["format"] = json!("name");
            }
            c
        })
        .collect();
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let object = row_object(obj, include_object);
            json!({"cells": cells(res.kind, obj, now), "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn row_object(obj: &Value, include_object: Option<&str>) -> Value {
    match include_object {
        Some("Object") => obj.clone(),
        Some("None") => Value::Null,
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
        }),
    }
}

type Column = (&'static str, &'static str, u8);

fn columns(kind: &str) -> &'static [Column] {
    match kind {
        "Pod" => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        "Node" => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        "Event" => &[
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("First Seen", "string", 1),
            ("Count", "string", 1),
            ("Name", "string", 1),
        ],
        "Namespace" => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Age", "string", 0),
        ],
        "Secret" => &[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Data", "string", 0),
            ("Age", "string", 0),
        ],
        "ConfigMap" => &[
            ("Name", "string", 0),
            ("Data", "string", 0),
            ("Age", "string", 0),
        ],
        "ServiceAccount" => &[
            ("Name", "string", 0),
            ("Secrets", "string", 0),
            ("Age", "string", 0),
        ],
        "Lease" => &[
            ("Name", "string", 0),
            ("Holder", "string", 0),
            ("Age", "string", 0),
        ],
        _ => &[("Name", "string", 0), ("Age", "string", 0)],
    }
}

fn s<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn or_none(v: &str) -> Value {
    json!(if v.is_empty() { "<none>" } else { v })
}

fn age(obj: &Value, pointer: &str, now: jiff::Timestamp) -> String {
    match objects::parse_time(s(obj, pointer)) {
        Some(t) => human_duration(now.as_second() - t.as_second()),
        None => "<unknown>".to_string(),
    }
}

fn cells(kind: &str, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name = json!(objects::name(obj));
    let created = json!(age(obj, "/metadata/creationTimestamp", now));
    let count = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_object)
            .map_or(0, |m| m.len())
    };
    match kind {
        "Pod" => pod_cells(obj, now),
        "Node" => node_cells(obj, now),
        "Event" => event_cells(obj, now),
        "Namespace" => vec![name, json!(s(obj, "/status/phase")), created],
        "Secret" => {
            let data = count("/data") + count("/stringData");
            vec![name, json!(s(obj, "/type")), json!(data), created]
        }
        "ConfigMap" => vec![name, json!(count("/data") + count("/binaryData")), created],
        "ServiceAccount" => {
            let n = obj
                .get("secrets")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            vec![name, json!(n), created]
        }
        "Lease" => vec![name, or_none(s(obj, "/spec/holderIdentity")), created],
        _ => vec![name, created],
    }
}

fn pod_cells(pod: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = statuses
        .iter()
        .filter(|c| c["ready"] == json!(true))
        .count();
    let restarts: i64 = statuses
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let last_restart = statuses
        .iter()
        .filter_map(|c| objects::parse_time(s(c, "/lastState/terminated/finishedAt")))
        .max();
    let restarts = match last_restart {
        Some(t) if restarts > 0 => {
            format!(
                "{restarts} ({} ago)",
                human_duration(now.as_second() - t.as_second())
            )
        }
        _ => restarts.to_string(),
    };
    vec![
        json!(objects::name(pod)),
        json!(format!("{ready}/{total}")),
        json!(pod_status(pod)),
        json!(restarts),
        json!(age(pod, "/metadata/creationTimestamp", now)),
        or_none(s(pod, "/status/podIP")),
        or_none(s(pod, "/spec/nodeName")),
        or_none(s(pod, "/status/nominatedNodeName")),
        json!("<none>"),
    ]
}

/// The STATUS column of `kubectl get pods`, by the rules of the Kubernetes printer: the
/// pod's reason, else the first init container not done (`Init:N/M`, `Init:<reason>`), else
/// the last app container's waiting or terminated reason, `Terminating` once deleted.
pub fn pod_status(pod: &Value) -> String {
    let mut reason = s(pod, "/status/reason").to_string();
    if reason.is_empty() {
        reason = s(pod, "/status/phase").to_string();
    }
    let inits = pod
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let init_total = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut initializing = false;
    for (i, c) in inits.iter().enumerate() {
        let code = c
            .pointer("/state/terminated/exitCode")
            .and_then(Value::as_i64);
        if code == Some(0) {
            continue;
        }
        initializing = true;
        let waiting = s(c, "/state/waiting/reason");
        reason = match code {
            Some(code) => match s(c, "/state/terminated/reason") {
                "" => format!("Init:ExitCode:{code}"),
                r => format!("Init:{r}"),
            },
            None if !waiting.is_empty() && waiting != "PodInitializing" => {
                format!("Init:{waiting}")
            }
            None => format!("Init:{i}/{init_total}"),
        };
        break;
    }
    if !initializing {
        let statuses = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut running = false;
        for c in statuses.iter().rev() {
            let waiting = s(c, "/state/waiting/reason");
            let terminated = s(c, "/state/terminated/reason");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(code) = c.pointer("/state/terminated/exitCode") {
                reason = if terminated.is_empty() {
                    format!("ExitCode:{code}")
                } else {
                    terminated.to_string()
                };
            } else if c.pointer("/state/running").is_some() && c["ready"] == json!(true) {
                running = true;
            }
        }
        if reason == "Completed" && running {
            reason = "Running".to_string();
        }
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        reason = "Terminating".to_string();
    }
    reason
}

fn node_cells(node: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"] == "True");
    let mut status = match ready {
        Some(true) => "Ready".to_string(),
        Some(false) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node.pointer("/spec/unschedulable") == Some(&json!(true)) {
        status.push_str(",SchedulingDisabled");
    }
    let address = |ty: &str| {
        node.pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|x| x["type"] == ty))
            .and_then(|x| x["address"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let roles: Vec<&str> = objects::labels(node)
        .map(|l| {
            l.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .collect()
        })
        .unwrap_or_default();
    vec![
        json!(objects::name(node)),
        json!(status),
        or_none(&roles.join(",")),
        json!(age(node, "/metadata/creationTimestamp", now)),
        json!(s(node, "/status/nodeInfo/kubeletVersion")),
        or_none(&address("InternalIP")),
        or_none(&address("ExternalIP")),
        json!(s(node, "/status/nodeInfo/osImage")),
        json!(s(node, "/status/nodeInfo/kernelVersion")),
        json!(s(node, "/status/nodeInfo/containerRuntimeVersion")),
    ]
}

fn event_cells(ev: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let last = [
        "/lastTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find(|p| !s(ev, p).is_empty())
    .map_or("<unknown>".to_string(), |p| age(ev, p, now));
    let first = [
        "/firstTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find(|p| !s(ev, p).is_empty())
    .map_or("<unknown>".to_string(), |p| age(ev, p, now));
    let object = format!(
        "{}/{}",
        s(ev, "/involvedObject/kind").to_lowercase(),
        s(ev, "/involvedObject/name")
    );
    let source = match (s(ev, "/source/component"), s(ev, "/source/host")) {
        ("", _) => s(ev, "/reportingComponent").to_string(),
        (c, "") => c.to_string(),
        (c, h) => format!("{c}, {h}"),
    };
    vec![
        json!(last),
        json!(s(ev, "/type")),
        json!(s(ev, "/reason")),
        json!(object),
        json!(s(ev, "/message").trim()),
        json!(s(ev, "/involvedObject/fieldPath")),
        json!(source),
        json!(first),
        json!(ev["count"].as_i64().unwrap_or(1)),
        json!(objects::name(ev)),
    ]
}

/// An age as Kubernetes prints it: `42s`, `5m3s`, `3h12m`, `4d`, ...
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    let seconds = seconds.max(0);
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        for (secs, want) in [
            (0, "0s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 720, "3h12m"),
            (30 * 3600, "30h"),
            (4 * 86400, "4d"),
            (5 * 86400 + 3600, "5d1h"),
            (100 * 86400, "100d"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn pod_status_follows_the_printer() {
        let waiting = json!({"status": {"phase": "Pending", "containerStatuses": [
            {"name": "a", "ready": false, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}});
        assert_eq!(pod_status(&waiting), "ImagePullBackOff");
        let done = json!({"status": {"phase": "Succeeded", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
        assert_eq!(pod_status(&done), "Completed");
        let init = json!({"spec": {"initContainers": [{}, {}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"state": {"terminated": {"exitCode": 0}}}, {"state": {"running": {}}}]}});
        assert_eq!(pod_status(&init), "Init:1/2");
        let gone = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
                          "status": {"phase": "Running"}});
        assert_eq!(pod_status(&gone), "Terminating");
    }
}
