//! `ai-service` binary: parse settings, run, exit 2 on a startup error.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ai_service::config::AiCli::parse();
    service_kit::init_logging(cli.common.log_format);
    service_kit::run_main("ai-service", ai_service::server::run(cli))
}
