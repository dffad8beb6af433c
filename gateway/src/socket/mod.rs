//! One WebSocket connection: [`handshake`] (who may connect, the upgrade), [`read_loop`]
//! (reading and dispatching the client's frames, heartbeats, timeouts), [`cmd`] (one file per
//! client command), and [`frame_guard`] (frame size limits from the headers).

pub mod cmd;
pub mod frame_guard;
pub mod handshake;
pub mod read_loop;
