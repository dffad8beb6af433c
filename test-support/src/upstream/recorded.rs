//! What the fake server saw: the requests it received and the clients that went away.

use serde_json::Value;
use tokio::time::Instant;

/// A request as the fake server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// 0 for the first request the server received, 1 for the second, ...
    pub index: usize,
    /// Which TCP connection carried it (0, 1, ... in accept order).
    pub connection: usize,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Null` if it was not JSON).
    pub body: Value,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `body.messages` as `(role, content)` pairs, in order.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .map(|m| {
                        (
                            m["role"].as_str().unwrap_or_default().to_owned(),
                            m["content"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The content of the last `user` message (the prompt of this request).
    pub fn prompt(&self) -> Option<&str> {
        self.body["messages"]
            .as_array()?
            .iter()
            .rev()
            .find(|m| m["role"] == "user")?["content"]
            .as_str()
    }
}

/// The client of a request closed its connection.
#[derive(Debug, Clone, Copy)]
pub struct Disconnect {
    /// When the server saw the end of the connection (read returned 0 or failed).
    pub at: Instant,
    /// Whether it happened while the server was still answering this request (the client
    /// abandoned the answer), rather than on an idle kept-alive connection afterwards.
    pub during_response: bool,
}
