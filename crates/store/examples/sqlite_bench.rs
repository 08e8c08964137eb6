//! Rough throughput of the SQLite backend, for the API server's target of 1,000 pod creates a
//! second: sequential and concurrent creates of pod-sized values, gets, a full list and a
//! paginated one, a watch catching up on the whole history, and a live watch keeping up with
//! a writer. Prints numbers; asserts nothing.
//!
//! ```text
//! cargo run --release -p hoist-store --example sqlite_bench [-- COUNT]
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use hoist_store::{Backend, SqliteBackend};

/// A pod object of about the size `kubectl create` sends, with the API server's defaults.
fn pod(name: &str) -> Bytes {
    let spec = r#""spec":{"containers":[{"name":"app","image":"docker.io/library/busybox:1.36",
"command":["sh","-c","echo hello; sleep 3600"],"resources":{},"terminationMessagePath":
"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],
"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst",
"serviceAccountName":"default","serviceAccount":"default","securityContext":{},
"schedulerName":"default-scheduler","tolerations":[{"key":"node.kubernetes.io/not-ready",
"operator":"Exists","effect":"NoExecute","tolerationSeconds":300},{"key":
"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute",
"tolerationSeconds":300}],"priority":0,"enableServiceLinks":true,"preemptionPolicy":
"PreemptLowerPriority"},"status":{"phase":"Pending","qosClass":"BestEffort"}"#;
    let meta = format!(
        r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"default",
"uid":"6f1c7a2e-0b4d-4c55-9a57-{name:0>12}","creationTimestamp":"2025-01-01T00:00:00Z",
"labels":{{"app":"bench"}}}},"#
    );
    Bytes::from(meta + spec + "}")
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn report(what: &str, count: usize, elapsed: Duration) {
    let each = elapsed.as_secs_f64() * 1e6 / count as f64;
    println!(
        "{what:<44} {count:>7} in {elapsed:>10.2?}: {:>9.0}/s, {each:>7.1} µs each",
        per_second(count, elapsed)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args().nth(1).map_or(Ok(20_000), |n| n.parse())?;
    let dir = tempfile::tempdir()?;
    let store = std::sync::Arc::new(SqliteBackend::open(dir.path().join("store.db"))?);
    println!(
        "value size {} bytes, file in {}",
        pod("web-00000").len(),
        dir.path().display()
    );

    // Sequential creates: one client, one request at a time.
    let started = Instant::now();
    for i in 0..count {
        let name = format!("seq-{i:06}");
        store
            .create(&format!("/pods/default/{name}"), pod(&name))
            .await?;
    }
    report("create, one at a time", count, started.elapsed());

    // Concurrent creates: 16 clients at once, as a burst of kubectl calls would be.
    let started = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..count / 16 {
                    let name = format!("par-{t:02}-{i:06}");
                    store
                        .create(&format!("/pods/burst/{name}"), pod(&name))
                        .await?;
                }
                Ok::<_, hoist_store::StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    report(
        "create, 16 concurrent clients",
        count / 16 * 16,
        started.elapsed(),
    );

    // Updates with a compare-and-swap, as status patches are.
    let started = Instant::now();
    for i in 0..count / 4 {
        let key = format!("/pods/default/seq-{i:06}");
        let current = store.get(&key).await?.ok_or("a created pod is missing")?;
        store
            .update(&key, current.value, Some(current.mod_revision))
            .await?;
    }
    report(
        "get + update at the expected revision",
        count / 4,
        started.elapsed(),
    );

    let started = Instant::now();
    for i in 0..count {
        store.get(&format!("/pods/default/seq-{i:06}")).await?;
    }
    report("get", count, started.elapsed());

    let started = Instant::now();
    let page = store.list("/pods/default/", None, 0, None).await?;
    report(
        "list of every pod in one page (items)",
        page.items.len(),
        started.elapsed(),
    );

    let started = Instant::now();
    let (mut items, mut after, at) = (0, None::<String>, page.revision);
    loop {
        let page = store
            .list("/pods/default/", after.as_deref(), 500, Some(at))
            .await?;
        items += page.items.len();
        after = page.items.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
    }
    report(
        "list in pages of 500 at one revision (items)",
        items,
        started.elapsed(),
    );

    // A watch from 0 reads the whole history from the table.
    let history = store.current_revision().await?;
    let started = Instant::now();
    let mut watch = store.watch("/pods/", 0).await?;
    let mut seen = 0;
    while seen < history {
        match watch.next().await {
            Some(event) => seen = event?.revision(),
            None => return Err("the watch ended".into()),
        }
    }
    report(
        "watch from 0, catching up (events)",
        usize::try_from(seen)?,
        started.elapsed(),
    );

    // A live watch beside a writer: how long until it has every event.
    let live_writes = count / 2;
    let reader = tokio::spawn(async move {
        let target = history + i64::try_from(live_writes).unwrap_or(i64::MAX);
        let mut last = history;
        while last < target {
            match watch.next().await {
                Some(Ok(event)) => last = event.revision(),
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the watch ended".to_owned()),
            }
        }
        Ok(Instant::now())
    });
    let started = Instant::now();
    for i in 0..live_writes {
        let name = format!("live-{i:06}");
        store
            .create(&format!("/pods/live/{name}"), pod(&name))
            .await?;
    }
    let written = started.elapsed();
    let caught_up = reader.await??.duration_since(started);
    report("create beside a live watch", live_writes, written);
    report("  live watch has them all (events)", live_writes, caught_up);

    let size = std::fs::metadata(dir.path().join("store.db"))?.len()
        + std::fs::metadata(dir.path().join("store.db-wal")).map_or(0, |m| m.len());
    println!("file and WAL: {} MiB", size / (1 << 20));
    Ok(())
}
