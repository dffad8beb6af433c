//! `auth`: replace the connection's login token before it expires.
//!
//! The new JWT goes through the same verification as the handshake's (keys, claims, a JWKS
//! refetch for an unknown `kid`), in a task of its own so that the read loop (and its expiry
//! timer) never waits for a key fetch. It must carry the connection's `sub`: a session belongs
//! to one user for its whole life. Accepted: `auth_ack{exp}`, and the connection now closes
//! (4003) at that `exp` plus `JWT_LEEWAY`. Refused (invalid, expired, another `sub`):
//! `error{unauthorized}`, and the old token stays in force until its own expiry.
//!
//! In anonymous mode (no JWT key configured) there is no token to replace and nothing would
//! verify the new one: the answer is `error{unauthorized}`, so that a client never believes an
//! identity was checked. Rate-limited from the `requests` bucket, like `chat`.

use shared_proto::{ErrorCode, ServerFrame};
use tracing::Instrument;

use super::Commands;
use crate::security::conn_token::Replaced;

impl Commands {
    pub(super) async fn auth(&self, token: String) {
        let (Some(verifier), Some(current)) = (self.state.security.jwt.clone(), self.token.clone())
        else {
            self.refuse("anonymous mode: this gateway verifies no tokens");
            metrics::counter!("streamline_gateway_token_refreshes_total", "result" => "anonymous")
                .increment(1);
            return;
        };
        let Some(permit) = self.permit().await else {
            return;
        };
        // Taken in frame order: a verification that ends late cannot undo a later refresh.
        let ticket = current.ticket();
        let (sink, session_id) = (self.sink.clone(), self.session_id);
        self.state.tasks.spawn_local(
            async move {
                let _permit = permit;
                let refused = |reason: &'static str, message: &str| {
                    tracing::info!(reason, "auth refused; the old token stays in force");
                    metrics::counter!("streamline_gateway_token_refreshes_total", "result" => "refused")
                        .increment(1);
                    sink.send(&ServerFrame::error(ErrorCode::Unauthorized, message, None));
                };
                match verifier.verify(&token).await {
                    Ok(verified) => match current.replace(ticket, &verified) {
                        Replaced::Installed { exp } | Replaced::Superseded { exp } => {
                            metrics::counter!("streamline_gateway_token_refreshes_total", "result" => "accepted")
                                .increment(1);
                            sink.send(&ServerFrame::AuthAck { exp });
                        }
                        Replaced::OtherSubject => refused(
                            "other_sub",
                            "the token is for another sub; a connection keeps its user",
                        ),
                    },
                    Err(e) => {
                        metrics::counter!("streamline_gateway_auth_failures_total", "reason" => e.as_str())
                            .increment(1);
                        refused(e.as_str(), "the token was refused; the previous one stays in force");
                    }
                }
            }
            .instrument(tracing::info_span!("auth", %session_id)),
        );
    }

    fn refuse(&self, message: &str) {
        self.sink
            .send(&ServerFrame::error(ErrorCode::Unauthorized, message, None));
    }
}
