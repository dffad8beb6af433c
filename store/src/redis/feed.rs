//! The Redis side of live delivery: one subscriber connection per process.
//!
//! fred's plain client reconnects but forgets subscriptions; its `SubscriberClient` tracks
//! them. We resubscribe ourselves after each reconnect (rather than with
//! `manage_subscriptions`) so that we know when it is done and can tell the handler to
//! [`FeedEvent::Resync`] only then: a log read before the resubscription could miss entries
//! published in between.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::Message;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{builder, connect_failure, RedisEndpoint, SUBSCRIBER_EVENTS_CAPACITY};
use crate::keys;
use crate::{Feed, FeedEvent, FeedHandler, MessageRef, StoreError};

/// Sharded pub/sub subscriptions of one process.
#[derive(Clone)]
pub struct RedisFeed {
    sub: SubscriberClient,
    shutdown: CancellationToken,
}

impl RedisFeed {
    /// Connects (in the background) and starts the reader task that hands every event to
    /// `handler`. The task ends when [`RedisFeed::shutdown`] is called.
    pub fn start(
        endpoint: &RedisEndpoint,
        command_timeout: Duration,
        handler: Arc<dyn FeedHandler>,
    ) -> Result<Self, StoreError> {
        let sub = builder(endpoint, command_timeout, SUBSCRIBER_EVENTS_CAPACITY)
            .build_subscriber_client()?;
        connect_failure::watch(&sub, "subscriber", endpoint);
        // Subscribe to the receivers before connecting, so nothing is missed.
        let messages = sub.message_rx();
        let reconnects = sub.reconnect_rx();
        let _connection = sub.connect();
        let feed = RedisFeed {
            sub,
            shutdown: CancellationToken::new(),
        };
        tokio::spawn(read_messages(feed.clone(), messages, handler.clone()));
        tokio::spawn(resubscribe_on_reconnect(feed.clone(), reconnects, handler));
        Ok(feed)
    }

    /// Stops the reader tasks and closes the connection.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        let _ = self.sub.quit().await;
    }
}

async fn read_messages(
    feed: RedisFeed,
    mut rx: tokio::sync::broadcast::Receiver<Message>,
    handler: Arc<dyn FeedHandler>,
) {
    loop {
        let received = tokio::select! {
            _ = feed.shutdown.cancelled() => return,
            r = rx.recv() => r,
        };
        match received {
            Ok(message) => {
                if let Some(event) = decode(&message) {
                    handler.on_event(event);
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    lost = n,
                    "pub/sub reader fell behind; resyncing from the logs"
                );
                handler.on_event(FeedEvent::Resync);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn resubscribe_on_reconnect(
    feed: RedisFeed,
    mut rx: tokio::sync::broadcast::Receiver<fred::types::config::Server>,
    handler: Arc<dyn FeedHandler>,
) {
    let mut first = true;
    loop {
        let received = tokio::select! {
            _ = feed.shutdown.cancelled() => return,
            r = rx.recv() => r,
        };
        match received {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        if first {
            // The initial connection: nothing was subscribed before it.
            first = false;
            if feed.sub.tracked_shard_channels().is_empty() {
                continue;
            }
        }
        loop {
            match resubscribe_shard_channels(&feed.sub).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "resubscribe failed; retrying");
                    tokio::select! {
                        _ = feed.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }
        metrics::counter!("streamline_store_redis_reconnects_total").increment(1);
        tracing::info!(
            channels = feed.sub.tracked_shard_channels().len(),
            "redis subscriber reconnected and resubscribed"
        );
        handler.on_event(FeedEvent::Resync);
    }
}

/// Restores every tracked sharded subscription with SSUBSCRIBE, one call per hash slot: the
/// channels of one SSUBSCRIBE must share a slot, and fred sends each call to the node that owns
/// that slot now (on a Cluster, after a failover, the promoted replica).
///
/// Not fred's `resubscribe_all`: it also sends `SUBSCRIBE` and `PSUBSCRIBE` with the (always
/// empty) plain channel and pattern sets, i.e. without arguments, which Redis refuses with
/// `ERR wrong number of arguments for 'subscribe'`, failing the whole resubscription (seen
/// after a Cluster master was killed). The feed uses sharded channels only.
async fn resubscribe_shard_channels(sub: &SubscriberClient) -> Result<(), fred::error::Error> {
    let channels = sub.tracked_shard_channels();
    for (_slot, keys) in fred::util::group_by_hash_slot(channels)? {
        sub.ssubscribe(keys).await?;
    }
    Ok(())
}

fn decode(message: &Message) -> Option<FeedEvent> {
    let channel: &str = &message.channel;
    let payload = message.value.as_str()?;
    if channel.starts_with("s:{") {
        match serde_json::from_str(&payload) {
            Ok(chunk) => Some(FeedEvent::Chunk(chunk)),
            Err(e) => {
                tracing::warn!(channel, error = %e, "undecodable chunk on a session channel");
                None
            }
        }
    } else if channel.starts_with("r:{") {
        let (s, m) = payload.split_once(' ')?;
        Some(FeedEvent::Nudge(MessageRef::new(
            Uuid::parse_str(s).ok()?,
            Uuid::parse_str(m).ok()?,
        )))
    } else {
        None
    }
}

#[async_trait]
impl Feed for RedisFeed {
    async fn subscribe_session(&self, session_id: Uuid) -> Result<(), StoreError> {
        self.sub
            .ssubscribe(keys::session_channel(session_id))
            .await?;
        Ok(())
    }

    async fn unsubscribe_session(&self, session_id: Uuid) -> Result<(), StoreError> {
        self.sub
            .sunsubscribe(keys::session_channel(session_id))
            .await?;
        Ok(())
    }

    async fn subscribe_nudges(&self, replica: &str) -> Result<(), StoreError> {
        self.sub.ssubscribe(keys::nudge_channel(replica)).await?;
        Ok(())
    }

    fn is_connected(&self) -> bool {
        self.sub.is_connected()
    }

    async fn close(&self) {
        self.shutdown().await;
    }
}
