//! Pings: the server ping (750) echoed, and a user's ping of another
//! through the server (751), whose answer (752) is relayed back.

use hazel_protocol::napster::ServerMessage;

use super::{error_message, Outbox, Server};
use crate::session::ConnId;

impl Server {
    /// 750: clients use the echo as a barrier (TekNap matches its time
    /// stamp), so the arguments go back exactly as they came.
    pub(super) fn echo_ping(id: ConnId, args: Vec<u8>, out: &mut Outbox) {
        out.message(id, &ServerMessage::ServerPing { args });
    }

    /// 751 and 752: passed on to `nick`, or refused if it is not online.
    pub(super) fn relay_ping(&mut self, id: ConnId, nick: &str, ping: bool, out: &mut Outbox) {
        let Some(me) = self.session(id).and_then(|s| s.nick()) else {
            return;
        };
        let me = me.to_string();
        match self.online_by_nick(nick) {
            Some(target) => {
                let message = if ping {
                    ServerMessage::PingUser { nick: me }
                } else {
                    ServerMessage::PongUser { nick: me }
                };
                out.message(target.id, &message);
            }
            None => {
                let msg = format!("ping failed, {nick} is not online");
                out.message(id, &error_message(msg));
            }
        }
    }
}
