//! What both binaries need to be well-behaved processes: one log format switch, one duration
//! syntax for every setting, and one way to learn that it is time to stop.

mod duration;
mod logging;
mod metrics;
mod process;
mod redis_tls;
mod signal;
mod start_error;

pub use duration::parse_duration;
pub use logging::{init_logging, LogFormat};
pub use metrics::{install_metrics, render_metrics};
pub use process::run_main;
pub use redis_tls::RedisTlsArgs;
pub use signal::shutdown_signal;
pub use start_error::StartError;
