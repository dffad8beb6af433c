//! The connections of this gateway, by session, and the router from the Redis feed to them.
//!
//! The feed's reader task calls [`Hub::on_event`] for every live entry; routing is a map
//! lookup and a non-blocking enqueue, so one slow client never delays another.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use store::{FeedEvent, FeedHandler};
use uuid::Uuid;

use super::outages::StoreOutages;
use super::streams::Streams;
use crate::sink::Sink;

/// One connection of a session.
#[derive(Clone)]
pub struct Connection {
    pub conn_id: u64,
    pub sink: Sink,
    pub streams: Arc<Streams>,
}

/// Connections by session id (one per session: a reconnect replaces the old one).
#[derive(Default)]
pub struct Hub {
    sessions: RwLock<HashMap<Uuid, Connection>>,
    /// When the store last came back (learnt from the feed's resyncs).
    pub outages: Arc<StoreOutages>,
}

impl Hub {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Connection>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Uuid, Connection>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection; returns the one it replaces, if any.
    pub fn register(&self, session_id: Uuid, conn: Connection) -> Option<Connection> {
        self.write().insert(session_id, conn)
    }

    /// Removes the session's entry if it is still this connection. Returns whether it was.
    pub fn unregister(&self, session_id: Uuid, conn_id: u64) -> bool {
        let mut map = self.write();
        if map.get(&session_id).is_some_and(|c| c.conn_id == conn_id) {
            map.remove(&session_id);
            true
        } else {
            false
        }
    }

    /// Whether the session has a connection here.
    pub fn contains(&self, session_id: Uuid) -> bool {
        self.read().contains_key(&session_id)
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every connection (for shutdown and the idle sweep).
    pub fn connections(&self) -> Vec<Connection> {
        self.read().values().cloned().collect()
    }
}

/// Routes feed events to connections.
pub struct HubFeed(pub Arc<Hub>);

impl FeedHandler for HubFeed {
    fn on_event(&self, event: FeedEvent) {
        match event {
            FeedEvent::Chunk(chunk) => {
                let streams = self
                    .0
                    .read()
                    .get(&chunk.session_id)
                    .map(|c| c.streams.clone());
                if let Some(streams) = streams {
                    streams.on_live(chunk);
                }
            }
            FeedEvent::Resync => {
                self.0.outages.came_back();
                for conn in self.0.connections() {
                    conn.streams.resync();
                }
            }
            FeedEvent::Nudge(_) => {}
        }
    }
}
