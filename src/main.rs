//! `streamline`: the whole stack in one process.
//!
//! `cargo run --release` with nothing else running starts the gateway (WebSocket + web client)
//! and the ai-service (demo model) in this process, on the in-memory store, and prints the URL
//! to open. It is the same code as the two binaries (`gateway::server::start`,
//! `ai_service::server::start`); the gateway still reaches the ai-service over its HTTP API on
//! `AI_ADDR`, as in production.
//!
//! | `REDIS_URL` | `AI_SERVICE_URL` | runs |
//! |---|---|---|
//! | unset | unset | gateway + ai-service, in-memory store (embedded mode) |
//! | set | unset | gateway + ai-service, on Redis |
//! | set | set | only the gateway, on Redis, in front of that ai-service |
//! | unset | set | refused (exit 2): another process cannot share the in-memory store |

mod settings;

use std::net::SocketAddr;
use std::process::ExitCode;

use service_kit::{loopback, StartError};
use settings::{Cli, Mode, ParseError, Settings};
use store::{MemoryStore, StoreBackend};

fn main() -> ExitCode {
    let settings = match Settings::parse_from(std::env::args_os()) {
        Ok(s) => s,
        Err(ParseError::Info(e)) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(ParseError::Invalid(line)) => {
            eprintln!("streamline: {line}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = service_kit::init_logging(
        settings.cli.common.log_format,
        &settings.cli.common.traces,
        "streamline",
    ) {
        eprintln!("streamline: {e}");
        return ExitCode::from(2);
    }
    service_kit::run_main("streamline", run(settings))
}

fn http_url(addr: SocketAddr) -> String {
    format!("http://{}", loopback(addr))
}

/// Why the process could not start (one line, exit 2).
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("ai-service: {0}")]
    Ai(StartError),
    #[error("gateway: {0}")]
    Gateway(StartError),
}

/// Validates everything, binds both addresses, builds the store, starts the services; on any
/// failure before serving, nothing is left running.
async fn run(settings: Settings) -> Result<(), RunError> {
    let Settings { mode, cli } = settings;
    let Cli {
        ai_addr,
        gateway_addr,
        ai_admin_addr,
        gateway_admin_addr,
        common,
        ai: ai_config,
        gateway: mut gw_config,
    } = cli;
    let runs_ai = mode != Mode::GatewayOnly;
    if runs_ai {
        ai_config.validate().map_err(StartError::config)?;
    }
    gw_config.validate().map_err(StartError::config)?;
    common.validate().map_err(StartError::config)?;

    let ai_listeners = if runs_ai {
        Some(ai_service::server::Listeners::bind(ai_addr, ai_admin_addr)?)
    } else {
        None
    };
    let gw_listeners = gateway::server::Listeners::bind(gateway_addr, gateway_admin_addr)?;
    let gw_addr = service_kit::local_addr(&gw_listeners.public)?;
    if let Some(l) = &ai_listeners {
        // In-process, the gateway reaches the ai-service where it was just bound.
        gw_config.ai_service_url = http_url(service_kit::local_addr(&l.api)?);
    }

    // Before the store connects: the store resolves its metric handles at its first command.
    service_kit::install_metrics();
    let backend = match mode {
        Mode::Embedded => {
            let store =
                MemoryStore::new(ai_service::server::memory_store_config(&ai_config, &common))
                    .map_err(StartError::Store)?;
            StoreBackend::memory(store)
        }
        Mode::Redis => {
            StoreBackend::redis(&ai_service::server::redis_store_config(&ai_config, &common))
                .await
                .map_err(StartError::Store)?
        }
        Mode::GatewayOnly => StoreBackend::redis(&gateway::server::redis_store_config(&common))
            .await
            .map_err(StartError::Store)?,
    };
    let provider = match ai_config.provider {
        ai_service::config::ProviderKind::Demo => "demo model".to_string(),
        ai_service::config::ProviderKind::Openai => {
            format!("OpenAI-compatible model {}", ai_config.openai_model)
        }
    };
    let (mode_name, summary) = match mode {
        Mode::Embedded => (
            "embedded",
            format!("embedded mode: in-memory store, {provider}"),
        ),
        Mode::Redis => (
            "single-process-redis",
            format!("single-process mode on {}, {provider}", backend.description),
        ),
        Mode::GatewayOnly => (
            "gateway-only",
            format!(
                "gateway only, on {}, ai-service at {}",
                backend.description, gw_config.ai_service_url
            ),
        ),
    };
    tracing::info!(
        mode = mode_name,
        store = %backend.description,
        gateway_addr = %gw_addr,
        ai_service_url = %gw_config.ai_service_url,
        log_format = ?common.log_format,
        "streamline starting ({summary})"
    );

    let ai = match ai_listeners {
        Some(listeners) => Some(
            ai_service::server::start(&ai_config, &common, listeners, backend.clone())
                .await
                .map_err(RunError::Ai)?,
        ),
        None => None,
    };
    let gw = match gateway::server::start(&gw_config, &common, gw_listeners, backend).await {
        Ok(gw) => gw,
        Err(e) => {
            if let Some(ai) = ai {
                ai.shutdown().await;
            }
            return Err(RunError::Gateway(e));
        }
    };
    println!(
        "streamline: open {}/ ({summary})",
        http_url(gw.local_addr())
    );

    service_kit::shutdown_signal().await;
    tracing::info!("shutdown requested");
    match ai {
        Some(ai) => {
            tokio::join!(gw.shutdown(), ai.shutdown());
        }
        None => gw.shutdown().await,
    }
    service_kit::flush_traces().await;
    tracing::info!("streamline stopped");
    Ok(())
}
