//! One WebSocket connection: [`handshake`] (who may connect, the upgrade), [`read_loop`]
//! (reading and dispatching the client's frames, heartbeats, timeouts), [`cmd`] (one file per
//! client command), [`starts`] (chats in flight, which a cancel behind them waits for), and
//! [`frame_guard`] (frame size limits from the headers).

pub mod cmd;
pub mod frame_guard;
pub mod handshake;
pub mod read_loop;
pub mod starts;
