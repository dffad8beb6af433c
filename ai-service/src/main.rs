//! `ai-service` binary: parse settings, run, exit 2 on a startup error.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let config = ai_service::config::Config::parse();
    service_kit::init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ai-service: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(ai_service::server::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ai-service: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
