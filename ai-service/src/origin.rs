//! Where a generation comes from: when its request reached this service (its time to first
//! token and its duration count from there) and the trace it belongs to (the API request's
//! span), carried from the HTTP handler to the generation task, which runs on another runtime
//! and outlives the request.

use std::time::Instant;

use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// A generation's origin.
#[derive(Debug, Clone)]
pub struct Origin {
    /// When the request reached the ai-service.
    pub received: Instant,
    /// The OpenTelemetry context of the request's span: the generation's span is its child.
    /// Empty when tracing is off (then parenting on it is a no-op).
    pub trace: opentelemetry::Context,
}

impl Origin {
    /// Now, in the current span (the API request's, when called from its handler).
    pub fn here() -> Self {
        Origin {
            received: Instant::now(),
            trace: tracing::Span::current().context(),
        }
    }

    /// No request behind it (tests, tools): now, in no trace.
    pub fn detached() -> Self {
        Origin {
            received: Instant::now(),
            trace: opentelemetry::Context::new(),
        }
    }
}
