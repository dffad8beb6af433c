//! `chat`: start a message.
//!
//! Checked in order: blank content, content over `MAX_CONTENT_BYTES`, the store away (a
//! retryable `store_unavailable` at once), the session at
//! `MAX_GENERATIONS_PER_SESSION`, a `message_id` this connection already follows; then the
//! start is registered (so a `cancel` right behind waits for it, see `socket::starts`) and the
//! ai-service's POST runs in its own task, with the connection's `sub` as the user. Its answer
//! is `ack` (then the message's chunks, held back until then), or an `error` (`quota_exceeded`
//! with `retry_after_s` when the user's `USER_TOKEN_BUDGET` is spent).

use std::collections::HashSet;
use std::time::Duration;

use shared_proto::{ErrorCode, MessageState, ServerFrame};
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use super::{lock, Commands};
use crate::delivery::streams::Follow;

/// How often a connection that is at `MAX_GENERATIONS_PER_SESSION` because of messages it
/// inherited (resumed session) re-reads which of them still run.
const INHERITED_REFRESH: Duration = Duration::from_secs(1);

/// The session's unfinished messages when it was resumed, until the client resumes them
/// (then [`crate::delivery::streams::Streams`] counts them) or they turn out finished.
pub(super) struct Inherited {
    ids: HashSet<Uuid>,
    refreshed: Instant,
}

impl Inherited {
    pub(super) fn new(ids: HashSet<Uuid>) -> Self {
        Inherited {
            ids,
            refreshed: Instant::now(),
        }
    }

    /// The client took `message_id` over (resumed or re-sent it): it is no longer inherited.
    pub(super) fn forget(&mut self, message_id: Uuid) -> bool {
        self.ids.remove(&message_id)
    }
}

impl Commands {
    /// `traceparent`: the client's (optional) W3C trace parent; an invalid one is ignored.
    pub(super) async fn chat(
        &self,
        content: String,
        message_id: Option<Uuid>,
        traceparent: Option<&str>,
    ) {
        let message_id = message_id.unwrap_or_else(Uuid::new_v4);
        let max_content = self.state.config.max_content_bytes;
        if content.trim().is_empty() {
            self.sink.send(&ServerFrame::error(
                ErrorCode::EmptyContent,
                "content is empty",
                Some(message_id),
            ));
            return;
        }
        if content.len() > max_content {
            self.sink.send(&ServerFrame::error(
                ErrorCode::ContentTooLong,
                format!("content is longer than {max_content} bytes"),
                Some(message_id),
            ));
            return;
        }
        if !self.state.feed.is_connected() || !self.state.store.is_connected() {
            // The store is away: a retryable refusal now, never a hang until a timeout.
            self.sink.send(&ServerFrame::error(
                ErrorCode::StoreUnavailable,
                "the store is unavailable right now; try again shortly",
                Some(message_id),
            ));
            return;
        }
        if self.generations_full(message_id).await {
            metrics::counter!("streamline_gateway_too_many_generations_total").increment(1);
            self.sink.send(&ServerFrame::error(
                ErrorCode::TooManyGenerations,
                format!(
                    "this session already runs {} answers (MAX_GENERATIONS_PER_SESSION); wait for one to finish",
                    self.state.config.max_generations_per_session
                ),
                Some(message_id),
            ));
            return;
        }
        if self.streams.follow_held(message_id) == Follow::AlreadyFollowing {
            self.sink.send(&ServerFrame::error(
                ErrorCode::DuplicateMessageId,
                "this message_id is already streaming on this connection",
                Some(message_id),
            ));
            return;
        }
        let Some(permit) = self.permit().await else {
            return;
        };
        // Registered before the next frame is read: a cancel right behind waits for it.
        let start = self.starts.begin(message_id);
        // One chat is one trace: its own root (not the connection's child), or the client's
        // span's child when it sent a valid `traceparent`.
        let span = tracing::info_span!("chat", session_id = %self.session_id, %message_id);
        service_kit::trace_context::set_parent(
            &span,
            service_kit::trace_context::remote_parent(traceparent),
        );
        let (ai, sink, streams, session_id) = (
            self.state.ai.clone(),
            self.sink.clone(),
            self.streams.clone(),
            self.session_id,
        );
        // The user is the connection's `sub`, fixed for its life (an `auth` refresh keeps it).
        let user = self.token.as_ref().map(|t| t.sub().to_string());
        self.state.tasks.spawn_local(
            async move {
                let _permit = permit;
                let _start = start;
                match ai.start(session_id, message_id, &content, user.as_deref()).await {
                    Ok(state) => {
                        sink.send(&ServerFrame::Ack { message_id });
                        // A retry of a message that already runs or finished: replay its log.
                        streams.release(message_id, state != MessageState::Queued);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "chat not accepted by the ai-service");
                        metrics::counter!("streamline_gateway_ai_errors_total", "code" => e.code().as_str())
                            .increment(1);
                        streams.unfollow(message_id);
                        let message = match e.code() {
                            ErrorCode::QuotaExceeded => {
                                "your token budget is spent; retry after retry_after_s seconds"
                            }
                            _ => "the answer could not be started; try again",
                        };
                        sink.send(
                            &ServerFrame::error(e.code(), message, Some(message_id))
                                .with_retry_after(e.retry_after_s()),
                        );
                    }
                }
            }
            .instrument(span),
        );
    }

    /// Whether the session already runs `MAX_GENERATIONS_PER_SESSION` answers: the messages
    /// this connection follows (started here, resumed, or starting) plus those it inherited
    /// from an earlier connection and has not resumed.
    async fn generations_full(&self, message_id: Uuid) -> bool {
        let max = self.state.config.max_generations_per_session;
        {
            let mut inh = lock(&self.inherited);
            // A retried chat of a message the session already runs starts nothing new.
            if inh.forget(message_id) {
                return false;
            }
            if self.streams.len() + inh.ids.len() < max {
                return false;
            }
            if inh.ids.is_empty() || inh.refreshed.elapsed() < INHERITED_REFRESH {
                return true;
            }
            inh.refreshed = Instant::now();
        }
        // Some inherited messages may have finished: ask the store which still run.
        match self.state.store.active(self.session_id).await {
            Ok(active) => {
                let still: HashSet<Uuid> = active.into_iter().map(|a| a.message_id).collect();
                lock(&self.inherited).ids.retain(|id| still.contains(id));
            }
            Err(e) => tracing::debug!(error = %e, "cannot list active messages"),
        }
        self.streams.len() + lock(&self.inherited).ids.len() >= max
    }
}
