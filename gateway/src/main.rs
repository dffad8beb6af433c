//! `gateway` binary: parse settings, run, exit 2 on a startup error.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let config = gateway::config::Config::parse();
    service_kit::init_logging(config.log_format);
    service_kit::run_main("gateway", gateway::server::run(config))
}
