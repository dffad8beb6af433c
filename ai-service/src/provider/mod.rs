//! Model providers: where tokens come from.
//!
//! A provider turns a [`GenerationRequest`] into a stream of [`ProviderEvent`]s. The contract
//! that makes cancel work is ownership: the generation task owns the stream, and **dropping the
//! stream must abort the upstream work** (for an HTTP provider: close the connection, so the
//! model server stops generating and billing). Providers therefore keep all their state inside
//! the stream and spawn nothing that outlives it.

pub mod demo;
pub mod openai;
pub mod sse;

use futures_util::stream::BoxStream;
use shared_proto::{ErrorBody, ErrorCode, Usage};
use uuid::Uuid;

pub use shared_proto::{Role, Turn};

/// What a provider is asked to answer.
#[derive(Debug, Clone)]
pub struct GenerationRequest {
    pub session_id: Uuid,
    pub message_id: Uuid,
    /// The user's new message.
    pub content: String,
    /// Earlier turns of this session, oldest first (not including `content`).
    pub history: Vec<Turn>,
}

/// One item of a provider's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEvent {
    /// A piece of answer text (one token or a few).
    Token(String),
    /// A piece of the model's reasoning (`reasoning_content` / `reasoning` of reasoning
    /// models): delivered apart, never part of the answer or its history.
    Reasoning(String),
    /// Token counts, when the upstream reports them (usually just before the end).
    Usage(Usage),
}

/// Why a generation failed; becomes `done{status:"failed", error}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProviderError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProviderError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProviderError {
            code,
            message: message.into(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code, self.message.clone())
    }
}

/// The stream a provider returns. It ends (`None`) when the answer is complete; an `Err` item
/// ends the message as failed (nothing after it is read).
pub type ProviderStream = BoxStream<'static, Result<ProviderEvent, ProviderError>>;

/// A source of answers.
pub trait Provider: Send + Sync + 'static {
    /// Starts a generation. Nothing may happen upstream before the stream is first polled, and
    /// everything must stop when it is dropped.
    fn stream(&self, request: GenerationRequest) -> ProviderStream;

    /// A short name for logs (`demo`, `openai`).
    fn name(&self) -> &'static str;
}
