//! Where and how a client connects: the gateway's address, the token, tungstenite's buffers,
//! the socket's receive buffer and the loopback source address.
//!
//! One dialer serves both users of the client. Tests dial with the defaults (tungstenite's
//! buffers, the OS's choice of source address) and the harness's token; `loadgen` holds tens
//! of thousands of connections, so it asks for small buffers and spreads its connections
//! over loopback source addresses (one address's ephemeral ports hold about 28,000).

use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use shared_proto::{ServerFrame, PROTOCOL_VERSION};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

use super::{ClientError, Incoming, WsClient};
use crate::PATIENCE;

/// The token a client type sends when its URL carries none: tests use the harness's JWT,
/// `loadgen` none (it sets [`Dialer::token`] from its flag instead).
pub trait Credentials {
    fn token() -> Option<String>;
}

/// No default token.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCredentials;

impl Credentials for NoCredentials {
    fn token() -> Option<String> {
        None
    }
}

/// tungstenite's buffers per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffers {
    /// tungstenite's defaults (what the suites use).
    Default,
    /// A read buffer of `read_buffer` bytes, writes straight through (frames are small and sent
    /// one at a time), at most 1 MiB per frame and message: a connection costs a few KiB.
    Small { read_buffer: usize },
}

/// Which local address a connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAddress {
    /// The OS's choice (127.0.0.1 towards a loopback gateway).
    Any,
    /// Connection number `idx` binds 127.0.(n >> 8).(n & 255) with n = 1 + idx / per_address,
    /// so that sockets in TIME_WAIT never exhaust one address's ports.
    SpreadOverLoopback { per_address: usize },
}

/// Whether small writes wait for earlier ones to be acknowledged (Nagle's algorithm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nagle {
    /// The OS default (on): what tokio-tungstenite's `connect_async` does, and so the timing
    /// the suites were written against.
    On,
    /// `TCP_NODELAY`: every frame leaves at once (`loadgen` measures latency).
    Off,
}

/// How to reach a gateway's WebSocket endpoint.
#[derive(Debug, Clone)]
pub struct Dialer {
    /// As given, query included (e.g. `ws://127.0.0.1:8080/ws?session_id=…`).
    url: String,
    /// `HOST:PORT` of the URL.
    host_port: String,
    /// Where the TCP connection goes; `None`: resolve `host_port` at each connect.
    addr: Option<SocketAddr>,
    /// Sent as the `token` query parameter, unless the URL has one already.
    pub token: Option<String>,
    pub buffers: Buffers,
    pub source: SourceAddress,
    pub nagle: Nagle,
}

impl Dialer {
    /// A dialer for `url` (`ws://HOST:PORT/PATH[?QUERY]`) with the defaults: no token,
    /// tungstenite's buffers, the OS's source address, Nagle on.
    pub fn new(url: &str) -> Result<Dialer, ClientError> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| ClientError::BadUrl(url.to_string()))?;
        let host_port = rest.split(['/', '?']).next().unwrap_or(rest);
        if host_port
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(ClientError::BadUrl(url.to_string()));
        }
        Ok(Dialer {
            url: url.to_string(),
            host_port: host_port.to_string(),
            addr: host_port.parse().ok(),
            token: None,
            buffers: Buffers::Default,
            source: SourceAddress::Any,
            nagle: Nagle::On,
        })
    }

    /// The same dialer towards another TCP address (the URL, and so the `Host` header, stays).
    pub fn to_addr(mut self, addr: SocketAddr) -> Dialer {
        self.addr = Some(addr);
        self
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The source address of connection number `idx`.
    pub fn source_ip(&self, idx: usize) -> Ipv4Addr {
        match self.source {
            SourceAddress::Any => Ipv4Addr::LOCALHOST,
            SourceAddress::SpreadOverLoopback { per_address } => {
                let n = 1 + idx / per_address.max(1);
                Ipv4Addr::new(127, 0, ((n >> 8) & 0xff) as u8, (n & 0xff) as u8)
            }
        }
    }

    /// Opens the TCP connection of connection number `idx` (`recv_buffer`: SO_RCVBUF).
    pub async fn tcp(
        &self,
        idx: usize,
        recv_buffer: Option<u32>,
    ) -> Result<TcpStream, ClientError> {
        let source_ip = self.source_ip(idx);
        let tcp = |error| ClientError::Tcp { source_ip, error };
        let addr = match self.addr {
            Some(a) => a,
            None => tokio::net::lookup_host(&self.host_port)
                .await
                .map_err(|e| ClientError::Resolve {
                    host: self.host_port.clone(),
                    reason: e.to_string(),
                })?
                .find(SocketAddr::is_ipv4)
                .ok_or_else(|| ClientError::Resolve {
                    host: self.host_port.clone(),
                    reason: "no IPv4 address".into(),
                })?,
        };
        let socket = TcpSocket::new_v4().map_err(tcp)?;
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).map_err(tcp)?;
        }
        if matches!(self.source, SourceAddress::SpreadOverLoopback { .. })
            && source_ip != Ipv4Addr::LOCALHOST
        {
            socket
                .bind(SocketAddr::new(IpAddr::V4(source_ip), 0))
                .map_err(tcp)?;
        }
        let stream = socket.connect(addr).await.map_err(tcp)?;
        if self.nagle == Nagle::Off {
            stream.set_nodelay(true).map_err(tcp)?;
        }
        Ok(stream)
    }

    /// The request URL: the dialer's URL, then `query`, then the token (unless the URL has a
    /// `token` parameter already).
    pub fn request_url(&self, query: Option<&str>, token: Option<&str>) -> String {
        let mut url = self.url.clone();
        if let Some(q) = query {
            url = with_param(&url, q);
        }
        match token {
            Some(t) if !has_token(&url) => with_param(&url, &format!("token={t}")),
            _ => url,
        }
    }

    fn config(&self) -> Option<WebSocketConfig> {
        match self.buffers {
            Buffers::Default => None,
            Buffers::Small { read_buffer } => Some(
                WebSocketConfig::default()
                    .read_buffer_size(read_buffer)
                    .write_buffer_size(0)
                    .max_write_buffer_size(64 * 1024)
                    .max_message_size(Some(1 << 20))
                    .max_frame_size(Some(1 << 20)),
            ),
        }
    }

    /// Connects connection number `idx` (`query` appended to the URL, e.g. to resume;
    /// `recv_buffer`: SO_RCVBUF) and reads `welcome`. The token is [`Dialer::token`], else
    /// `C`'s default.
    pub async fn connect<C: Credentials>(
        &self,
        idx: usize,
        query: Option<&str>,
        recv_buffer: Option<u32>,
    ) -> Result<WsClient<C>, ClientError> {
        let stream = self.tcp(idx, recv_buffer).await?;
        let token = self.token.clone().or_else(C::token);
        let url = self.request_url(query, token.as_deref());
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, self.config())
            .await
            .map_err(|e| ClientError::Handshake(Box::new(e)))?;
        let mut client = WsClient {
            ws,
            session_id: Uuid::nil(),
            resume_token: String::new(),
            welcome: ServerFrame::HeartbeatAck {},
            credentials: PhantomData,
        };
        match tokio::time::timeout(PATIENCE, client.read()).await {
            Ok(Incoming::Frame(
                w @ ServerFrame::Welcome {
                    protocol: PROTOCOL_VERSION,
                    ..
                },
            )) => {
                if let ServerFrame::Welcome {
                    session_id,
                    resume_token,
                    ..
                } = &w
                {
                    client.session_id = *session_id;
                    client.resume_token = resume_token.clone();
                }
                client.welcome = w;
                Ok(client)
            }
            Ok(other) => Err(ClientError::NoWelcome(format!("{other:?}"))),
            Err(_) => Err(ClientError::WelcomeTimeout(PATIENCE)),
        }
    }
}

/// `url` with `param` (`k=v`) added to its query.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// Whether `url`'s query has a `token` parameter.
pub fn has_token(url: &str) -> bool {
    url.split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("token=")))
}

/// The interval at which a client should send heartbeats, from its `welcome` (at least
/// 100 ms, so a bad value cannot make a client spin).
pub fn heartbeat_interval(welcome: &ServerFrame) -> Duration {
    match welcome {
        ServerFrame::Welcome {
            heartbeat_interval_ms,
            ..
        } => Duration::from_millis((*heartbeat_interval_ms).max(100)),
        _ => Duration::from_secs(20),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_source_addresses() {
        assert!(matches!(
            Dialer::new("http://x:1/ws"),
            Err(ClientError::BadUrl(_))
        ));
        assert!(matches!(
            Dialer::new("ws://127.0.0.1/ws"),
            Err(ClientError::BadUrl(_))
        ));
        let mut d = Dialer::new("ws://127.0.0.1:8080/ws").unwrap();
        assert_eq!(d.request_url(None, None), "ws://127.0.0.1:8080/ws");
        assert_eq!(
            d.request_url(Some("session_id=s"), Some("t")),
            "ws://127.0.0.1:8080/ws?session_id=s&token=t"
        );
        let with = Dialer::new("ws://127.0.0.1:8080/ws?token=mine").unwrap();
        assert_eq!(
            with.request_url(None, Some("t")),
            "ws://127.0.0.1:8080/ws?token=mine"
        );
        assert_eq!(d.source_ip(5), Ipv4Addr::LOCALHOST);
        d.source = SourceAddress::SpreadOverLoopback { per_address: 2 };
        assert_eq!(d.source_ip(1), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(d.source_ip(2), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(d.source_ip(2 * 300), Ipv4Addr::new(127, 0, 1, 45));
        let host = Dialer::new("ws://localhost:8080/ws").unwrap();
        assert!(host.addr.is_none());
    }
}
