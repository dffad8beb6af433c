//! Wiring: configuration → store, feed, provider, service → HTTP server, with an explicit
//! shutdown path (stop taking messages, drain generations, stop the server, close Redis).

use std::sync::Arc;

use actix_web::{web, App, HttpServer};
use store::{Feed, RedisFeed, RedisStore, RedisStoreConfig, Store};

use crate::api::{self, ApiState};
use crate::config::{Config, ProviderKind};
use crate::provider::demo::DemoProvider;
use crate::provider::openai::{OpenAiConfig, OpenAiProvider};
use crate::provider::Provider;
use crate::service::{random_replica_id, NudgeHandler, Service};

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
            let provider =
                OpenAiProvider::new(cfg).map_err(|e| StartError::Config(e.to_string()))?;
            Ok(Arc::new(provider))
        }
    }
}

/// Runs the ai-service until SIGTERM/SIGINT, then shuts down gracefully.
pub async fn run(config: Config) -> Result<(), StartError> {
    config.validate().map_err(StartError::Config)?;
    service_kit::install_metrics();
    let replica_id = config.replica_id.clone().unwrap_or_else(random_replica_id);
    let provider = provider(&config)?;
    let store_config = RedisStoreConfig {
        stream_ttl: config.stream_ttl,
        cancel_grace: config.cancel_grace,
        command_timeout: config.redis_command_timeout,
        lease_ttl: config.lease_ttl,
        history_turns: config.history_turns,
        session_ttl: config.session_ttl,
        ..RedisStoreConfig::new(config.redis_url.clone())
    };
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(&store_config).await?);
    let service = Service::new(
        store,
        provider.clone(),
        replica_id.clone(),
        config.lease_ttl,
    );
    let feed = RedisFeed::start(
        &config.redis_url,
        config.redis_command_timeout,
        Arc::new(NudgeHandler(service.clone())),
    )?;
    {
        // Subscribe in the background: the service starts even while Redis is down.
        let feed = feed.clone();
        let replica_id = replica_id.clone();
        tokio::spawn(async move {
            loop {
                match feed.subscribe_nudges(&replica_id).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot subscribe to cancel nudges yet; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            }
        });
    }
    let state = web::Data::new(ApiState {
        service: service.clone(),
        feed: Arc::new(feed.clone()),
    });
    let server =
        HttpServer::new(move || App::new().app_data(state.clone()).configure(api::configure))
            .disable_signals()
            .shutdown_timeout(5)
            .bind(config.addr)
            .map_err(|source| StartError::Bind {
                addr: config.addr,
                source,
            })?
            .run();
    tracing::info!(
        addr = %config.addr,
        replica_id,
        provider = provider.name(),
        redis_url = %redact_url(&config.redis_url),
        cancel_grace = ?config.cancel_grace,
        stream_ttl = ?config.stream_ttl,
        shutdown_timeout = ?config.shutdown_timeout,
        "ai-service listening"
    );
    let handle = server.handle();
    let server_task = tokio::spawn(server);

    service_kit::shutdown_signal().await;
    tracing::info!("shutdown requested");
    service.drain(config.shutdown_timeout).await;
    handle.stop(true).await;
    let _ = server_task.await;
    feed.shutdown().await;
    tracing::info!("ai-service stopped");
    Ok(())
}

/// `redis://user:secret@host` → `redis://user:***@host`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
