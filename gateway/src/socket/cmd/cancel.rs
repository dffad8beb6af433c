//! `cancel`: stop a message. Answered with `cancel_ack` (an unknown or finished id is a
//! status, not an error).
//!
//! The cancel goes to the ai-service, after the start of its chat if that is still in flight
//! (`socket::starts`). When the ai-service does not answer, the gateway makes the cancel
//! transition in the store itself (`store::lifecycle::cancel`, which also nudges the owner), so
//! Stop works while every ai-service is down; only if the store is also unreachable does the
//! client get `error{ai_service_unavailable}`.

use shared_proto::{ErrorCode, ServerFrame};
use store::{lifecycle, MessageRef};
use tracing::Instrument;
use uuid::Uuid;

use super::Commands;

impl Commands {
    pub(super) async fn cancel(&self, message_id: Uuid) {
        let Some(permit) = self.permit().await else {
            return;
        };
        let (ai, sink, session_id) = (self.state.ai.clone(), self.sink.clone(), self.session_id);
        let store = self.state.store.clone();
        // The chat of this message, if its start is still in flight: the cancel goes after it.
        let chat_started = self.starts.finished(message_id);
        self.state.tasks.spawn_local(
            async move {
                let _permit = permit;
                chat_started.await;
                let answer = match ai.cancel(session_id, message_id).await {
                    Ok(status) => Ok(status),
                    // The ai-service answered that the store is away: no fallback can do better,
                    // and the answer is retryable.
                    Err(e) if e.code() == ErrorCode::StoreUnavailable => Err(e.code()),
                    Err(e) => {
                        tracing::warn!(error = %e, "ai-service unreachable; cancelling in the store");
                        metrics::counter!("streamline_gateway_ai_errors_total", "code" => e.code().as_str())
                            .increment(1);
                        // No canceller replica: nobody here waits for a late create.
                        let msg = MessageRef::new(session_id, message_id);
                        lifecycle::cancel(store.as_ref(), &msg, "")
                            .await
                            .map(|c| c.status())
                            .map_err(|se| {
                                tracing::warn!(error = %se, "cancel failed in the store too");
                                e.code()
                            })
                    }
                };
                match answer {
                    Ok(status) => {
                        metrics::counter!("streamline_gateway_cancels_total", "status" => status.as_str())
                            .increment(1);
                        sink.send(&ServerFrame::CancelAck { message_id, status });
                    }
                    Err(code) => {
                        sink.send(&ServerFrame::error(
                            code,
                            "the cancel could not be delivered; try again",
                            Some(message_id),
                        ));
                    }
                }
            }
            .instrument(tracing::info_span!("cancel", %session_id, %message_id)),
        );
    }
}
