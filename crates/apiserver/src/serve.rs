//! The connection side: the TLS accept loop, HTTP/1.1 and HTTP/2 on each connection, bearer
//! token checks, one tracing span per request, and reading the request body before it is
//! routed.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::api::Api;
use crate::error::ApiError;
use crate::http::{Body, Req, error_response};

/// The largest request body read (the Kubernetes API server's limit is 3 MiB as well).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Accepts connections until `stop` turns true, then drops every open connection.
pub async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    api: Arc<Api>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed; going on");
                continue;
            }
        };
        let tls = tls.clone();
        let api = api.clone();
        conns.spawn(async move { serve_connection(tcp, peer, tls, api).await });
    }
    conns.shutdown().await;
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: TlsAcceptor,
    api: Arc<Api>,
) {
    let _ = tcp.set_nodelay(true);
    let stream = match tls.accept(tcp).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
    };
    let service = hyper::service::service_fn(move |req| {
        let api = api.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(api, req).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

async fn handle(api: Arc<Api>, req: Request<Incoming>) -> Response<Body> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        status = tracing::field::Empty,
    );
    let resp = async {
        match read(&api, req).await {
            Ok(req) => crate::router::route(&api, req)
                .await
                .unwrap_or_else(|e| error_response(&e)),
            Err(e) => error_response(&e),
        }
    }
    .instrument(span.clone())
    .await;
    span.record("status", resp.status().as_u16());
    tracing::debug!(parent: &span, "answered");
    resp
}

/// Checks the token and reads the body.
async fn read(api: &Api, req: Request<Incoming>) -> Result<Req, ApiError> {
    let authorized = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.trim().as_bytes(), api.token.as_bytes()));
    if !authorized {
        return Err(ApiError::unauthorized());
    }

    let (parts, body) = req.into_parts();
    let body = http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    Ok(Req::new(parts, body))
}

// Compares without stopping at the first difference, so the time taken says nothing about
// how much of a guessed token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
