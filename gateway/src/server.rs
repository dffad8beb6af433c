//! Wiring: configuration → store, feed, hub → HTTP server, with an explicit shutdown path
//! (not ready, close every socket with 1001, stop the server, close Redis).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use store::{Feed, RedisFeed, RedisStore, RedisStoreConfig, Store};

use crate::ai_client::AiClient;
use crate::config::Config;
use crate::connection::ws_route;
use crate::hub::{Hub, HubFeed};
use crate::resume_token::ResumeTokens;
use crate::state::AppState;

/// A startup failure, reported as one line (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
}

async fn metrics_route() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(service_kit::render_metrics())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.is_draining() {
        return HttpResponse::ServiceUnavailable().body("draining");
    }
    if !state.feed.is_connected() {
        return HttpResponse::ServiceUnavailable().body("redis subscriber disconnected");
    }
    match tokio::time::timeout(Duration::from_secs(1), state.store.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Ok(Err(e)) => HttpResponse::ServiceUnavailable().body(format!("redis: {e}")),
        Err(_) => HttpResponse::ServiceUnavailable().body("redis: timeout"),
    }
}

/// How often followed messages are checked for lost live entries and dead producers.
const WATCHDOG_PERIOD: Duration = Duration::from_secs(1);
/// A followed message with no progress for this long has its log re-read (and, if its owner's
/// lease has expired, is ended as `worker_lost`).
const WATCHDOG_IDLE: Duration = Duration::from_secs(2);

/// The safety net under live delivery: no client waits forever for a message whose last live
/// entry was lost or whose producer died.
async fn watchdog(hub: Arc<Hub>, shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(WATCHDOG_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                for conn in hub.connections() {
                    conn.streams.check_idle(WATCHDOG_IDLE);
                }
            }
        }
    }
}

/// Runs the gateway until SIGTERM/SIGINT, then shuts down gracefully.
pub async fn run(config: Config) -> Result<(), StartError> {
    config.validate().map_err(StartError::Config)?;
    service_kit::install_metrics();
    let tokens = match &config.auth_secret {
        Some(secret) => ResumeTokens::new(secret.as_bytes()),
        None => {
            tracing::warn!(
                "AUTH_SECRET is not set: resume tokens are signed with a random key, so sessions \
                 can only be resumed on this replica"
            );
            ResumeTokens::new(uuid::Uuid::new_v4().as_bytes())
        }
    };
    // The gateway reads, and writes only the `worker_lost` takeover; retention and history
    // are the ai-service's settings (a takeover uses the defaults).
    let store_config = RedisStoreConfig {
        command_timeout: config.redis_command_timeout,
        ..RedisStoreConfig::new(config.redis_url.clone())
    };
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(&store_config).await?);
    let hub = Arc::new(Hub::default());
    let feed = RedisFeed::start(
        &config.redis_url,
        config.redis_command_timeout,
        Arc::new(HubFeed(hub.clone())),
    )?;
    let ai = AiClient::new(&config.ai_service_url)
        .map_err(|e| StartError::Config(format!("AI_SERVICE_URL: {e}")))?;
    let feed_dyn: Arc<dyn Feed> = Arc::new(feed.clone());
    let state = web::Data::new(AppState::new(
        config.clone(),
        store,
        feed_dyn,
        hub.clone(),
        ai,
        tokens,
    ));
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .route("/ws", web::get().to(ws_route))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics_route))
            .configure(crate::web_client::configure)
    })
    .disable_signals()
    .shutdown_timeout(config.shutdown_timeout.as_secs().max(1))
    .bind(config.addr)
    .map_err(|source| StartError::Bind {
        addr: config.addr,
        source,
    })?
    .run();
    tracing::info!(
        addr = %config.addr,
        ai_service_url = %config.ai_service_url,
        redis_url = %redact_url(&config.redis_url),
        client_timeout = ?config.client_timeout,
        heartbeat_interval = ?config.heartbeat_interval,
        send_queue_bytes = config.send_queue_bytes,
        send_timeout = ?config.send_timeout,
        auth_secret = if config.auth_secret.is_some() { "set" } else { "unset" },
        "gateway listening"
    );
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    tokio::spawn(watchdog(hub.clone(), state.shutdown.clone()));

    service_kit::shutdown_signal().await;
    tracing::info!(
        connections = hub.len(),
        "shutdown requested; closing sockets with 1001"
    );
    state.begin_shutdown();
    let deadline = tokio::time::Instant::now() + config.shutdown_timeout;
    while !hub.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.stop(false).await;
    let _ = server_task.await;
    feed.shutdown().await;
    tracing::info!("gateway stopped");
    Ok(())
}

/// `redis://user:secret@host` → `redis://user:***@host`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
