//! `gateway` binary: parse settings, run, exit 2 on a startup error;
//! `--healthcheck[=live|ready]`: ask this configuration's own `/healthz` (`/readyz`) on its admin port and exit
//! 0 or 1 (nothing starts).

fn main() -> std::process::ExitCode {
    let cli = match service_kit::parse_args::<gateway::config::GatewayCli>("gateway") {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if let Some(probe) = cli.health.healthcheck {
        return service_kit::run_healthcheck("gateway", cli.admin_addr, probe);
    }
    if let Err(e) = service_kit::init_logging(cli.common.log_format, &cli.common.traces, "gateway")
    {
        eprintln!("gateway: {e}");
        return std::process::ExitCode::from(2);
    }
    service_kit::run_main("gateway", gateway::server::run(cli))
}
