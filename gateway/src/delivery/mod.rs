//! Delivery: from the store's feed to each connection's sink, exactly once and in order.
//!
//! - [`hub`]: the connections of this gateway by session, and the router from the feed;
//! - [`streams`]: which messages a connection follows, and the cursor of each (live entries
//!   plus log backfill, no gap, no repeat);
//! - [`outages`]: when the store last came back (a missing message may be restored then);
//! - [`watchdog`]: re-reads messages that made no progress, so a lost live entry or a dead
//!   producer never leaves a client waiting.

pub mod hub;
pub mod outages;
pub mod streams;
pub mod watchdog;
