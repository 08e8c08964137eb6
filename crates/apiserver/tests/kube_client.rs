//! kube-rs as a second client: a list, then a watch from the list's resourceVersion, across
//! a restart of the server on the same data directory and port, loses no event and repeats
//! none.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use hoist_apiserver::{Config, RunningServer, Server};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

async fn start(dir: &Path, listen: SocketAddr) -> RunningServer {
    let backend = store::SqliteBackend::open(dir.join("store.db")).expect("store opens");
    Server::start(Config::new(dir, listen, Arc::new(backend)))
        .await
        .expect("server starts")
}

async fn client(server: &RunningServer) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
    }))
    .expect("pod")
}

/// Reads watch events until `n` ADDED pods arrived; returns their names and the last
/// resourceVersion seen.
async fn added(
    stream: &mut (impl futures_util::Stream<Item = kube::Result<WatchEvent<Pod>>> + Unpin),
    n: usize,
) -> (Vec<String>, String) {
    let (mut names, mut rv) = (Vec::new(), String::new());
    while names.len() < n {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream is open")
            .expect("a good event");
        match ev {
            WatchEvent::Added(p) => {
                rv = p.metadata.resource_version.clone().unwrap_or_default();
                names.push(p.metadata.name.unwrap_or_default());
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    (names, rv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_then_watch_across_a_restart_loses_no_event() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let addr = server.local_addr();
    let pods: Api<Pod> = Api::namespaced(client(&server).await, "default");

    pods.create(&PostParams::default(), &pod("before"))
        .await
        .unwrap();
    let list = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    for name in ["a", "b"] {
        pods.create(&PostParams::default(), &pod(name))
            .await
            .unwrap();
    }
    let (names, last) = added(&mut stream, 2).await;
    assert_eq!(names, ["a", "b"]);

    // The restart ends the watch; writes land before the client watches again.
    server.shutdown().await;
    let rest: Vec<_> = stream.try_collect().await.unwrap_or_default();
    assert!(
        rest.is_empty(),
        "no event after b before the restart: {rest:?}"
    );
    let server = start(dir.path(), addr).await;
    let pods: Api<Pod> = Api::namespaced(client(&server).await, "default");
    for name in ["c", "d"] {
        pods.create(&PostParams::default(), &pod(name))
            .await
            .unwrap();
    }
    let mut stream = pods
        .watch(&WatchParams::default(), &last)
        .await
        .unwrap()
        .boxed();
    pods.create(&PostParams::default(), &pod("e"))
        .await
        .unwrap();
    let (names, _) = added(&mut stream, 3).await;
    assert_eq!(
        names,
        ["c", "d", "e"],
        "every write after the last event seen, once"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_compacted_history_gets_410_expired() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let backend = store::SqliteBackend::open(dir.path().join("store.db")).unwrap();
    let mut cfg = Config::new(
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(backend),
    );
    cfg.compact_interval = Duration::from_millis(100);
    let server = Server::start(cfg).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&server).await, "default");
    let first = pods
        .create(&PostParams::default(), &pod("old"))
        .await
        .unwrap();
    let old_rv = first.metadata.resource_version.unwrap();
    pods.create(&PostParams::default(), &pod("new"))
        .await
        .unwrap();

    // Two ticks of the compactor: the second compacts at the first one's revision.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut stream = pods
        .watch(&WatchParams::default(), &old_rv)
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event")
        .expect("open")
        .expect("decodes");
    match ev {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410, "{e:?}");
            assert_eq!(e.reason, "Expired", "{e:?}");
        }
        other => panic!("expected 410 Expired, got {other:?}"),
    }
    // A list then works, and a watch from its revision is served.
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version;
    assert!(
        pods.watch(&WatchParams::default(), &rv.unwrap())
            .await
            .is_ok()
    );
    server.shutdown().await;
}
