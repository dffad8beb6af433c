//! What every handler of the gateway shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use store::{Feed, Store};
use tokio_util::sync::CancellationToken;

use crate::ai_client::AiClient;
use crate::config::Config;
use crate::delivery::hub::Hub;
use crate::security::resume_token::ResumeTokens;
use crate::security::Security;
use crate::tasks::Tasks;

/// Shared state of one gateway.
pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub feed: Arc<dyn Feed>,
    pub hub: Arc<Hub>,
    pub ai: AiClient,
    pub tokens: ResumeTokens,
    /// Authentication, origins and connection limits of `/ws`.
    pub security: Security,
    /// Every task the gateway starts (shutdown waits for them).
    pub tasks: Tasks,
    /// How long a followed message may stay unreadable before it is ended for its client
    /// (`CommonArgs::follower_patience`).
    pub follower_patience: crate::delivery::streams::Patience,
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
        follower_patience: crate::delivery::streams::Patience,
        security: Security,
    ) -> Self {
        crate::telemetry::register();
        AppState {
            security,
            config,
            store,
            feed,
            hub,
            ai,
            tokens,
            tasks: Tasks::default(),
            follower_patience,
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
