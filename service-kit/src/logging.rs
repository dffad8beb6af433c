//! Structured logs (readable text by default, JSON lines for production) and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the OpenTelemetry layer that exports spans
//! ([`crate::otel`]).
//!
//! Each layer has its own filter: `RUST_LOG` (default `info`) decides what is logged, and
//! never which spans are exported. The exporter takes this project's own spans at INFO and
//! above, except each WebSocket connection's (it lasts as long as the socket; every chat in
//! it is a trace of its own), and no events (the logs stay the record of events).

use std::io::IsTerminal as _;

use tracing::Level;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::otel::{ExporterError, TraceArgs};

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The crates whose spans are exported.
const OWN_TARGETS: [&str; 5] = [
    "gateway",
    "ai_service",
    "service_kit",
    "store",
    "streamline",
];

/// Spans that are not exported: a connection's lasts as long as its socket.
const UNEXPORTED_SPANS: [&str; 1] = ["connection"];

fn own_target(target: &str) -> bool {
    OWN_TARGETS
        .iter()
        .any(|t| target == *t || target.strip_prefix(t).is_some_and(|r| r.starts_with("::")))
}

fn exported(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span()
        && *meta.level() <= Level::INFO
        && own_target(meta.target())
        && !UNEXPORTED_SPANS.contains(&meta.name())
}

/// Installs the global subscriber: logs in `format`, and traces when `traces` names an
/// endpoint (`default_service`: the `service.name` unless `OTEL_SERVICE_NAME` says otherwise).
/// Already installed (embedded mode, tests): the first one stays.
pub fn init_logging(
    format: LogFormat,
    traces: &TraceArgs,
    default_service: &str,
) -> Result<(), ExporterError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a container's log stream gets plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = match format {
        LogFormat::Text => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).with_filter(filter).boxed(),
    };
    let registry = tracing_subscriber::registry().with(fmt);
    let otel = crate::otel::layer(traces, default_service)?
        .map(|l| l.with_filter(FilterFn::new(exported)));
    let _ = registry.with(otel).try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_crates_are_exported() {
        assert!(own_target("gateway::socket::cmd::chat"));
        assert!(own_target("ai_service"));
        assert!(!own_target("gateway_extra"));
        assert!(!own_target("fred::router"));
    }
}
