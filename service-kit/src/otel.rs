//! Traces over OpenTelemetry (OTLP/HTTP, protobuf), configured by the standard variables and
//! off when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset: then no exporter, no SDK, no layer, and
//! spans cost what plain `tracing` spans cost.
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (`--otel-exporter-otlp-endpoint`): the collector's base URL
//!   (`http://otel-collector:4318`); spans go to `{it}/v1/traces`. Checked at start (exit 2).
//! - `OTEL_SERVICE_NAME` (`--otel-service-name`): `service.name` of the spans (default: the
//!   binary's name: `gateway`, `ai-service`, `streamline`).
//! - The SDK's own variables apply as documented by OpenTelemetry (`OTEL_TRACES_SAMPLER`,
//!   `OTEL_TRACES_SAMPLER_ARG`, `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`,
//!   `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_RESOURCE_ATTRIBUTES`,
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
//!
//! Spans are batched on the SDK's own thread (the exporter's blocking HTTP client lives there,
//! outside the services' runtimes) and flushed by [`flush_traces`] at shutdown.

use std::sync::Mutex;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The tracing settings (flattened into [`crate::CommonArgs`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TraceArgs {
    /// OpenTelemetry: the OTLP/HTTP collector's base URL (spans go to `{it}/v1/traces`,
    /// protobuf). Unset: no traces are exported at all.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = parse_endpoint)]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// OpenTelemetry: the `service.name` of this process's spans (default: the binary's name).
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,
}

/// Why the OTLP endpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "must be an http:// or https:// URL (the collector's base, e.g. http://collector:4318)"
    )]
    NotHttp,
}

fn parse_endpoint(s: &str) -> Result<String, EndpointError> {
    let s = s.trim();
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or(EndpointError::NotHttp)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || s.parse::<::http::Uri>().is_err() {
        return Err(EndpointError::NotHttp);
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// The provider, kept for [`flush_traces`].
static PROVIDER: Mutex<Option<SdkTracerProvider>> = Mutex::new(None);

/// Why the exporter could not be set up (at start: exit 2).
#[derive(Debug, thiserror::Error)]
#[error("OTLP exporter: {0}")]
pub struct ExporterError(#[from] opentelemetry_otlp::ExporterBuildError);

/// The OpenTelemetry layer for `tracing`, when an endpoint is set (`None`: tracing off).
pub(crate) fn layer<S>(
    args: &TraceArgs,
    default_service: &str,
) -> Result<
    Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>>,
    ExporterError,
>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let Some(base) = &args.otel_exporter_otlp_endpoint else {
        return Ok(None);
    };
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
    // The per-signal variable, when set, wins (the exporter reads it itself).
    if std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() {
        exporter = exporter.with_endpoint(format!("{base}/v1/traces"));
    }
    let exporter = exporter.build()?;
    let service = args
        .otel_service_name
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| default_service.to_string());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            crate::build_info::VERSION,
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("streamline");
    *PROVIDER.lock().unwrap_or_else(|e| e.into_inner()) = Some(provider);
    Ok(Some(tracing_opentelemetry::layer().with_tracer(tracer)))
}

/// Exports the spans still queued and stops the exporter (shutdown; a no-op with tracing
/// off). Blocking work, moved off the runtime's workers.
pub async fn flush_traces() {
    let provider = PROVIDER.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(provider) = provider else { return };
    let flushed = tokio::task::spawn_blocking(move || {
        let _ = provider.force_flush();
        provider.shutdown()
    })
    .await;
    match flushed {
        Ok(Ok(())) => tracing::debug!("traces flushed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "traces not flushed"),
        Err(e) => tracing::warn!(error = %e, "traces not flushed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        assert_eq!(
            parse_endpoint("http://collector:4318/").as_deref(),
            Ok("http://collector:4318")
        );
        assert!(parse_endpoint("https://otel.example.com").is_ok());
        for bad in ["collector:4318", "grpc://c:4317", "http://", "ftp://x"] {
            assert_eq!(parse_endpoint(bad), Err(EndpointError::NotHttp), "{bad}");
        }
    }
}
