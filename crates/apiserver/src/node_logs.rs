//! `pods/log` proxied to the node the pod runs on, as the Kubernetes API server proxies to
//! the kubelet: the node's `InternalIP` and `status.daemonEndpoints.kubeletEndpoint.Port` say
//! where its agent's log endpoint listens; the request goes there over HTTPS, verified
//! against this server's CA and carrying its token, and the answer streams back unchanged.
//!
//! The agent's endpoint presents a certificate of the same CA, which holds while the agent
//! runs in this process or on a machine the CA issued a certificate for; issuing node
//! certificates to agents on other machines is not built yet.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use store::Backend;

use crate::logs::{LogError, LogOptions, LogSource, LogStream};
use crate::resources;

/// Proxies logs to node agents.
pub struct NodeLogs {
    store: Arc<dyn Backend>,
    http: reqwest::Client,
    token: String,
}

impl NodeLogs {
    /// A proxy that trusts only `ca_pem` and presents `token`.
    pub fn new(store: Arc<dyn Backend>, ca_pem: &str, token: &str) -> Result<Self, String> {
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
            .map_err(|e| format!("reading the CA certificate: {e}"))?;
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("building the log proxy's client: {e}"))?;
        Ok(NodeLogs {
            store,
            http,
            token: token.to_string(),
        })
    }

    // Where the node's agent serves logs: `https://IP:PORT`.
    async fn endpoint(&self, node: &str) -> Result<String, LogError> {
        let nodes = resources::nodes();
        let unavailable = |why: String| LogError::Unavailable(format!("node {node:?}: {why}"));
        let kv = self
            .store
            .get(&nodes.key(None, node))
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .ok_or_else(|| unavailable("no such node".into()))?;
        let obj: Value =
            serde_json::from_slice(&kv.value).map_err(|e| unavailable(e.to_string()))?;
        let port = obj
            .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
            .and_then(Value::as_i64)
            .filter(|p| *p > 0)
            .ok_or_else(|| unavailable("its agent reports no log endpoint".into()))?;
        let ip = obj
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
            .and_then(|x| x["address"].as_str())
            .ok_or_else(|| unavailable("it reports no InternalIP address".into()))?;
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        Ok(format!("https://{host}:{port}"))
    }
}

impl LogSource for NodeLogs {
    fn logs<'a>(
        &'a self,
        pod: &'a Pod,
        o: &'a LogOptions,
    ) -> BoxFuture<'a, Result<LogStream, LogError>> {
        Box::pin(async move {
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or("");
            let base = self.endpoint(node).await?;
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let name = pod.metadata.name.as_deref().unwrap_or("");
            let mut query: Vec<(&str, String)> = Vec::new();
            for (k, on) in [
                ("follow", o.follow),
                ("previous", o.previous),
                ("timestamps", o.timestamps),
            ] {
                if on {
                    query.push((k, "true".into()));
                }
            }
            for (k, v) in [
                ("tailLines", o.tail_lines),
                ("sinceSeconds", o.since_seconds),
                ("limitBytes", o.limit_bytes),
            ] {
                if let Some(v) = v {
                    query.push((k, v.to_string()));
                }
            }
            if let Some(t) = &o.since_time {
                query.push(("sinceTime", t.clone()));
            }
            let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query)
                .finish();
            let url = format!("{base}/containerLogs/{ns}/{name}/{}?{query}", o.container);
            let resp = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .map_err(|e| {
                    LogError::Unavailable(format!("reaching node {node:?} for logs: {e}"))
                })?;
            let status = resp.status();
            if status.is_success() {
                let stream = resp
                    .bytes_stream()
                    .map(|r| r.map_err(std::io::Error::other));
                return Ok(stream.boxed());
            }
            let message = resp.text().await.unwrap_or_default();
            Err(match status.as_u16() {
                400 => LogError::BadRequest(message),
                404 => LogError::NotFound(message),
                code => LogError::Unavailable(format!("node {node:?} answered {code}: {message}")),
            })
        })
    }
}
