//! [`PeerGone`]: the one way a write to a connection fails. Its own file because both the
//! transport (which writes) and the pull signal (which waits for actix to take a write) end
//! with it, and neither should import the other for it.

/// The peer is gone: nothing more can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerGone;
