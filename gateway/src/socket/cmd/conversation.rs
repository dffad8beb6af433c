//! `conversation`: the session's messages, so that a reloaded tab or a second one can redraw
//! the whole session: user turns, answers with their final status, and the running ones (which
//! the client then resumes from their `last_seq`). From the store (`Store::conversation`,
//! bounded like the history), for this connection's own session only.

use shared_proto::{ErrorCode, ServerFrame};
use tracing::Instrument;

use super::Commands;

impl Commands {
    pub(super) async fn conversation(&self) {
        let Some(permit) = self.permit().await else {
            return;
        };
        let (store, sink, session_id) =
            (self.state.store.clone(), self.sink.clone(), self.session_id);
        self.state.tasks.spawn_local(
            async move {
                let _permit = permit;
                match store.conversation(session_id).await {
                    Ok(messages) => {
                        sink.send(&ServerFrame::Conversation { messages });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the conversation");
                        sink.send(&ServerFrame::error(
                            ErrorCode::StoreUnavailable,
                            "the conversation could not be read; try again",
                            None,
                        ));
                    }
                }
            }
            .instrument(tracing::info_span!("conversation", %session_id)),
        );
    }
}
