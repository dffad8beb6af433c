//! The connections of this gateway, by session, and the router from the store's feed to them.
//!
//! A session may have several sockets at once (tabs, devices), up to
//! `MAX_SOCKETS_PER_SESSION`: beyond it, the oldest is closed with 4001. Every socket of a
//! session follows every message of the session: the feed's live entries go to each of them,
//! and a message started on one socket (or on another gateway) is announced to the others
//! (the store publishes a start), which then follow it too. So all tabs show every answer, and a
//! cancel from any of them ends it for all.
//!
//! The feed's reader task calls [`Hub::on_event`] (through [`HubFeed`]) for every live entry;
//! routing is a map lookup and a non-blocking enqueue per socket, so one slow client never
//! delays another.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use shared_proto::ChunkKind;
use store::{FeedEvent, FeedHandler};
use uuid::Uuid;

use super::outages::StoreOutages;
use super::streams::Streams;
use crate::sink::Sink;
use crate::starts::Starts;

/// One connection of a session.
#[derive(Clone)]
pub struct Connection {
    pub conn_id: u64,
    pub sink: Sink,
    pub streams: Arc<Streams>,
}

/// A session's sockets on this gateway, oldest first, and what they share.
struct Session {
    connections: Vec<Connection>,
    /// The chats in flight of every socket of the session: a cancel on any socket waits for
    /// its chat's start, wherever it was sent.
    starts: Starts,
}

/// What [`Hub::register`] did.
pub struct Registered {
    /// The session's starts in flight (shared by its sockets).
    pub starts: Starts,
    /// The oldest socket, closed to make room (over `MAX_SOCKETS_PER_SESSION`).
    pub evicted: Option<Connection>,
}

/// What [`Hub::unregister`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// It was the session's last socket here: unsubscribe its channel.
    LastOfSession,
    /// Other sockets of the session remain (or it was not registered).
    Others,
}

/// Connections by session id.
#[derive(Default)]
pub struct Hub {
    sessions: RwLock<HashMap<Uuid, Session>>,
    /// When the store last came back (learnt from the feed's resyncs).
    pub outages: Arc<StoreOutages>,
}

impl Hub {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Session>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Uuid, Session>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a socket to its session; with `max_sockets` already there, the oldest is taken
    /// out (the caller closes it with 4001).
    pub fn register(&self, session_id: Uuid, conn: Connection, max_sockets: usize) -> Registered {
        let mut map = self.write();
        let session = map.entry(session_id).or_insert_with(|| Session {
            connections: Vec::new(),
            starts: Starts::default(),
        });
        let evicted = (session.connections.len() >= max_sockets.max(1))
            .then(|| session.connections.remove(0));
        session.connections.push(conn);
        Registered {
            starts: session.starts.clone(),
            evicted,
        }
    }

    /// Takes a socket out of its session.
    pub fn unregister(&self, session_id: Uuid, conn_id: u64) -> Left {
        let mut map = self.write();
        let Some(session) = map.get_mut(&session_id) else {
            return Left::Others;
        };
        let before = session.connections.len();
        session.connections.retain(|c| c.conn_id != conn_id);
        if session.connections.len() == before {
            return Left::Others;
        }
        if session.connections.is_empty() {
            map.remove(&session_id);
            return Left::LastOfSession;
        }
        Left::Others
    }

    /// Whether the session has a socket here.
    pub fn contains(&self, session_id: Uuid) -> bool {
        self.read().contains_key(&session_id)
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.read().values().map(|s| s.connections.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every connection (for shutdown and the idle sweep).
    pub fn connections(&self) -> Vec<Connection> {
        self.read()
            .values()
            .flat_map(|s| s.connections.iter().cloned())
            .collect()
    }

    /// The streams of every socket of a session.
    fn streams_of(&self, session_id: Uuid) -> Vec<Arc<Streams>> {
        self.read()
            .get(&session_id)
            .map(|s| s.connections.iter().map(|c| c.streams.clone()).collect())
            .unwrap_or_default()
    }
}

/// Routes feed events to connections.
pub struct HubFeed(pub Arc<Hub>);

impl FeedHandler for HubFeed {
    fn on_event(&self, event: FeedEvent) {
        match event {
            FeedEvent::Chunk(chunk) => {
                let mut streams = self.0.streams_of(chunk.session_id);
                let Some(last) = streams.pop() else {
                    return;
                };
                if chunk.kind == ChunkKind::Start {
                    for s in streams {
                        s.on_started(chunk.message_id, &chunk.text);
                    }
                    last.on_started(chunk.message_id, &chunk.text);
                } else {
                    for s in streams {
                        s.on_live(chunk.clone());
                    }
                    // The last socket (usually the only one) takes the entry itself.
                    last.on_live(chunk);
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
