//! `ai-service` binary: parse settings, run, exit 2 on a startup error.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let config = ai_service::config::Config::parse();
    service_kit::init_logging(config.log_format);
    service_kit::run_main("ai-service", ai_service::server::run(config))
}
