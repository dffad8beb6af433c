//! `heartbeat`: answered at once with `heartbeat_ack`, never rate-limited.

use shared_proto::ServerFrame;

use super::Commands;

impl Commands {
    pub(super) fn heartbeat(&self) {
        self.sink.send(&ServerFrame::HeartbeatAck {});
    }
}
