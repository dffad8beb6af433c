//! `gateway` binary: parse settings, run, exit 2 on a startup error.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = gateway::config::GatewayCli::parse();
    if let Err(e) = service_kit::init_logging(cli.common.log_format, &cli.common.traces, "gateway")
    {
        eprintln!("gateway: {e}");
        return std::process::ExitCode::from(2);
    }
    service_kit::run_main("gateway", gateway::server::run(cli))
}
