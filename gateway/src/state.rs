//! What every handler of the gateway shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use store::{Feed, Store};
use tokio_util::sync::CancellationToken;

use crate::ai_client::AiClient;
use crate::auth::Security;
use crate::config::Config;
use crate::hub::Hub;
use crate::resume_token::ResumeTokens;

/// Shared state of one gateway.
pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub feed: Arc<dyn Feed>,
    pub hub: Arc<Hub>,
    pub ai: AiClient,
    pub tokens: ResumeTokens,
    /// Authentication, origins and connection limits of `/ws` (built from `config`).
    pub security: Security,
    /// Cancelled on shutdown: every connection closes with 1001.
    pub shutdown: CancellationToken,
    draining: AtomicBool,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        feed: Arc<dyn Feed>,
        hub: Arc<Hub>,
        ai: AiClient,
        tokens: ResumeTokens,
    ) -> Self {
        let security = Security::from_config(&config).unwrap_or_else(|e| {
            tracing::error!(error = %e, "invalid security settings; refusing every client");
            Security::locked_down(&config)
        });
        crate::telemetry::register(&config);
        // The ai-service's bearer token travels with every request of the client.
        let ai = ai.with_token(config.ai_service_token.as_deref());
        AppState {
            config,
            store,
            feed,
            hub,
            ai,
            tokens,
            security,
            shutdown: CancellationToken::new(),
            draining: AtomicBool::new(false),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Turns not-ready, refuses new connections, and closes every socket with 1001.
    pub fn begin_shutdown(&self) {
        self.draining.store(true, Ordering::Release);
        self.shutdown.cancel();
    }
}
