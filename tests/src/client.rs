//! The protocol v1 WebSocket client of the suites: the test kit's one client
//! ([`test_support::client`]) with the harness's JWT as its default token, so
//! `WsClient::connect(url)` passes the gateway's authentication unless the URL carries a
//! token of its own.

pub use test_support::client::{absorb, code, ClientError, Incoming, Transcript};

/// The harness's default token: a JWT for [`crate::auth::TEST_SUB`].
#[derive(Debug, Clone, Copy, Default)]
pub struct HarnessToken;

impl test_support::Credentials for HarnessToken {
    fn token() -> Option<String> {
        Some(crate::auth::test_jwt(crate::auth::TEST_SUB))
    }
}

/// A connected client that has read its `welcome`.
pub type WsClient = test_support::WsClient<HarnessToken>;
