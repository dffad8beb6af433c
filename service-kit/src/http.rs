//! What both services' HTTP servers share: binding the address first, and the routes every
//! process serves the same way (`/healthz`, `/metrics`), and running one server of a service.

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

/// The address a listener was bound to (the port the OS chose for `:0`).
pub fn local_addr(listener: &TcpListener) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })
}

/// One HTTP server of a service (its API, its admin port), running on its own task until
/// [`Served::stop`].
pub struct Served {
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// Runs `server` (listening on `addr`) on a task of its own.
    pub fn spawn(addr: SocketAddr, server: actix_web::dev::Server) -> Served {
        Served {
            addr,
            handle: server.handle(),
            task: tokio::spawn(server),
        }
    }

    /// Stops the server (`graceful`: lets requests in flight finish) and waits until it has.
    pub async fn stop(self, graceful: bool) {
        self.handle.stop(graceful).await;
        let _ = self.task.await;
    }
}
