//! Wiring: configuration → store, feed, provider, service → HTTP servers (the API, and the
//! admin port: [`crate::admin`]), with an explicit shutdown path (stop taking messages, drain
//! generations, stop the servers, close the feed).
//!
//! [`run`] is the `ai-service` binary (Redis). [`start`] is the same service on any
//! [`StoreBackend`] and already-bound listeners, so the single-process mode (`streamline`)
//! runs exactly this code on the in-memory store.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use service_kit::CommonArgs;
use store::{Feed, MemoryStoreConfig, RedisStoreConfig, StoreBackend};

use crate::api::{self, ApiState};
use crate::auth::ApiAuth;
use crate::config::{AiCli, Config, ProviderKind};
use crate::provider::demo::DemoProvider;
use crate::provider::openai::{OpenAiConfig, OpenAiProvider};
use crate::provider::Provider;
use crate::service::{random_replica_id, NudgeHandler, Service};

pub use service_kit::StartError;

fn provider(config: &Config) -> Result<Arc<dyn Provider>, StartError> {
    match config.provider {
        ProviderKind::Demo => Ok(Arc::new(DemoProvider {
            tokens: config.demo_tokens,
            tokens_per_sec: config.demo_tokens_per_sec,
        })),
        ProviderKind::Openai => {
            let mut cfg = OpenAiConfig::new(&config.openai_base_url, &config.openai_model);
            cfg.api_key = config.openai_api_key.clone();
            cfg.system_prompt = config.system_prompt.clone();
            cfg.max_tokens = config.max_tokens;
            cfg.temperature = config.temperature;
            cfg.first_token_timeout = config.upstream_first_token_timeout;
            cfg.idle_timeout = config.upstream_idle_timeout;
            cfg.max_retries = config.upstream_max_retries;
            let provider = OpenAiProvider::new(cfg).map_err(StartError::config)?;
            Ok(Arc::new(provider))
        }
    }
}

/// The Redis settings of this service's store.
pub fn redis_store_config(config: &Config, common: &CommonArgs) -> RedisStoreConfig {
    RedisStoreConfig {
        stream_ttl: config.stream_ttl,
        cancel_grace: config.cancel_grace,
        history_turns: config.history_turns,
        session_ttl: config.session_ttl,
        ..common.store_config()
    }
}

/// The same retention settings for the in-memory store.
pub fn memory_store_config(config: &Config, common: &CommonArgs) -> MemoryStoreConfig {
    MemoryStoreConfig {
        stream_ttl: config.stream_ttl,
        cancel_grace: config.cancel_grace,
        lease_ttl: common.lease_ttl,
        history_turns: config.history_turns,
        session_ttl: config.session_ttl,
        ..MemoryStoreConfig::default()
    }
}

/// One of the two HTTP servers (the API on `AI_ADDR`, the admin port): the same state, each
/// with its own bearer token and routes.
fn serve(
    listener: TcpListener,
    state: web::Data<ApiState>,
    auth: web::Data<ApiAuth>,
    routes: fn(&mut web::ServiceConfig),
) -> Result<service_kit::Served, StartError> {
    let addr = service_kit::local_addr(&listener)?;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(service_kit::access_log))
            .app_data(state.clone())
            .app_data(auth.clone())
            .configure(routes)
    })
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)
    .map_err(|source| StartError::Bind { addr, source })?
    .run();
    Ok(service_kit::Served::spawn(addr, server))
}

/// The listeners of one ai-service, bound before anything starts.
pub struct Listeners {
    /// The HTTP API (`AI_ADDR`).
    pub api: TcpListener,
    /// The admin port (`ADMIN_ADDR`).
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds both addresses (a port in use fails cleanly, exit 2).
    pub fn bind(api: SocketAddr, admin: SocketAddr) -> Result<Self, StartError> {
        Ok(Listeners {
            api: service_kit::bind(api)?,
            admin: service_kit::bind(admin)?,
        })
    }
}

/// A started ai-service.
pub struct Running {
    service: Arc<Service>,
    feed: Arc<dyn Feed>,
    api: service_kit::Served,
    admin: service_kit::Served,
    shutdown_timeout: Duration,
}

impl Running {
    /// The address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.api.addr
    }

    /// The address of the admin port.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Graceful stop: take no new messages, let running generations finish (up to
    /// `SHUTDOWN_TIMEOUT`, then end them as `failed/shutdown`), stop the server, close the feed.
    pub async fn shutdown(self) {
        self.service.drain(self.shutdown_timeout).await;
        self.api.stop(true).await;
        // Last: the scrape and the probes see the drain through.
        self.admin.stop(true).await;
        self.feed.close().await;
        tracing::info!("ai-service stopped");
    }
}

/// Starts the service on `backend`, serving the API and the admin port on `listeners`.
/// Returns once it serves.
pub async fn start(
    config: &Config,
    common: &CommonArgs,
    listeners: Listeners,
    backend: StoreBackend,
) -> Result<Running, StartError> {
    config.validate().map_err(StartError::config)?;
    common.validate().map_err(StartError::config)?;
    service_kit::install_metrics();
    crate::telemetry::register();
    let replica_id = config.replica_id.clone().unwrap_or_else(random_replica_id);
    let provider = provider(config)?;
    let service = Service::new(
        backend.store.clone(),
        provider.clone(),
        replica_id.clone(),
        common.lease_ttl,
        common.store_outage_budget,
        config.chunk_linger,
        config.budget(),
    );
    let feed = (backend.make_feed)(Arc::new(NudgeHandler(service.clone())))?;
    {
        // Subscribe in the background: the service starts even while the store is down.
        let feed = feed.clone();
        let replica_id = replica_id.clone();
        tokio::spawn(async move {
            // Said once at warn level: the store logs why it cannot connect, once per cause.
            let mut failures = 0u64;
            loop {
                match feed.subscribe_nudges(&replica_id).await {
                    Ok(()) => break,
                    Err(e) if failures == 0 => {
                        tracing::warn!(error = %e, "cannot subscribe to cancel nudges yet; retrying");
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, failures, "still cannot subscribe to cancel nudges")
                    }
                }
                failures += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    let state = web::Data::new(ApiState {
        service: service.clone(),
        feed: feed.clone(),
    });
    let api_auth = web::Data::new(ApiAuth::new(common.ai_service_token.as_ref()));
    let admin_auth = web::Data::new(ApiAuth::new(config.admin_token.as_ref()));
    let api_server = serve(listeners.api, state.clone(), api_auth, api::configure)?;
    let admin_server = serve(listeners.admin, state, admin_auth, crate::admin::configure)?;
    tracing::info!(
        addr = %api_server.addr,
        admin_addr = %admin_server.addr,
        admin_token = if config.admin_token.is_some() { "set" } else { "unset" },
        replica_id,
        store = %backend.description,
        provider = provider.name(),
        cancel_grace = ?config.cancel_grace,
        stream_ttl = ?config.stream_ttl,
        chunk_linger = ?config.chunk_linger,
        lease_ttl = ?common.lease_ttl,
        store_outage_budget = ?common.store_outage_budget,
        history_turns = config.history_turns,
        session_ttl = ?config.session_ttl,
        demo_tokens = config.demo_tokens,
        demo_tokens_per_sec = config.demo_tokens_per_sec,
        openai_base_url = %config.openai_base_url,
        openai_model = %config.openai_model,
        openai_api_key = if config.openai_api_key.is_some() { "set" } else { "unset" },
        shutdown_timeout = ?common.shutdown_timeout,
        redis_command_timeout = ?common.redis.command_timeout,
        user_token_budget = ?config.user_token_budget,
        user_token_window = ?config.user_token_window,
        "ai-service listening"
    );
    Ok(Running {
        service,
        feed,
        api: api_server,
        admin: admin_server,
        shutdown_timeout: common.shutdown_timeout,
    })
}

/// The `ai-service` binary: runs on Redis until SIGTERM/SIGINT, then shuts down gracefully.
pub async fn run(cli: AiCli) -> Result<(), StartError> {
    cli.config.validate().map_err(StartError::config)?;
    cli.common.validate().map_err(StartError::config)?;
    let listeners = Listeners::bind(cli.addr, cli.admin_addr)?;
    // Before the store connects: the store resolves its metric handles at its first command.
    service_kit::install_metrics();
    let backend = StoreBackend::redis(&redis_store_config(&cli.config, &cli.common)).await?;
    let running = start(&cli.config, &cli.common, listeners, backend).await?;
    service_kit::shutdown_signal().await;
    tracing::info!("shutdown requested");
    running.shutdown().await;
    service_kit::flush_traces().await;
    Ok(())
}
