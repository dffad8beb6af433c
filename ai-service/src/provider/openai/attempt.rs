//! One attempt: send the request, classify the response.
//!
//! Contract: [`send`] posts the (prepared) body once and returns either a body to stream, the
//! whole answer of a server that ignored `stream: true`, or a [`Failure`] that says whether a
//! retry may help: 401/403 are fatal (`upstream_auth`), 429 is transient
//! (`upstream_rate_limited`, with the server's `Retry-After`), 5xx and connection failures are
//! transient, any other status is fatal. Error bodies are read only up to a small bound and
//! reported through `redact.rs`. Whether and when to retry is `generation.rs`'s decision.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use shared_proto::ErrorCode;
use tokio::time::{timeout_at, Instant};
use tracing::Instrument as _;

use super::redact::{describe_reqwest, upstream_message};
use super::stream::{decode_completion, Failure, Step};
use super::Inner;

/// How much of an error body we read to find the upstream's message.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;
/// How much of a non-streaming (JSON) answer we accept from a server that ignored `stream`.
const MAX_JSON_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A successful response: a body to stream, or (non-streaming server) the whole answer.
pub(super) enum Answer {
    Sse(Response),
    Steps(Vec<Step>),
}

/// One attempt: sends the request and classifies the response. `deadline` bounds the whole
/// attempt up to a streaming body (it is the first-token deadline).
///
/// Each attempt is a client span (a child of the generation's) whose `traceparent` goes with
/// the request, so the model server's own spans join the chat's trace; and each is timed
/// (`streamline_ai_upstream_request_seconds`, until the response headers or the failure).
pub(super) async fn send(
    inner: &Inner,
    body: &Bytes,
    deadline: Instant,
    attempt: u32,
) -> Result<Answer, Failure> {
    let span = tracing::info_span!(
        "upstream_request",
        otel.name = "POST chat/completions",
        otel.kind = "client",
        http.request.method = "POST",
        server.address = inner.endpoint.host_str().unwrap_or(""),
        attempt,
        http.response.status_code = tracing::field::Empty,
    );
    let mut request = inner
        .client
        .post(inner.endpoint.clone())
        .headers(inner.headers.clone())
        .body(body.clone());
    if let Some(tp) = service_kit::trace_context::traceparent_of_span(&span) {
        request = request.header(service_kit::trace_context::TRACEPARENT, tp);
    }
    let timer = crate::telemetry::UpstreamTimer::start();
    let sent = timeout_at(deadline, request.send())
        .instrument(span.clone())
        .await;
    drop(timer);
    if let Ok(Ok(response)) = &sent {
        span.record("http.response.status_code", response.status().as_u16());
    }
    let response = match sent {
        Err(_elapsed) => return Err(Failure::first_token_timeout(&inner.cfg)),
        Ok(Err(e)) => {
            return Err(Failure::transient(
                ErrorCode::UpstreamError,
                format!(
                    "request to the upstream failed: {}",
                    describe_reqwest(e, &inner.cfg)
                ),
            ))
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_success() {
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if is_json {
            return non_streaming(inner, response, deadline).await;
        }
        return Ok(Answer::Sse(response));
    }

    let retry_after = parse_retry_after(response.headers());
    let detail = match read_limited(response, deadline, MAX_ERROR_BODY_BYTES).await {
        // A truncated body is still worth a look: the message usually comes first.
        Ok((body, _truncated)) => upstream_message(&body, &inner.cfg),
        Err(_) => String::new(),
    };
    let what = if detail.is_empty() {
        format!("the upstream answered {status}")
    } else {
        format!("the upstream answered {status}: {detail}")
    };
    let failure = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Failure::fatal(ErrorCode::UpstreamAuth, what)
        }
        StatusCode::TOO_MANY_REQUESTS => Failure {
            retry_after,
            ..Failure::transient(ErrorCode::UpstreamRateLimited, what)
        },
        s if s.is_server_error() => Failure::transient(ErrorCode::UpstreamError, what),
        _ => Failure::fatal(ErrorCode::UpstreamError, what),
    };
    Err(failure)
}

/// A server that ignored `stream: true` and answered with one JSON completion.
async fn non_streaming(
    inner: &Inner,
    response: Response,
    deadline: Instant,
) -> Result<Answer, Failure> {
    let (body, truncated) = read_limited(response, deadline, MAX_JSON_BODY_BYTES).await?;
    if truncated {
        return Err(Failure::fatal(
            ErrorCode::UpstreamError,
            format!("the upstream's answer is larger than {MAX_JSON_BODY_BYTES} bytes"),
        ));
    }
    decode_completion(&body, &inner.cfg).map(Answer::Steps)
}

/// Reads a whole (small) body, bounded in size and time. Returns the first `limit` bytes and
/// whether there was more.
async fn read_limited(
    mut response: Response,
    deadline: Instant,
    limit: usize,
) -> Result<(Vec<u8>, bool), Failure> {
    let mut body = Vec::new();
    loop {
        match timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => {
                let room = limit - body.len();
                if bytes.len() > room {
                    body.extend_from_slice(&bytes[..room]);
                    return Ok((body, true));
                }
                body.extend_from_slice(&bytes);
            }
            Ok(Ok(None)) => return Ok((body, false)),
            Ok(Err(_)) => {
                return Err(Failure::transient(
                    ErrorCode::UpstreamError,
                    "connection to the upstream lost while reading its answer",
                ))
            }
            Err(_elapsed) => {
                return Err(Failure::fatal(
                    ErrorCode::UpstreamTimeout,
                    "the upstream's answer did not arrive in time",
                ))
            }
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and falls back to back-off).
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = value.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}
#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("-1"));
        assert_eq!(parse_retry_after(&h), None);
    }
}
