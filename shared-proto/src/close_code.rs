//! WebSocket close codes the gateway uses, documented in `docs/PROTOCOL.md`.

/// A close code and the fixed reason text sent with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the client closed, the gateway answers in kind.
    Normal,
    /// 1001: the gateway is shutting down; reconnect (to any replica) and resume.
    GoingAway,
    /// 1002: the client broke the WebSocket protocol.
    ProtocolError,
    /// 1007: a text frame that is not valid UTF-8.
    InvalidPayload,
    /// 1009: a frame over the size limit (`MAX_FRAME_BYTES`).
    TooBig,
    /// 1011: an internal error ended the session.
    InternalError,
    /// 4000: no frame from the client for `CLIENT_TIMEOUT`.
    ClientTimeout,
    /// 4001: the same session connected again on this gateway; this older socket is closed.
    SessionReplaced,
    /// 4003: the connection's login token expired (plus `JWT_LEEWAY`) without an `auth`
    /// refresh. Reason: "token expired". Reconnect with a fresh token and resume; running
    /// answers go on meanwhile.
    TokenExpired,
    /// 4008: the client did not read fast enough (send queue over `SEND_QUEUE_BYTES`, or one
    /// write blocked longer than `SEND_TIMEOUT`). Reason: "slow consumer".
    SlowConsumer,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::InvalidPayload => 1007,
            CloseCode::TooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::ClientTimeout => 4000,
            CloseCode::SessionReplaced => 4001,
            CloseCode::TokenExpired => 4003,
            CloseCode::SlowConsumer => 4008,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "bye",
            CloseCode::GoingAway => "going away",
            CloseCode::ProtocolError => "protocol error",
            CloseCode::InvalidPayload => "invalid utf-8",
            CloseCode::TooBig => "frame too big",
            CloseCode::InternalError => "internal error",
            CloseCode::ClientTimeout => "client timeout",
            CloseCode::SessionReplaced => "session replaced",
            CloseCode::TokenExpired => "token expired",
            CloseCode::SlowConsumer => "slow consumer",
        }
    }
}
