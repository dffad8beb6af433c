//! Redis's memory as the soak samples it: `INFO memory`'s `used_memory` and `DBSIZE`, over
//! one short RESP connection per sample (no client library for two commands).

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One reading.
#[derive(Debug, Clone, Copy)]
pub struct RedisMemory {
    /// `used_memory` (bytes).
    pub used_memory: u64,
    /// Keys in the selected database.
    pub keys: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RedisInfoError {
    #[error("redis at 127.0.0.1:{port}: {error}")]
    Io {
        port: u16,
        #[source]
        error: std::io::Error,
    },
    #[error("redis at 127.0.0.1:{0}: no answer within 5 s")]
    Timeout(u16),
    #[error("redis at 127.0.0.1:{port}: unexpected reply {reply:?}")]
    Reply { port: u16, reply: String },
}

/// Reads `used_memory` and the key count of the Redis on loopback port `port`.
pub async fn sample(port: u16) -> Result<RedisMemory, RedisInfoError> {
    tokio::time::timeout(Duration::from_secs(5), query(port))
        .await
        .map_err(|_| RedisInfoError::Timeout(port))?
}

async fn query(port: u16) -> Result<RedisMemory, RedisInfoError> {
    let io = |error| RedisInfoError::Io { port, error };
    let bad = |reply: &str| RedisInfoError::Reply {
        port,
        reply: reply.chars().take(80).collect(),
    };
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(io)?;
    stream
        .write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n*1\r\n$6\r\nDBSIZE\r\n")
        .await
        .map_err(io)?;
    let mut rd = BufReader::new(stream);
    let mut line = String::new();
    rd.read_line(&mut line).await.map_err(io)?;
    let len: usize = line
        .trim_end()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| bad(&line))?;
    let mut info = vec![0u8; len + 2];
    rd.read_exact(&mut info).await.map_err(io)?;
    let info = String::from_utf8_lossy(&info);
    let used_memory = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| bad(&info))?;
    line.clear();
    rd.read_line(&mut line).await.map_err(io)?;
    let keys = line
        .trim_end()
        .strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| bad(&line))?;
    Ok(RedisMemory { used_memory, keys })
}
