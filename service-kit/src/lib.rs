//! What both binaries need to be well-behaved processes: one log format switch, one duration
//! syntax for every setting, and one way to learn that it is time to stop.

mod duration;
mod logging;
mod metrics;
mod process;
mod redis_url;
mod signal;
mod start_error;

pub use duration::parse_duration;
pub use logging::{init_logging, LogFormat};
pub use metrics::{
    install_metrics, install_metrics_with_upkeep, metrics_upkeeps, render_metrics,
    wait_for_upkeeps, METRICS_UPKEEP_INTERVAL,
};
pub use process::run_main;
pub use redis_url::check_redis_url;
pub use signal::shutdown_signal;
pub use start_error::StartError;
