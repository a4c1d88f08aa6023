//! Browsing a user's files: through the server (211 → 212s and 213) and
//! directly between clients (640 → 640/641, or a 642 refusal).

use std::time::Instant;

use hazel_protocol::napster::{
    BrowseEnd, BrowseEntry, DirectBrowseAddress, DirectBrowseError, DirectBrowseRequest,
    ServerMessage,
};
use log::debug;

use super::{error_message, Outbox, Server};
use crate::session::{ConnId, Session};

/// Direct browses (640) one client may have waiting for an answer.
const MAX_PENDING_BROWSES: usize = 16;

/// A direct browse the server passed on (640), awaiting the browsed
/// client's accept (641).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingBrowse {
    browsee: ConnId,
    browsee_nick: String,
    deadline: Instant,
}

impl Server {
    pub(super) fn browse(&mut self, id: ConnId, nick: &str, out: &mut Outbox) {
        let Some(target) = self.online_by_nick(nick) else {
            let msg = format!("User {nick} is not currently online");
            out.message(id, &error_message(msg));
            out.message(
                id,
                &ServerMessage::BrowseEnd(BrowseEnd {
                    nick: nick.to_string(),
                    ip: None,
                }),
            );
            return;
        };
        let Some(user) = target.user() else {
            return;
        };
        for f in self.catalog.files_of(target.id) {
            out.message(
                id,
                &ServerMessage::BrowseEntry(BrowseEntry {
                    nick: user.nick.clone(),
                    file: f.to_shared_file(),
                }),
            );
        }
        out.message(
            id,
            &ServerMessage::BrowseEnd(BrowseEnd {
                nick: user.nick.clone(),
                ip: Some(target.ip),
            }),
        );
    }

    /// 640: ask `nick` to let the sender browse its files directly, or
    /// refuse at once (642) when that cannot work, so the client falls back
    /// to a browse through the server (211) without waiting. As opennap-ng
    /// does, except that the server also answers when the browsed client
    /// never does (see [`Server::expire_browses`]).
    pub(super) fn direct_browse(&mut self, id: ConnId, nick: &str, now: Instant, out: &mut Outbox) {
        let Some(me) = self.session(id) else {
            return;
        };
        let Some(my) = me.user() else {
            return;
        };
        let (my_nick, my_ip, my_port) = (my.nick.clone(), me.ip, my.data_port);
        let refuse = |out: &mut Outbox, nick: &str, message: String| {
            out.message(
                id,
                &ServerMessage::DirectBrowseError(DirectBrowseError {
                    nick: nick.to_string(),
                    message: message.into_bytes(),
                }),
            );
        };
        let Some(target) = self.online_by_nick(nick) else {
            return refuse(out, nick, format!("{nick} is not online."));
        };
        let Some(browsee) = target.user() else {
            return;
        };
        let (browsee_id, browsee_nick, browsee_port) =
            (target.id, browsee.nick.clone(), browsee.data_port);
        if my_port == 0 && browsee_port == 0 {
            let msg = format!(
                "Both you and {browsee_nick} are firewalled; you cannot browse or download from them."
            );
            return refuse(out, &browsee_nick, msg);
        }
        if self.catalog.count_of(browsee_id) == 0 {
            let msg = format!("{browsee_nick} is not sharing any files.");
            return refuse(out, &browsee_nick, msg);
        }
        let waiting = self.browses.entry(id).or_default();
        waiting.retain(|p| p.browsee != browsee_id);
        if waiting.len() >= MAX_PENDING_BROWSES {
            let msg = "Too many browse requests waiting; try again later.".to_string();
            return refuse(out, &browsee_nick, msg);
        }
        waiting.push(PendingBrowse {
            browsee: browsee_id,
            browsee_nick,
            deadline: now + self.config.direct_browse_timeout,
        });
        // A firewalled client cannot be reached: it is given the
        // requester's address to push its list to.
        let connect_to = (browsee_port == 0).then_some((my_ip, my_port));
        out.message(
            browsee_id,
            &ServerMessage::DirectBrowseRequest(DirectBrowseRequest {
                nick: my_nick,
                connect_to,
            }),
        );
    }

    /// 641 from a browsed client: tell the requester where to connect. An
    /// accept nobody is waiting for goes nowhere.
    pub(super) fn direct_browse_accept(&mut self, id: ConnId, requester: &str, out: &mut Outbox) {
        let Some(requester) = self.online_by_nick(requester).map(|s| s.id) else {
            return;
        };
        let Some(waiting) = self.browses.get_mut(&requester) else {
            return;
        };
        let Some(pos) = waiting.iter().position(|p| p.browsee == id) else {
            debug!("{}: direct browse accept nobody asked for", self.who(id));
            return;
        };
        waiting.remove(pos);
        let Some(me) = self.session(id) else {
            return;
        };
        let Some(user) = me.user() else {
            return;
        };
        let accept = ServerMessage::DirectBrowseAccept(DirectBrowseAddress {
            nick: user.nick.clone(),
            ip: me.ip,
            port: user.data_port,
        });
        out.message(requester, &accept);
    }

    /// Answers (642) the direct browses whose browsed client left or did not
    /// accept in time, so no client waits on an answer that will not come.
    pub(super) fn expire_browses(&mut self, now: Instant, out: &mut Outbox) {
        if self.browses.is_empty() {
            return;
        }
        let mut expired = Vec::new();
        for (&requester, waiting) in self.browses.iter_mut() {
            waiting.retain(|p| {
                let online = self
                    .sessions
                    .get(&p.browsee)
                    .and_then(Session::user)
                    .is_some();
                let gone = !online;
                if gone || now >= p.deadline {
                    let message = if gone {
                        format!("{} is not online.", p.browsee_nick)
                    } else {
                        format!("{} did not answer the browse request.", p.browsee_nick)
                    };
                    expired.push((requester, p.browsee_nick.clone(), message));
                    false
                } else {
                    true
                }
            });
        }
        self.browses.retain(|_, waiting| !waiting.is_empty());
        expired.sort();
        for (requester, nick, message) in expired {
            out.message(
                requester,
                &ServerMessage::DirectBrowseError(DirectBrowseError {
                    nick,
                    message: message.into_bytes(),
                }),
            );
        }
    }
}
