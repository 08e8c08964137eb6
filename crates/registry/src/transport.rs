//! One registry request, done safely: the scheme for the host, the credentials it may carry,
//! redirects followed by hand, the authentication challenge answered, 429 retried, and bodies
//! read incrementally up to a limit.
//!
//! Redirects are followed here rather than by reqwest so that `Authorization` is attached
//! only while the URL is on the origin (scheme, host and port) the request started at: a blob
//! redirected to a storage host, or to anyone else, never receives the registry credentials,
//! and a `401` from such a host is reported, never answered.

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use oci::Credentials;
use reqwest::{Response, Url};
use serde::Deserialize;
use tracing::{debug, warn};

use crate::challenge::{self, Challenge};
use crate::client::{Ctx, Endpoint, Inner, Token};
use crate::error::{RegistryError, parse_error_body};

/// Redirects followed per request.
pub const MAX_REDIRECTS: u32 = 5;
/// Retries of a request the registry answered with 429.
pub const MAX_429_RETRIES: u32 = 3;
/// The longest `Retry-After` honoured; a registry asking for more gets its 429 reported.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Limits on bodies read whole.
pub const TOKEN_LIMIT: u64 = 1 << 20;
pub const ERROR_BODY_LIMIT: u64 = 64 << 10;

impl Inner {
    /// Sends a request to `path` on `ep` for repository `repo` and returns the first 2xx
    /// answer, or the registry's refusal as an error.
    pub(crate) async fn send(
        &self,
        ctx: &Ctx<'_>,
        ep: &Endpoint,
        repo: &str,
        method: Method,
        path: &str,
        headers: HeaderMap,
    ) -> Result<Response, RegistryError> {
        let url = ep.url(ctx, path)?;
        let mut challenged = false;
        let mut retries = 0;
        loop {
            let auth = self.auth_header(ep, repo);
            let sent_auth = auth.is_some();
            let (resp, at_origin) = self
                .follow(ctx, method.clone(), url.clone(), &headers, auth)
                .await?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            if status == StatusCode::UNAUTHORIZED && at_origin && !challenged {
                challenged = true;
                if self
                    .answer_challenge(ctx, ep, repo, &resp, sent_auth)
                    .await?
                {
                    continue;
                }
            }
            if status == StatusCode::TOO_MANY_REQUESTS
                && retries < MAX_429_RETRIES
                && let Some(wait) = retry_after(&resp, retries)
            {
                retries += 1;
                debug!(url = %url, ?wait, retries, "registry answered 429, retrying");
                drop(resp);
                tokio::time::sleep(wait).await;
                continue;
            }
            // A refusal from where a redirect led must not read as the registry's own.
            let redirected_to = (!at_origin).then(|| host_port(resp.url()));
            return Err(status_error(ctx, resp, retries, redirected_to).await);
        }
    }

    /// Sends one request, following redirects; returns the final answer and whether it came
    /// from the origin the request started at.
    async fn follow(
        &self,
        ctx: &Ctx<'_>,
        method: Method,
        mut url: Url,
        headers: &HeaderMap,
        auth: Option<HeaderValue>,
    ) -> Result<(Response, bool), RegistryError> {
        let origin = url.origin();
        let mut hops = 0;
        loop {
            let at_origin = url.origin() == origin;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if at_origin && let Some(auth) = &auth {
                request = request.header(AUTHORIZATION, auth.clone());
            }
            let resp = request
                .send()
                .await
                .map_err(|source| transport(ctx, &url, source))?;
            if !resp.status().is_redirection() {
                return Ok((resp, at_origin));
            }
            let Some(location) = resp.headers().get(LOCATION) else {
                return Ok((resp, at_origin));
            };
            let bad = |why| RegistryError::BadRedirect {
                step: ctx.step,
                reference: ctx.reference.to_string(),
                from: url.to_string(),
                location: String::from_utf8_lossy(location.as_bytes()).into_owned(),
                why,
            };
            if hops == MAX_REDIRECTS {
                return Err(RegistryError::TooManyRedirects {
                    step: ctx.step,
                    reference: ctx.reference.to_string(),
                    limit: MAX_REDIRECTS,
                    url: url.to_string(),
                });
            }
            let text = location.to_str().map_err(|_| bad("not text"))?;
            let next = url.join(text).map_err(|_| bad("not a URL"))?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(bad("only http and https are followed"));
            }
            if url.scheme() == "https"
                && next.scheme() == "http"
                && !self.opts.plain_http(&host_port(&next))
            {
                return Err(bad("it downgrades https to plain http"));
            }
            debug!(from = %url, to = %next, status = resp.status().as_u16(), "following redirect");
            hops += 1;
            url = next;
        }
    }

    /// What to send as `Authorization` to `ep` for `repo` before any challenge: a cached
    /// token, or Basic credentials once the host has asked for Basic.
    fn auth_header(&self, ep: &Endpoint, repo: &str) -> Option<HeaderValue> {
        let key = (ep.host.clone(), repo.to_string());
        if let Some(token) = self.lock_tokens().get(&key)
            && token.expires > Instant::now()
        {
            return header_value(&format!("Bearer {}", token.value));
        }
        if self.lock_basic().contains(&ep.host) {
            return basic_header(ep.credentials.as_ref()?);
        }
        None
    }

    /// Reacts to a 401 from the origin; `Ok(true)` when the request is worth sending again.
    async fn answer_challenge(
        &self,
        ctx: &Ctx<'_>,
        ep: &Endpoint,
        repo: &str,
        resp: &Response,
        sent_auth: bool,
    ) -> Result<bool, RegistryError> {
        let mut challenges: Vec<Challenge> = Vec::new();
        for value in resp.headers().get_all(WWW_AUTHENTICATE) {
            let text = String::from_utf8_lossy(value.as_bytes());
            match challenge::parse(&text) {
                Some(found) => challenges.extend(found),
                None => warn!(header = %text, "ignoring a malformed WWW-Authenticate header"),
            }
        }

        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            self.lock_tokens()
                .remove(&(ep.host.clone(), repo.to_string()));
            let token = self.fetch_token(ctx, ep, repo, bearer).await?;
            self.lock_tokens()
                .insert((ep.host.clone(), repo.to_string()), token);
            return Ok(true);
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let Some(Credentials::Basic { .. }) = &ep.credentials else {
                debug!(
                    host = %ep.host,
                    "registry asks for basic auth and there are no credentials"
                );
                return Ok(false);
            };
            let first_time = self.lock_basic().insert(ep.host.clone());
            // Credentials already sent and refused: sending them again would not help.
            return Ok(first_time || !sent_auth);
        }
        Ok(false)
    }

    /// Asks the challenge's token service for a pull token for `repo`.
    async fn fetch_token(
        &self,
        ctx: &Ctx<'_>,
        ep: &Endpoint,
        repo: &str,
        challenge: &Challenge,
    ) -> Result<Token, RegistryError> {
        let ctx = Ctx {
            step: "get token for",
            reference: ctx.reference,
        };
        let header = || format!("Bearer {:?}", challenge.params);
        let bad_challenge = |why: &str| RegistryError::Challenge {
            step: ctx.step,
            reference: ctx.reference.to_string(),
            header: header(),
            why: why.to_string(),
        };
        let realm = challenge
            .param("realm")
            .ok_or_else(|| bad_challenge("it names no realm"))?;
        let mut url = Url::parse(realm).map_err(|_| bad_challenge("its realm is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_challenge("its realm is neither http nor https"));
        }
        let token_error = |why: String| RegistryError::Token {
            step: ctx.step,
            reference: ctx.reference.to_string(),
            realm: realm.to_string(),
            why,
        };
        if url.scheme() == "http"
            && ep.credentials.is_some()
            && !self.opts.plain_http(&host_port(&url))
        {
            return Err(token_error(
                "refusing to send credentials to a token service over plain http".into(),
            ));
        }
        let default_scope = format!("repository:{repo}:pull");
        let scope = challenge.param("scope").unwrap_or(&default_scope);
        let service = challenge.param("service");

        let request = match &ep.credentials {
            Some(Credentials::IdentityToken { token }) => {
                // The OAuth2 refresh-token grant docker uses for `identitytoken`.
                let mut form = Url::parse("http://form.invalid/").expect("static URL");
                {
                    let mut pairs = form.query_pairs_mut();
                    pairs.append_pair("grant_type", "refresh_token");
                    pairs.append_pair("refresh_token", token);
                    pairs.append_pair("client_id", "hoist");
                    pairs.append_pair("scope", scope);
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                }
                self.http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.query().unwrap_or_default().to_string())
            }
            other => {
                {
                    let mut pairs = url.query_pairs_mut();
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    pairs.append_pair("scope", scope);
                }
                let mut request = self.http.get(url.clone());
                if let Some(auth) = other.as_ref().and_then(basic_header) {
                    request = request.header(AUTHORIZATION, auth);
                }
                request
            }
        };
        debug!(realm, scope, "requesting a registry token");
        let resp = request
            .send()
            .await
            .map_err(|source| transport(&ctx, &url, source))?;
        if !resp.status().is_success() {
            return Err(status_error(&ctx, resp, 0, None).await);
        }
        let body = read_limited(&ctx, resp, TOKEN_LIMIT, "token response").await?;

        #[derive(Deserialize)]
        struct TokenBody {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let parsed: TokenBody = serde_json::from_slice(&body)
            .map_err(|e| token_error(format!("its answer is not token JSON ({e})")))?;
        let value = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| token_error("its answer holds no token".into()))?;
        if header_value(&format!("Bearer {value}")).is_none() {
            return Err(token_error("its token is not a valid header value".into()));
        }
        // The distribution spec's default lifetime is 60 s; renew a little early.
        let lifetime = parsed.expires_in.unwrap_or(60).max(10) - 5;
        Ok(Token {
            value,
            expires: Instant::now() + Duration::from_secs(lifetime),
        })
    }
}

/// Reads a whole body, refusing it as soon as it exceeds `limit` bytes.
pub(crate) async fn read_limited(
    ctx: &Ctx<'_>,
    mut resp: Response,
    limit: u64,
    what: &'static str,
) -> Result<Bytes, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        step: ctx.step,
        reference: ctx.reference.to_string(),
        what,
        limit,
    };
    let announced = resp.content_length();
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let url = resp.url().clone();
    let mut buf = BytesMut::with_capacity(announced.unwrap_or(0).min(limit) as usize);
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|source| transport(ctx, &url, source))?
    {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The error for a non-2xx answer, with the registry's error body when it sent one.
pub(crate) async fn status_error(
    ctx: &Ctx<'_>,
    resp: Response,
    retries: u32,
    redirected_to: Option<String>,
) -> RegistryError {
    let status = resp.status().as_u16();
    let (body, body_too_large) = match read_limited(ctx, resp, ERROR_BODY_LIMIT, "error body").await
    {
        Ok(body) => (body, false),
        Err(RegistryError::TooLarge { .. }) => (Bytes::new(), true),
        Err(e) => {
            debug!(error = %e, "could not read an error body");
            (Bytes::new(), false)
        }
    };
    let (code, message) = parse_error_body(&body);
    RegistryError::Status {
        step: ctx.step,
        reference: ctx.reference.to_string(),
        status,
        code,
        message,
        body_too_large,
        retries,
        redirected_to,
    }
}

pub(crate) fn transport(ctx: &Ctx<'_>, url: &Url, source: reqwest::Error) -> RegistryError {
    RegistryError::Transport {
        step: ctx.step,
        reference: ctx.reference.to_string(),
        url: url.to_string(),
        source,
    }
}

/// How long to wait before retrying a 429: `Retry-After` in seconds, else 1, 2, 4 s; `None`
/// when the registry asks for longer than we are willing to wait.
fn retry_after(resp: &Response, retries: u32) -> Option<Duration> {
    let asked = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // An HTTP-date Retry-After is not parsed: it is treated as absent, costing a retry made
    // possibly earlier than the registry wished.
    let wait = asked.map_or(Duration::from_secs(1 << retries), Duration::from_secs);
    (wait <= MAX_RETRY_AFTER).then_some(wait)
}

fn basic_header(credentials: &Credentials) -> Option<HeaderValue> {
    let Credentials::Basic { username, password } = credentials else {
        return None;
    };
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut value = header_value(&format!("Basic {encoded}"))?;
    value.set_sensitive(true);
    Some(value)
}

fn header_value(text: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `host:port` of a URL, the port explicit.
pub(crate) fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}
