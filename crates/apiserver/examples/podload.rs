//! Load for the API bench (`bench/run-api.sh`), through kube-rs as any client would:
//! creates N pods with C requests in flight and reports pods created per second; with
//! `--running`, also watches until each pod is Running and reports create→Running latency
//! (p50, p99), measured on the client's clock from the create call's start.
//!
//! `cargo run --release -p hoist-apiserver --example podload -- KUBECONFIG N C IMAGE [--running]`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let [_, kubeconfig, n, c, image, rest @ ..] = args.as_slice() else {
        eprintln!("usage: podload KUBECONFIG N CONCURRENCY IMAGE [--running]");
        std::process::exit(2);
    };
    let (n, c): (usize, usize) = (n.parse().expect("N"), c.parse().expect("CONCURRENCY"));
    let running = rest.iter().any(|a| a == "--running");

    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(cfg).expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let run = format!("load{}", std::process::id());

    // Watch first, so that no Running transition is missed.
    let rv = pods
        .list(&Default::default())
        .await
        .expect("list")
        .metadata
        .resource_version;
    let watch = pods
        .watch(
            &WatchParams::default().labels(&format!("run={run}")),
            &rv.unwrap_or_default(),
        )
        .await
        .expect("watch");

    let started = Instant::now();
    let created: Vec<(String, Instant)> = stream::iter(0..n)
        .map(|i| {
            let pods = pods.clone();
            let name = format!("{run}-{i}");
            let pod: Pod = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": {"run": run}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "app",
                    "image": image, "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"]}]},
            }))
            .expect("pod");
            async move {
                let t = Instant::now();
                pods.create(&PostParams::default(), &pod)
                    .await
                    .expect("create");
                (name, t)
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "created {n} pods in {secs:.3} s: {:.0} pods/s",
        n as f64 / secs
    );
    if !running {
        return;
    }

    let mut pending: HashMap<String, Instant> = created.into_iter().collect();
    let mut latencies = Vec::with_capacity(n);
    let mut watch = watch.boxed();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !pending.is_empty() && Instant::now() < deadline {
        let Ok(Some(Ok(ev))) = tokio::time::timeout(Duration::from_secs(30), watch.next()).await
        else {
            break;
        };
        if let WatchEvent::Added(p) | WatchEvent::Modified(p) = ev {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            let name = p.metadata.name.unwrap_or_default();
            if phase == Some("Running")
                && let Some(t) = pending.remove(&name)
            {
                latencies.push(t.elapsed());
            }
        }
    }
    latencies.sort();
    let pct = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    if latencies.is_empty() {
        println!("no pod reached Running");
        return;
    }
    println!(
        "running {}/{n}: create->Running p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
}
