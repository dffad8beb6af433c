//! What both services' HTTP servers share: binding the address first, and the routes every
//! process serves the same way (`/healthz`, `/metrics`).

use std::net::{SocketAddr, TcpListener};

use actix_web::HttpResponse;

use crate::StartError;

/// Binds `addr` before anything else starts, so a port in use fails cleanly (exit 2).
pub fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok(listener)
}

/// `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// `GET /metrics`: the Prometheus text of every series of this process.
pub fn metrics_response() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::render_metrics())
}
