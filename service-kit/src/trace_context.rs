//! W3C Trace Context (`traceparent`) on the wire: parsed strictly, written from the current
//! span, so that one chat is one trace across the gateway, the ai-service and the model server.
//!
//! Only `traceparent` is carried (`tracestate` is vendor data this stack has no use for). A
//! value that is not a valid W3C `traceparent` is ignored, never an error: the hop then starts
//! a trace of its own. With tracing off, spans carry no OpenTelemetry context and nothing is
//! written.

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::Context;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The header (and the `chat` frame field) name.
pub const TRACEPARENT: &str = "traceparent";

/// Why a `traceparent` value was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceparentError {
    #[error("not `version-traceid-parentid-flags` in lowercase hex")]
    Format,
    #[error("version ff is invalid")]
    Version,
    #[error("an all-zero trace id or parent id is invalid")]
    Zero,
}

/// Parses a W3C `traceparent` (version `00`, or a later version's first four fields, as the
/// spec asks) into a remote span context.
pub fn parse_traceparent(value: &str) -> Result<SpanContext, TraceparentError> {
    let v = value.trim();
    let mut parts = v.splitn(5, '-');
    let (Some(version), Some(trace), Some(parent), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TraceparentError::Format);
    };
    let rest = parts.next();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !hex(version, 2) || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2) {
        return Err(TraceparentError::Format);
    }
    if version == "ff" {
        return Err(TraceparentError::Version);
    }
    // Version 00 has exactly four fields; a later version may append more.
    if version == "00" && rest.is_some() {
        return Err(TraceparentError::Format);
    }
    let trace_id = TraceId::from_hex(trace).map_err(|_| TraceparentError::Format)?;
    let span_id = SpanId::from_hex(parent).map_err(|_| TraceparentError::Format)?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return Err(TraceparentError::Zero);
    }
    let flags = u8::from_str_radix(flags, 16).map_err(|_| TraceparentError::Format)?;
    Ok(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & TraceFlags::SAMPLED.to_u8()),
        true,
        TraceState::default(),
    ))
}

/// The context to parent a span on, from a `traceparent` value; `None` if there is none or it
/// is invalid (then the span starts its own trace).
pub fn remote_parent(value: Option<&str>) -> Option<Context> {
    let sc = parse_traceparent(value?).ok()?;
    Some(Context::new().with_remote_span_context(sc))
}

/// The `traceparent` value of `cx`'s span; `None` when it has none (tracing off).
pub fn traceparent_of(cx: &Context) -> Option<String> {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    Some(format!(
        "00-{:032x}-{:016x}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    ))
}

/// The `traceparent` of a tracing span (for an outgoing request made inside it).
pub fn traceparent_of_span(span: &tracing::Span) -> Option<String> {
    traceparent_of(&span.context())
}

/// Makes `span` a child of `parent` when there is one, else the root of a trace of its own
/// (even inside another span: a chat inside a connection is its own trace). A no-op with
/// tracing off. Call before the span is first entered.
pub fn set_parent(span: &tracing::Span, parent: Option<Context>) {
    let _ = span.set_parent(parent.unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_parses_and_formats_back() {
        let sc = parse_traceparent(GOOD).unwrap();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        let cx = Context::new().with_remote_span_context(sc);
        assert_eq!(traceparent_of(&cx).as_deref(), Some(GOOD));
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
            "00-4bf92f3577b34da6a3ce929d0e0e4736+00f067aa0ba902b7-01",
        ] {
            assert_eq!(
                parse_traceparent(bad),
                Err(TraceparentError::Format),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Err(TraceparentError::Version)
        );
        assert_eq!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Err(TraceparentError::Zero)
        );
        assert_eq!(
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            Err(TraceparentError::Zero)
        );
        assert!(remote_parent(Some("garbage")).is_none());
        assert!(remote_parent(None).is_none());
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        let v = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more";
        let sc = parse_traceparent(v).unwrap();
        assert!(!sc.is_sampled());
    }

    #[test]
    fn no_span_no_traceparent() {
        assert_eq!(traceparent_of(&Context::new()), None);
    }
}
