//! What both binaries need to be well-behaved processes: the settings they share (declared
//! once), one log format switch, one duration syntax for every setting, secrets that stay out
//! of logs, binding and the routes every server has, metrics, and one way to learn that it is
//! time to stop.

mod common_args;
mod duration;
mod http;
mod logging;
mod metrics;
mod process;
mod redis_tls;
mod secret;
mod signal;
mod start_error;

pub use common_args::{CommonArgs, RedisArgs};
pub use duration::parse_duration;
pub use http::{bind, healthz, metrics_response};
pub use logging::{init_logging, LogFormat};
pub use metrics::{
    install_metrics, install_metrics_with_upkeep, metrics_upkeeps, render_metrics,
    wait_for_upkeeps, METRICS_UPKEEP_INTERVAL,
};
pub use process::run_main;
pub use redis_tls::RedisTlsArgs;
pub use secret::{parse_secret, Secret, ShortSecret, MIN_SECRET_LEN};
pub use signal::shutdown_signal;
pub use start_error::StartError;
