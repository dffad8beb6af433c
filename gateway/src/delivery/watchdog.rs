//! The safety net under live delivery: no client waits forever for a message whose last live
//! entry was lost or whose producer died. Every [`WATCHDOG_PERIOD`], each followed message
//! that made no progress for [`WATCHDOG_IDLE`] has its log re-read (which also ends it
//! `worker_lost` when its owner's lease has expired, see `store::lifecycle`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::hub::Hub;

/// How often followed messages are checked for lost live entries and dead producers.
pub const WATCHDOG_PERIOD: Duration = Duration::from_secs(1);
/// A followed message with no progress for this long has its log re-read.
pub const WATCHDOG_IDLE: Duration = Duration::from_secs(2);

/// Runs until `shutdown` is cancelled.
pub async fn run(hub: Arc<Hub>, shutdown: CancellationToken) {
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
