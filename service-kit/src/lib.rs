//! What both binaries need to be well-behaved processes: the settings they share (declared
//! once), one log format switch, traces (OpenTelemetry, off unless configured), one access log
//! middleware with request ids, one duration syntax for every setting, secrets that stay out
//! of logs, binding and the routes every server has, metrics, and one way to learn that it is
//! time to stop.

mod access_log;
mod cli;
mod common_args;
mod duration;
mod healthcheck;
mod http;
mod logging;
mod metrics;
mod otel;
mod process;
mod redis_tls;
mod request_id;
mod secret;
mod signal;
mod start_error;
pub mod trace_context;

pub use access_log::{access_log, redacted_path};
pub use cli::{is_info, one_line_error, parse_args};
pub use common_args::{CommonArgs, RedisArgs};
pub use duration::parse_duration;
pub use healthcheck::{
    check as healthcheck, loopback, run_healthcheck, HealthError, HealthcheckArg, Probe,
};
pub use http::{bind, healthz, local_addr, metrics_response, Served};
pub use logging::{init_logging, LogFormat};
pub use metrics::{
    buckets, build_info, install_metrics, install_metrics_with_upkeep, metrics_upkeeps,
    prefix::PREFIX as METRICS_PREFIX, process_stats, render_metrics, wait_for_upkeeps,
    METRICS_UPKEEP_INTERVAL,
};
pub use otel::{flush_traces, EndpointError, ExporterError, TraceArgs};
pub use process::run_main;
pub use redis_tls::RedisTlsArgs;
pub use request_id::{RequestId, X_REQUEST_ID};
pub use secret::{
    bearer_token, check_bearer_token, parse_secret, BadToken, Secret, ShortSecret, MIN_SECRET_LEN,
};
pub use signal::shutdown_signal;
pub use start_error::StartError;
