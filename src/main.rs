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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;

use settings::{Mode, ParseError, Settings};
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
    service_kit::init_logging(settings.ai.log_format);
    service_kit::run_main("streamline", run(settings))
}

/// Where to reach a listener from this machine (`0.0.0.0` → `127.0.0.1`).
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

fn http_url(addr: SocketAddr) -> String {
    format!("http://{}", loopback(addr))
}

/// Validates everything, binds both addresses, builds the store, starts the services; on any
/// failure before serving, nothing is left running.
async fn run(settings: Settings) -> Result<(), String> {
    let Settings {
        mode,
        ai: ai_config,
        gateway: mut gw_config,
    } = settings;
    let runs_ai = mode != Mode::GatewayOnly;
    if runs_ai {
        ai_config
            .validate()
            .map_err(|e| format!("invalid configuration: {e}"))?;
    }
    // The gateway's own checks (AI_SERVICE_URL included) before anything binds; in-process,
    // its ai-service URL is only known once AI_ADDR is bound, so check a placeholder first.
    if runs_ai {
        gw_config.ai_service_url = http_url(ai_config.addr);
    }
    gw_config
        .validate()
        .map_err(|e| format!("invalid configuration: {e}"))?;

    let ai_listener = if runs_ai {
        Some(ai_service::server::bind(ai_config.addr).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let gw_listener = gateway::server::bind(gw_config.addr).map_err(|e| e.to_string())?;
    let gw_addr = gw_listener.local_addr().map_err(|e| e.to_string())?;
    if let Some(l) = &ai_listener {
        let ai_addr = l.local_addr().map_err(|e| e.to_string())?;
        gw_config.ai_service_url = http_url(ai_addr);
    }

    let backend = match mode {
        Mode::Embedded => {
            let store = MemoryStore::new(ai_service::server::memory_store_config(&ai_config))
                .map_err(|e| format!("store: {e}"))?;
            StoreBackend::memory(store)
        }
        Mode::Redis => StoreBackend::redis(&ai_service::server::redis_store_config(&ai_config))
            .await
            .map_err(|e| format!("store: {e}"))?,
        Mode::GatewayOnly => StoreBackend::redis(&gateway::server::redis_store_config(&gw_config))
            .await
            .map_err(|e| format!("store: {e}"))?,
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
        log_format = ?ai_config.log_format,
        "streamline starting ({summary})"
    );

    let ai = match ai_listener {
        Some(listener) => Some(
            ai_service::server::start(&ai_config, listener, backend.clone())
                .await
                .map_err(|e| format!("ai-service: {e}"))?,
        ),
        None => None,
    };
    let gw = match gateway::server::start(&gw_config, gw_listener, backend).await {
        Ok(gw) => gw,
        Err(e) => {
            if let Some(ai) = ai {
                ai.shutdown().await;
            }
            return Err(format!("gateway: {e}"));
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
    tracing::info!("streamline stopped");
    Ok(())
}
