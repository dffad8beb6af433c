//! Wiring: configuration → store, feed, hub → HTTP servers (the public one: `/ws`, `/healthz`,
//! `/readyz`, the web client; the admin port: `/metrics`, `/healthz`, `/readyz`), with an explicit
//! shutdown path (not ready, close every socket with 1001 in waves over `DRAIN_SPREAD`, wait
//! for every task the gateway started, stop the servers, close the feed).
//!
//! [`run`] is the `gateway` binary (Redis). [`start`] is the same gateway on any
//! [`StoreBackend`] and already-bound listeners, so the single-process mode (`streamline`)
//! runs exactly this code on the in-memory store.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use service_kit::{CommonArgs, Served};
use store::{Feed, RedisStoreConfig, StoreBackend};

use crate::ai_client::AiClient;
use crate::config::{Config, GatewayCli};
use crate::delivery::hub::{Hub, HubFeed};
use crate::delivery::watchdog;
use crate::security::jwks::Refetch;
use crate::security::resume_token::ResumeTokens;
use crate::security::Security;
use crate::socket::handshake::ws_route;
use crate::state::AppState;
use crate::tasks::Drained;

pub use service_kit::StartError;

/// A socket is writable only while its kernel send buffer holds less than this unsent
/// (`TCP_NOTSENT_LOWAT`): 1 byte, so only once everything written before has been sent.
///
/// Without it the kernel autotunes the send buffer up to 4 MiB, so a client on a slow link
/// falls minutes behind inside the kernel, where nothing can see or merge its backlog. With
/// it, the backlog forms in the sink's queue, which merges it (`caps=merge`) and bounds it
/// (`SEND_QUEUE_BYTES`). Every unsent byte in the kernel is lag for a slow reader: S7's
/// 2 KB/s reader had a lag p99 of 9.1 s with 16 KiB, 1.47 s with 1 KiB, 0.85 s with 1 byte,
/// and 3.0 s with no low-water mark and `SO_SNDBUF` at its minimum instead (bench/NOTES.md).
/// A fast reader is not slowed: on its socket nothing stays unsent.
const NOTSENT_LOWAT_BYTES: u32 = 1;

/// actix-http pulls more of a response body only while its write buffer holds less than this:
/// 1 byte, so only once what it pulled before is in the kernel. A WebSocket's frames sitting
/// in that buffer (32 KiB by default) can no longer be merged; with 1, a merging client has
/// at most one frame there (sink/pulled.rs). Frames still leave in one write when several are
/// queued: the body hands over everything actix-ws's channel holds at each pull.
const H1_WRITE_BUFFER_BYTES: usize = 1;

/// Turns Nagle's algorithm off on every accepted socket, and bounds its unsent bytes.
fn set_socket_options(conn: &dyn std::any::Any, _ext: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        if let Err(e) = socket2::SockRef::from(tcp).set_tcp_notsent_lowat(NOTSENT_LOWAT_BYTES) {
            tracing::debug!(error = %e, "TCP_NOTSENT_LOWAT not set");
        }
    }
}

/// The Redis settings of the gateway's store. The gateway reads, and writes only the
/// `worker_lost` takeover and a cancel when the ai-service is away; retention and history are
/// the ai-service's settings (those writes use the defaults).
pub fn redis_store_config(common: &CommonArgs) -> RedisStoreConfig {
    common.store_config()
}

/// The key of resume tokens: `RESUME_SECRET`, else `AUTH_SECRET`, else a random one (with a
/// warning: sessions then resume on this replica only).
fn resume_tokens(config: &Config) -> ResumeTokens {
    if !config.jwt_enabled() {
        tracing::warn!(
            "no AUTH_SECRET, JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE: /ws accepts anonymous clients \
             (no JWT)"
        );
    }
    if let Some(secret) = config
        .resume_secret
        .as_ref()
        .or(config.auth_secret.as_ref())
    {
        return ResumeTokens::new(secret.expose().as_bytes());
    }
    tracing::warn!(
        "no RESUME_SECRET or AUTH_SECRET: resume tokens are signed with a random key, so \
         sessions can only be resumed on this replica"
    );
    ResumeTokens::new(uuid::Uuid::new_v4().as_bytes())
}

/// The listeners of one gateway, bound before anything starts.
pub struct Listeners {
    /// `/ws`, `/healthz`, `/readyz` and the web client (`GATEWAY_ADDR`).
    pub public: TcpListener,
    /// The admin port (`ADMIN_ADDR`).
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds both addresses (a port in use fails cleanly, exit 2).
    pub fn bind(public: SocketAddr, admin: SocketAddr) -> Result<Self, StartError> {
        Ok(Listeners {
            public: service_kit::bind(public)?,
            admin: service_kit::bind(admin)?,
        })
    }
}

/// A started gateway.
pub struct Running {
    state: web::Data<AppState>,
    feed: Arc<dyn Feed>,
    public: Served,
    admin: Served,
    shutdown_timeout: Duration,
}

impl Running {
    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.public.addr
    }

    /// The address of the admin port.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr
    }

    /// Graceful stop: turn not-ready, close every socket with 1001 and wait (up to
    /// `SHUTDOWN_TIMEOUT`) for every task the gateway started to end, stop the server, close
    /// the feed.
    pub async fn shutdown(self) {
        tracing::info!(
            connections = self.state.hub.len(),
            "shutdown requested; closing sockets with 1001 (in waves over DRAIN_SPREAD)"
        );
        self.state.begin_shutdown();
        if let Drained::TimedOut { running } = self.state.tasks.wait(self.shutdown_timeout).await {
            tracing::warn!(running, "SHUTDOWN_TIMEOUT reached with tasks still running");
        }
        self.public.stop(false).await;
        self.admin.stop(true).await;
        self.feed.close().await;
        tracing::info!("gateway stopped");
    }
}

/// Starts the gateway on `backend`, serving on `listeners`. Returns once it serves.
pub async fn start(
    config: &Config,
    common: &CommonArgs,
    listeners: Listeners,
    backend: StoreBackend,
) -> Result<Running, StartError> {
    config.validate().map_err(StartError::config)?;
    common.validate().map_err(StartError::config)?;
    service_kit::install_metrics();
    let addr = service_kit::local_addr(&listeners.public)?;
    let admin_addr = service_kit::local_addr(&listeners.admin)?;
    let security = Security::new(config).map_err(StartError::config)?;
    let tokens = resume_tokens(config);
    if let Some(jwks) = &security.jwks {
        // At start, so that a healthy gateway serves with its keys; a provider that is down
        // leaves it running and (with no other key) not ready, retrying in the background.
        if jwks.fetch_now().await != Refetch::Fetched {
            tracing::warn!(url = %jwks.url(), "no JWKS yet: tokens of its keys are refused until a fetch succeeds");
        }
    }
    let asymmetric = config.jwt_jwks_url.is_some() || config.jwt_public_key_file.is_some();
    if asymmetric && config.jwt_issuer.is_none() && config.jwt_audience.is_none() {
        tracing::warn!(
            "JWT_ISSUER and JWT_AUDIENCE are unset: any token the provider signs (for any \
             application of it) is accepted; set them"
        );
    }
    let ai = AiClient::new(&config.ai_service_url, common.ai_service_token.as_ref())
        .map_err(StartError::config)?;
    let drain_spread = crate::drain::effective_spread(config.drain_spread, common.shutdown_timeout);
    if drain_spread < config.drain_spread {
        tracing::warn!(
            drain_spread = ?config.drain_spread,
            shutdown_timeout = ?common.shutdown_timeout,
            used = ?drain_spread,
            "DRAIN_SPREAD is more than half of SHUTDOWN_TIMEOUT; sockets will close over half of SHUTDOWN_TIMEOUT"
        );
    }
    let hub = Arc::new(Hub::default());
    // /readyz: a pub/sub round trip through the feed (see readiness.rs).
    let probe = web::Data::new(crate::readiness::Probe::new());
    let feed = (backend.make_feed)(Arc::new(crate::readiness::ProbeFeed::new(
        probe.clone().into_inner(),
        HubFeed(hub.clone()),
    )))?;
    let jwks = security.jwks.clone();
    let state = web::Data::new(AppState::new(crate::state::Parts {
        config: config.clone(),
        store: backend.store.clone(),
        feed: feed.clone(),
        hub: hub.clone(),
        ai,
        tokens,
        security,
        follower_patience: crate::delivery::streams::Patience {
            unreadable: common.follower_patience(),
            restore: common.lease_ttl,
        },
        drain_spread,
    }));
    let app_state = state.clone();
    let admin_state = state.clone();
    let admin_probe = probe.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(service_kit::access_log))
            .app_data(app_state.clone())
            .app_data(probe.clone())
            .route("/ws", web::get().to(ws_route))
            // For load balancers, and for the client library, which asks `/readyz` next to
            // `/ws` to tell a refused session from a gateway that is down.
            .route("/healthz", web::get().to(service_kit::healthz))
            .route("/readyz", web::get().to(crate::readiness::readyz))
            .configure(crate::web_client::configure)
    })
    // Chat frames are small and often written back to back (ack then chunk, cancel_ack then
    // done): without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK hold the
    // second one back for up to 40 ms.
    .on_connect(set_socket_options)
    .h1_write_buffer_size(H1_WRITE_BUFFER_BYTES)
    // How long a closed connection lingers for the client's FIN; with the vendored actix-http
    // our FIN goes out first, at once (vendor/actix-http.patch).
    .client_disconnect_timeout(config.disconnect_timeout)
    .disable_signals()
    .shutdown_timeout(common.shutdown_timeout.as_secs().max(1))
    .listen(listeners.public)
    .map_err(|source| StartError::Bind { addr, source })?
    .run();
    let admin = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(service_kit::access_log))
            .app_data(admin_state.clone())
            .app_data(admin_probe.clone())
            .route("/healthz", web::get().to(service_kit::healthz))
            .route("/readyz", web::get().to(crate::readiness::readyz))
            .route("/metrics", web::get().to(crate::readiness::metrics_route))
    })
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listeners.admin)
    .map_err(|source| StartError::Bind {
        addr: admin_addr,
        source,
    })?
    .run();
    tracing::info!(
        %addr,
        %admin_addr,
        store = %backend.description,
        ai_service_url = %config.ai_service_url,
        client_timeout = ?config.client_timeout,
        heartbeat_interval = ?config.heartbeat_interval,
        send_queue_bytes = config.send_queue_bytes,
        send_timeout = ?config.send_timeout,
        max_frame_bytes = config.max_frame_bytes,
        max_content_bytes = config.max_content_bytes,
        shutdown_timeout = ?common.shutdown_timeout,
        disconnect_timeout = ?config.disconnect_timeout,
        ?drain_spread,
        redis_command_timeout = ?common.redis.command_timeout,
        auth_secret = if config.auth_secret.is_some() { "set" } else { "unset" },
        resume_secret = if config.resume_secret.is_some() { "set" } else { "unset" },
        jwt_jwks_url = ?config.jwt_jwks_url.as_ref().map(|u| u.to_string()),
        jwt_public_key_file = ?config.jwt_public_key_file,
        jwt_issuer = ?config.jwt_issuer,
        jwt_audience = ?config.jwt_audience.as_ref().map(|a| &a.0),
        jwt_leeway = ?config.jwt_leeway,
        jwt_jwks_refresh = ?config.jwt_jwks_refresh,
        jwt_jwks_min_refresh = ?config.jwt_jwks_min_refresh,
        "gateway listening"
    );
    let public = Served::spawn(addr, server);
    let admin = Served::spawn(admin_addr, admin);
    state
        .tasks
        .spawn(watchdog::run(hub, state.shutdown.clone()));
    if let Some(jwks) = jwks {
        state.tasks.spawn(jwks.run(state.shutdown.clone()));
    }
    Ok(Running {
        state,
        feed,
        public,
        admin,
        shutdown_timeout: common.shutdown_timeout,
    })
}

/// The `gateway` binary: runs on Redis until SIGTERM/SIGINT, then shuts down gracefully.
pub async fn run(cli: GatewayCli) -> Result<(), StartError> {
    cli.config.validate().map_err(StartError::config)?;
    cli.common.validate().map_err(StartError::config)?;
    let listeners = Listeners::bind(cli.addr, cli.admin_addr)?;
    // Before the store connects: the store resolves its metric handles at its first command.
    service_kit::install_metrics();
    let backend = StoreBackend::redis(&redis_store_config(&cli.common)).await?;
    let running = start(&cli.config, &cli.common, listeners, backend).await?;
    service_kit::shutdown_signal().await;
    running.shutdown().await;
    service_kit::flush_traces().await;
    Ok(())
}
