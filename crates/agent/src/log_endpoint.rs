//! The agent's log endpoint: what the kubelet serves on its port 10250 for `pods/log`, over
//! HTTPS with a bearer token. The API server proxies `kubectl logs` here, to the node the
//! pod runs on, as the Kubernetes API server proxies to a kubelet.
//!
//! `GET /containerLogs/{namespace}/{pod}/{container}` with the query of `pods/log`
//! (`follow`, `previous`, `tailLines`, `sinceSeconds`, `sinceTime`, `timestamps`,
//! `limitBytes`) answers 200 with the log as `text/plain`, streamed until it ends (or, with
//! `follow`, until the container has exited and its log is drained). A request the log
//! cannot serve answers 400 or 404 with the reason as plain text; one without the token,
//! 401.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Pod;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::logs::{LogError, LogRequest, LogServer};

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// What the endpoint needs.
pub struct Endpoint {
    /// Serves the log files.
    pub logs: LogServer,
    /// Reads the pod a request names.
    pub client: kube::Client,
    /// The bearer token a request must carry.
    pub token: String,
}

/// Accepts connections on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    endpoint: Endpoint,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let endpoint = Arc::new(endpoint);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "log endpoint: accepting failed; going on");
                    continue;
                }
            },
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (acceptor, endpoint) = (acceptor.clone(), endpoint.clone());
        conns.spawn(async move { connection(tcp, peer, acceptor, endpoint).await });
    }
    conns.shutdown().await;
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    endpoint: Arc<Endpoint>,
) {
    let Ok(stream) = acceptor.accept(tcp).await else {
        tracing::debug!(%peer, "log endpoint: TLS handshake failed");
        return;
    };
    let service = hyper::service::service_fn(move |req| {
        let endpoint = endpoint.clone();
        async move { Ok::<_, Infallible>(answer(&endpoint, req).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "log endpoint: connection ended with an error");
    }
}

fn text(code: StatusCode, message: &str) -> Response<Body> {
    let body = Full::new(Bytes::from(message.to_string()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = code;
    resp
}

async fn answer(endpoint: &Endpoint, req: Request<Incoming>) -> Response<Body> {
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| same(t.trim().as_bytes(), endpoint.token.as_bytes())) {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let path: Vec<&str> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let ["containerLogs", ns, pod, container] = path.as_slice() else {
        return text(
            StatusCode::NOT_FOUND,
            "the log endpoint serves /containerLogs/NS/POD/C",
        );
    };
    let opts = match options(req.uri().query().unwrap_or(""), container) {
        Ok(o) => o,
        Err(m) => return text(StatusCode::BAD_REQUEST, &m),
    };
    let pods: kube::Api<Pod> = kube::Api::namespaced(endpoint.client.clone(), ns);
    let pod = match pods.get_opt(pod).await {
        Ok(Some(p)) => p,
        Ok(None) => return text(StatusCode::NOT_FOUND, &format!("pod {ns}/{pod} not found")),
        Err(e) => return text(StatusCode::BAD_GATEWAY, &crate::chain(&e)),
    };
    match endpoint.logs.logs(&pod, &opts).await {
        Ok(stream) => {
            let frames = stream.map(|r| r.map(Frame::data));
            let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain"),
            );
            resp
        }
        Err(LogError::BadRequest(m)) => text(StatusCode::BAD_REQUEST, &m),
        Err(LogError::NotFound(m)) => text(StatusCode::NOT_FOUND, &m),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &crate::chain(&e)),
    }
}

/// The `pods/log` query, read as the kubelet reads it.
pub fn options(query: &str, container: &str) -> Result<LogRequest, String> {
    let mut o = LogRequest {
        container: Some(container.to_string()),
        ..LogRequest::default()
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let int = || {
            v.parse::<i64>()
                .map_err(|_| format!("{k}: {v:?} is not an integer"))
        };
        match k.as_ref() {
            "follow" => o.follow = v == "true",
            "previous" => o.previous = v == "true",
            "timestamps" => o.timestamps = v == "true",
            "tailLines" => o.tail_lines = Some(int()?),
            "sinceSeconds" => o.since_seconds = Some(int()?),
            "limitBytes" => o.limit_bytes = Some(int()?),
            "sinceTime" => {
                let t = v
                    .parse()
                    .map_err(|_| format!("sinceTime: {v:?} is not RFC 3339"))?;
                o.since_time = Some(t);
            }
            _ => {}
        }
    }
    Ok(o)
}

// Compares without stopping at the first difference, so that timing says nothing about how
// much of a guessed token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_query_of_pods_log() {
        let o = options(
            "follow=true&tailLines=3&sinceTime=2024-01-01T00:00:00Z&timestamps=true&limitBytes=9",
            "app",
        )
        .unwrap();
        assert_eq!(o.container.as_deref(), Some("app"));
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!((o.tail_lines, o.limit_bytes), (Some(3), Some(9)));
        assert_eq!(o.since_time.unwrap().as_second(), 1_704_067_200);
        assert!(
            options("tailLines=x", "app")
                .unwrap_err()
                .contains("tailLines")
        );
    }
}
