//! `--healthcheck[=live|ready]`: the binary asks its own `GET /healthz` (`live`, the default)
//! or `GET /readyz` (`ready`) on its configured address and exits 0 (200) or 1 (anything
//! else), without starting the service. This is what a container's `HEALTHCHECK` (and
//! Compose's) runs, so the runtime image needs no `curl`.
//!
//! A plain HTTP/1.1 request over a blocking socket, bounded by [`TIMEOUT`] (no runtime, no HTTP
//! client: nothing that could itself hang or need configuration). An unspecified listen
//! address (`0.0.0.0`, `[::]`) is asked on loopback.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// The `--healthcheck` setting, declared once for both binaries (flattened into each one's
/// command line).
#[derive(Debug, Clone, clap::Args)]
pub struct HealthcheckArg {
    /// Check the service running with this configuration and exit 0 if it answers 200, 1
    /// otherwise; starts nothing. `live` (the default): `GET /healthz` on ADMIN_ADDR; `ready`:
    /// `GET /readyz`. For container health checks (the images have no curl).
    #[arg(long, value_enum, value_name = "PROBE", num_args = 0..=1, require_equals = true, default_missing_value = "live")]
    pub healthcheck: Option<Probe>,
}

/// Which route `--healthcheck` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Probe {
    /// `GET /healthz`: the process serves.
    Live,
    /// `GET /readyz`: the process can do its work (Redis answers, not draining).
    Ready,
}

impl Probe {
    pub fn path(self) -> &'static str {
        match self {
            Probe::Live => "/healthz",
            Probe::Ready => "/readyz",
        }
    }
}

/// Bound on connecting, writing and reading.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Why the check failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("cannot reach {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr} answered `{status_line}`")]
    Status {
        addr: SocketAddr,
        status_line: String,
    },
}

/// Where to reach, from this machine, a listener bound to `addr` (an unspecified address,
/// `0.0.0.0` or `[::]`, on loopback).
pub fn loopback(addr: SocketAddr) -> SocketAddr {
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

/// `GET` of `probe`'s route on the listener bound to `listen`.
pub fn check(listen: SocketAddr, probe: Probe) -> Result<(), HealthError> {
    let addr = loopback(listen);
    let io = |source| HealthError::Io { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(io)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    // One write: a request split over several segments could meet a server that answers
    // after the first and resets the connection for the rest.
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: healthcheck\r\nConnection: close\r\n\r\n",
        probe.path()
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    // The status line is all we need; read a bounded prefix.
    let mut buf = [0u8; 256];
    let mut n = 0;
    while n < buf.len() {
        match stream.read(&mut buf[n..]).map_err(io)? {
            0 => break,
            k => n += k,
        }
        if buf[..n].contains(&b'\n') {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let status_line = head.lines().next().unwrap_or("").trim().to_string();
    let mut parts = status_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(v), Some("200")) if v.starts_with("HTTP/1.") => Ok(()),
        _ => Err(HealthError::Status { addr, status_line }),
    }
}

/// Runs the check for `name` and turns it into the exit code (the reason on stderr).
pub fn run_healthcheck(name: &str, listen: SocketAddr, probe: Probe) -> ExitCode {
    match check(listen, probe) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: unhealthy: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static str) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            // Read the whole request head, as a server does, before answering.
            let mut req = Vec::new();
            let mut buf = [0u8; 512];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(answer.as_bytes());
        });
        addr
    }

    #[test]
    fn a_200_is_healthy_and_anything_else_is_not() {
        let ok = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        assert!(check(ok, Probe::Live).is_ok());
        let bad = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert!(matches!(
            check(bad, Probe::Ready),
            Err(HealthError::Status { .. })
        ));
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(matches!(
            check(closed, Probe::Live),
            Err(HealthError::Io { .. })
        ));
    }

    #[test]
    fn an_unspecified_address_is_asked_on_loopback() {
        assert_eq!(
            loopback("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            loopback("[::]:8080".parse().unwrap()),
            "[::1]:8080".parse::<SocketAddr>().unwrap()
        );
    }
}
