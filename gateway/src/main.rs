//! `gateway` binary: parse settings, run, exit 2 on a startup error.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = gateway::config::GatewayCli::parse();
    service_kit::init_logging(cli.common.log_format);
    service_kit::run_main("gateway", gateway::server::run(cli))
}
