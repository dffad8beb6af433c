//! `gateway` binary: parse settings, run, exit 2 on a startup error.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let config = gateway::config::Config::parse();
    service_kit::init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(gateway::server::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
