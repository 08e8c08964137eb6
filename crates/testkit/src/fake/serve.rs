//! The fake registry's HTTP side: an accept loop on a current-thread runtime, one hyper
//! HTTP/1 connection per client, and a router that applies the switched-on faults before
//! serving what [`Shared`] holds.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, Incoming};
use tokio::sync::{mpsc, oneshot};

use super::{Fault, OVERSIZE, SeenRequest, Shared};

type Resp = Response<UnsyncBoxBody<Bytes, Infallible>>;

/// Serves until `stop` fires (or its sender is dropped), then drops every connection,
/// stalled ones included.
pub(super) fn run(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    stop: oneshot::Receiver<()>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("fake registry runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        tokio::pin!(stop);
        loop {
            let stream = tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "fake registry: accept failed");
                        continue;
                    }
                },
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, req)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                // A client that hangs up mid-body is normal in fault tests.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    rt.shutdown_background();
}

/// A body fed from a channel: chunked unless the response sets Content-Length, and open
/// for as long as its sender lives.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

fn full(bytes: impl Into<Bytes>) -> UnsyncBoxBody<Bytes, Infallible> {
    http_body_util::Full::new(bytes.into()).boxed_unsync()
}

fn empty() -> UnsyncBoxBody<Bytes, Infallible> {
    http_body_util::Empty::new().boxed_unsync()
}

/// `prefix` and then `OVERSIZE` bytes of `fill`, streamed chunk by chunk without a length;
/// `sent` counts the bytes handed to the connection.
fn oversize(
    sent: &Arc<AtomicUsize>,
    prefix: Bytes,
    fill: u8,
    suffix: &'static [u8],
) -> UnsyncBoxBody<Bytes, Infallible> {
    let (tx, rx) = mpsc::channel(4);
    let sent = sent.clone();
    tokio::spawn(async move {
        let chunk = Bytes::from(vec![fill; 64 << 10]);
        let n = prefix.len();
        if tx.send(prefix).await.is_err() {
            return;
        }
        sent.fetch_add(n, Ordering::Relaxed);
        for _ in 0..OVERSIZE / chunk.len() {
            if tx.send(chunk.clone()).await.is_err() {
                return;
            }
            sent.fetch_add(chunk.len(), Ordering::Relaxed);
        }
        let _ = tx.send(Bytes::from_static(suffix)).await;
    });
    ChannelBody(rx).boxed_unsync()
}

/// `head`, then nothing more until the server stops.
fn stalled(head: Bytes) -> UnsyncBoxBody<Bytes, Infallible> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        if tx.send(head).await.is_ok() {
            // Holding the sender keeps the body open; the runtime's shutdown ends this.
            std::future::pending::<()>().await;
        }
    });
    ChannelBody(rx).boxed_unsync()
}

fn status(code: StatusCode, body: UnsyncBoxBody<Bytes, Infallible>) -> Resp {
    let mut resp = Response::new(body);
    *resp.status_mut() = code;
    resp
}

fn set(resp: &mut Resp, name: header::HeaderName, value: &str) {
    resp.headers_mut()
        .insert(name, HeaderValue::from_str(value).expect("header value"));
}

fn error(code: StatusCode, err: &str, message: &str) -> Resp {
    let body = serde_json::json!({ "errors": [{ "code": err, "message": message }] });
    let mut resp = status(code, full(body.to_string()));
    set(&mut resp, header::CONTENT_TYPE, "application/json");
    resp
}

fn handle(shared: &Shared, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let mut state = shared.lock();
    state.seen.push(SeenRequest {
        method: method.to_string(),
        path: path.clone(),
        authorization: auth.map(str::to_string),
        range: range.clone(),
    });
    let faults = state.faults.clone();
    let has = |f: &dyn Fn(&Fault) -> bool| faults.iter().any(f);

    if has(&|f| *f == Fault::Unauthorized) {
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        );
        let h = resp.headers_mut();
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"fake\""),
        );
        let bearer = format!(
            "Bearer realm=\"http://{}/token\",service=\"fake\"",
            shared.host
        );
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&bearer).expect("header"),
        );
        return resp;
    }

    for fault in state.faults.iter_mut() {
        if let Fault::Status429 { path_prefix, times } = fault {
            if !path.starts_with(path_prefix.as_str()) || *times == Some(0) {
                continue;
            }
            if let Some(n) = times {
                *n -= 1;
            }
            let mut resp = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                "slow down",
            );
            set(&mut resp, header::RETRY_AFTER, "1");
            return resp;
        }
    }

    let bearer = faults.iter().find_map(|f| match f {
        Fault::RequireBearer { token, credentials } => Some((token.clone(), credentials.clone())),
        _ => None,
    });
    if path == "/token" {
        return token(shared, &faults, bearer, auth);
    }
    if !path.starts_with("/v2") {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "not a registry path");
    }

    let (repo, kind, reference) = match split_v2(&path) {
        Some(parts) => parts,
        None if path == "/v2" || path == "/v2/" => ("", "", ""),
        None => return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "unknown path"),
    };
    if let Some((token, _)) = &bearer
        && auth != Some(format!("Bearer {token}").as_str())
    {
        let scope = if repo.is_empty() {
            String::new()
        } else {
            format!(",scope=\"repository:{repo}:pull\"")
        };
        let challenge = format!(
            "Bearer realm=\"http://{}/token\",service=\"fake-registry\"{scope}",
            shared.host
        );
        let mut resp = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "token required");
        set(&mut resp, header::WWW_AUTHENTICATE, &challenge);
        return resp;
    }
    if repo.is_empty() {
        let mut resp = status(StatusCode::OK, full("{}"));
        set(&mut resp, header::CONTENT_TYPE, "application/json");
        set(
            &mut resp,
            header::HeaderName::from_static("docker-distribution-api-version"),
            "registry/2.0",
        );
        return resp;
    }
    if method != Method::GET && method != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "read-only fake",
        );
    }
    let head = method == Method::HEAD;

    let oversize_error = has(&|f| *f == Fault::OversizeError);
    if kind == "manifests" {
        let Some(m) = state
            .manifests
            .get(&(repo.to_string(), reference.to_string()))
            .cloned()
        else {
            if oversize_error {
                return status(
                    StatusCode::NOT_FOUND,
                    oversize(&shared.oversize_sent, Bytes::new(), b'e', b""),
                );
            }
            return error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            );
        };
        drop(state);
        return manifest(shared, m, head, &faults);
    }

    let Some(bytes) = state.blobs.get(reference).cloned() else {
        if oversize_error {
            return status(
                StatusCode::NOT_FOUND,
                oversize(&shared.oversize_sent, Bytes::new(), b'e', b""),
            );
        }
        return error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown");
    };
    drop(state);
    if oversize_error {
        return status(
            StatusCode::NOT_FOUND,
            oversize(&shared.oversize_sent, Bytes::new(), b'e', b""),
        );
    }
    if let Some(base) = faults.iter().find_map(|f| match f {
        Fault::RedirectBlobsTo(base) => Some(base),
        _ => None,
    }) {
        let mut resp = status(StatusCode::FOUND, empty());
        set(
            &mut resp,
            header::LOCATION,
            &format!("{base}/v2/{repo}/blobs/{reference}"),
        );
        return resp;
    }
    blob(reference, bytes, head, range.as_deref(), &faults)
}

/// Splits `/v2/<repo>/(manifests|blobs)/<reference>`; the repository may contain slashes.
fn split_v2(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("/v2/")?;
    for kind in ["manifests", "blobs"] {
        if let Some((repo, reference)) = rest.rsplit_once(&format!("/{kind}/"))
            && !repo.is_empty()
            && !reference.is_empty()
            && !reference.contains('/')
        {
            return Some((repo, kind, reference));
        }
    }
    None
}

fn token(
    shared: &Shared,
    faults: &[Fault],
    bearer: Option<(String, Option<(String, String)>)>,
    auth: Option<&str>,
) -> Resp {
    let token = match bearer {
        None => "anonymous-token".to_string(),
        Some((token, None)) => token,
        Some((token, Some((user, pass)))) => {
            let want = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            if auth != Some(format!("Basic {want}").as_str()) {
                return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "bad credentials");
            }
            token
        }
    };
    let body = if faults.contains(&Fault::OversizeToken) {
        oversize(
            &shared.oversize_sent,
            Bytes::from_static(b"{\"token\":\""),
            b'a',
            b"\"}",
        )
    } else {
        full(serde_json::json!({ "token": token, "access_token": token }).to_string())
    };
    let mut resp = status(StatusCode::OK, body);
    set(&mut resp, header::CONTENT_TYPE, "application/json");
    resp
}

fn manifest(shared: &Shared, m: super::StoredManifest, head: bool, faults: &[Fault]) -> Resp {
    let mut bytes = m.bytes.to_vec();
    if faults.contains(&Fault::ManifestDigestLie) {
        bytes.push(b' ');
    }
    let oversized = faults.contains(&Fault::OversizeManifest);
    let body = match (head, oversized) {
        (true, _) => empty(),
        (false, true) => oversize(&shared.oversize_sent, Bytes::from(bytes.clone()), b' ', b""),
        (false, false) => full(bytes.clone()),
    };
    let mut resp = status(StatusCode::OK, body);
    set(&mut resp, header::CONTENT_TYPE, &m.media_type);
    set(
        &mut resp,
        header::HeaderName::from_static("docker-content-digest"),
        &m.digest,
    );
    if !oversized {
        set(&mut resp, header::CONTENT_LENGTH, &bytes.len().to_string());
    }
    resp
}

/// Parses `bytes=START-` or `bytes=START-END` against a body of `len` bytes.
fn parse_range(range: &str, len: usize) -> Option<(usize, usize)> {
    let spec = range.strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start: usize = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => len.checked_sub(1)?,
        e => e.parse::<usize>().ok()?.min(len.checked_sub(1)?),
    };
    (start <= end).then_some((start, end))
}

fn blob(digest: &str, bytes: Bytes, head: bool, range: Option<&str>, faults: &[Fault]) -> Resp {
    let mut bytes = bytes.to_vec();
    if faults.contains(&Fault::BlobBytesLie(digest.to_string()))
        && let Some(last) = bytes.last_mut()
    {
        *last ^= 0xff;
    }
    let total = bytes.len();
    let (code, start, end) = match range {
        None => (StatusCode::OK, 0, total),
        Some(r) => match parse_range(r, total) {
            Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end + 1),
            None => {
                let mut resp = status(StatusCode::RANGE_NOT_SATISFIABLE, empty());
                set(
                    &mut resp,
                    header::CONTENT_RANGE,
                    &format!("bytes */{total}"),
                );
                return resp;
            }
        },
    };
    let slice = Bytes::from(bytes).slice(start..end);
    let content_range =
        (code == StatusCode::PARTIAL_CONTENT).then(|| format!("bytes {start}-{}/{total}", end - 1));

    let stall = faults.iter().find_map(|f| match f {
        Fault::StallAfter(n) if slice.len() > *n => Some(*n),
        _ => None,
    });
    let len = slice.len();
    let body = match (head, stall) {
        (true, _) => empty(),
        (false, Some(n)) => stalled(slice.slice(..n)),
        (false, None) => full(slice),
    };
    let mut resp = status(code, body);
    set(&mut resp, header::CONTENT_TYPE, "application/octet-stream");
    set(
        &mut resp,
        header::HeaderName::from_static("docker-content-digest"),
        digest,
    );
    set(&mut resp, header::CONTENT_LENGTH, &len.to_string());
    set(&mut resp, header::ACCEPT_RANGES, "bytes");
    if let Some(cr) = content_range {
        set(&mut resp, header::CONTENT_RANGE, &cr);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_registry_paths() {
        assert_eq!(
            split_v2("/v2/a/b/manifests/latest"),
            Some(("a/b", "manifests", "latest"))
        );
        assert_eq!(
            split_v2("/v2/r/blobs/sha256:ab"),
            Some(("r", "blobs", "sha256:ab"))
        );
        assert_eq!(split_v2("/v2/manifests/x"), None);
        assert_eq!(split_v2("/v2/"), None);
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("bytes=0-", 10), Some((0, 9)));
        assert_eq!(parse_range("bytes=4-6", 10), Some((4, 6)));
        assert_eq!(parse_range("bytes=4-100", 10), Some((4, 9)));
        assert_eq!(parse_range("bytes=10-", 10), None);
        assert_eq!(parse_range("bytes=7-3", 10), None);
        assert_eq!(parse_range("items=0-1", 10), None);
    }
}
