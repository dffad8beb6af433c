//! One middleware for both services' HTTP routes: the request's id ([`RequestId`], echoed as
//! `X-Request-Id`), its server span (parented on the caller's `traceparent`, so a request from
//! the gateway continues the chat's trace), and one access log line when it is answered:
//!
//! `method path status duration_ms request_id` (target `access`), where the path's query keeps
//! its names but not the values of secrets (`token`, `resume_token`, anything named `*token*`,
//! `*secret*`, `*key*`, `*password*`: `token=<redacted>`).
//!
//! Probe and scrape routes (`/healthz`, `/readyz`, `/metrics`) log at DEBUG and their spans are
//! not exported: a kubelet and a Prometheus ask every few seconds, and that is not traffic.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage as _;
use tracing::field::Empty;
use tracing::Instrument as _;

use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::trace_context::{remote_parent, set_parent, TRACEPARENT};

/// Routes that are asked by machines every few seconds.
const PROBE_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The middleware: `App::new().wrap(actix_web::middleware::from_fn(service_kit::access_log))`.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = RequestId::from_header(req.headers().get(X_REQUEST_ID).map(|v| v.as_bytes()));
    req.extensions_mut().insert(id.clone());
    let method = req.method().to_string();
    let path = redacted_path(req.path(), req.query_string());
    let probe = PROBE_PATHS.contains(&req.path());
    let span = if probe {
        tracing::debug_span!("http_request", request_id = %id, http.route = Empty)
    } else {
        tracing::info_span!(
            "http_request",
            otel.name = %format!("{method} {}", req.path()),
            otel.kind = "server",
            http.request.method = %method,
            url.path = %req.path(),
            http.route = Empty,
            http.response.status_code = Empty,
            otel.status_code = Empty,
            request_id = %id,
        )
    };
    let parent = remote_parent(req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok()));
    set_parent(&span, parent);
    let result = next.call(req).instrument(span.clone()).await;
    let mut res = match result {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            // Handlers' errors are already responses by now; only a failing service gets
            // here, and actix answers it after us (without the header).
            let status = e.as_response_error().status_code().as_u16();
            span.record("http.response.status_code", status);
            log_line(probe, &method, &path, status, started, &id);
            return Err(e);
        }
    };
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut()
            .insert(HeaderName::from_static(X_REQUEST_ID), v);
    }
    let status = res.status().as_u16();
    let route = res.request().match_pattern();
    if let Some(route) = &route {
        span.record("http.route", route.as_str());
        if !probe {
            span.record("otel.name", format!("{method} {route}"));
        }
    }
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    log_line(probe, &method, &path, status, started, &id);
    Ok(res)
}

/// The access log line.
fn log_line(probe: bool, method: &str, path: &str, status: u16, started: Instant, id: &RequestId) {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    if probe {
        tracing::debug!(target: "access", method, path, status, duration_ms, request_id = %id, "request");
    } else {
        tracing::info!(target: "access", method, path, status, duration_ms, request_id = %id, "request");
    }
}

/// Whether a query parameter's value is a secret.
fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["token", "secret", "key", "password"]
        .iter()
        .any(|s| n.contains(s))
}

/// `path?query` with the values of secret parameters replaced.
pub fn redacted_path(path: &str, query: &str) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(name) => format!("{name}=<redacted>"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_the_query_are_redacted() {
        assert_eq!(redacted_path("/ws", ""), "/ws");
        assert_eq!(
            redacted_path("/ws", "session_id=abc&resume_token=s3cr3t&token=eyJ.x.y"),
            "/ws?session_id=abc&resume_token=<redacted>&token=<redacted>"
        );
        assert_eq!(
            redacted_path("/x", "api_key=1&a"),
            "/x?api_key=<redacted>&a"
        );
    }
}
