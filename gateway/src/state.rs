//! What every handler of the gateway shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    /// Cancelled when the drain's last wave is out: every connection still open closes with
    /// 1001, and the background tasks stop.
    pub shutdown: CancellationToken,
    /// Over how long the drain closes the sockets ([`crate::drain`]).
    drain_spread: Duration,
    draining: AtomicBool,
}

/// What a gateway is built from (see [`AppState::new`]).
pub struct Parts {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub feed: Arc<dyn Feed>,
    pub hub: Arc<Hub>,
    pub ai: AiClient,
    pub tokens: ResumeTokens,
    pub security: Security,
    pub follower_patience: crate::delivery::streams::Patience,
    pub drain_spread: Duration,
}

impl AppState {
    pub fn new(parts: Parts) -> Self {
        crate::telemetry::register();
        let Parts {
            config,
            store,
            feed,
            hub,
            ai,
            tokens,
            security,
            follower_patience,
            drain_spread,
        } = parts;
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
            drain_spread,
            draining: AtomicBool::new(false),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Turns not-ready, refuses new connections, and closes every socket with 1001, in waves
    /// over the drain spread (a tracked task; [`Self::shutdown`] is cancelled after the last).
    pub fn begin_shutdown(&self) {
        if self.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        self.tasks.spawn(crate::drain::run(
            self.hub.clone(),
            self.drain_spread,
            self.shutdown.clone(),
        ));
    }
}
