//! Download negotiation through the sharer: a request (203) is passed on
//! (607) and answered (204) only once the sharer accepts (608); a full
//! queue (619) becomes 620; a firewalled sharer is asked to push (500 →
//! 501); the transfer counters (218–221).

use hazel_protocol::napster::{
    DownloadAck, QueueLimitReached, ServerMessage, UploadRequest, UserFile,
};

use super::{error_message, Outbox, Server};
use crate::session::{ConnId, Session, UserInfo};

/// Download requests a sharer may have outstanding (607 sent, no 608 yet).
const MAX_PENDING_UPLOADS: usize = 64;

/// A download the server asked a sharer about (607), awaiting 608.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingUpload {
    downloader: ConnId,
    file: Vec<u8>,
}

/// Where to reach `user` (whose connection is `session`) for the file
/// `name`: the 204 a downloader gets, or the 501 a firewalled sharer gets.
fn address_of(session: &Session, user: &UserInfo, name: Vec<u8>, md5: Vec<u8>) -> DownloadAck {
    DownloadAck {
        nick: user.nick.clone(),
        ip: session.ip,
        port: user.data_port,
        name,
        md5,
        link_speed: user.link_speed,
    }
}

/// Which of a user's transfer counters a 218–221 moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transfer {
    Download,
    Upload,
}

impl Server {
    /// 218–221: a download or upload started (+1) or finished (−1), shown
    /// in whois.
    pub(super) fn count_transfer(&mut self, id: ConnId, transfer: Transfer, delta: i8) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let counter = match transfer {
            Transfer::Download => &mut s.downloads,
            Transfer::Upload => &mut s.uploads,
        };
        *counter = if delta >= 0 {
            counter.saturating_add(1)
        } else {
            counter.saturating_sub(1)
        };
    }

    pub(super) fn download_error(id: ConnId, nick: &str, name: Vec<u8>, out: &mut Outbox) {
        out.message(
            id,
            &ServerMessage::DownloadError(UserFile {
                nick: nick.to_string(),
                name,
            }),
        );
    }

    pub(super) fn download_request(
        &mut self,
        id: ConnId,
        nick: &str,
        name: Vec<u8>,
        out: &mut Outbox,
    ) {
        let Some(sharer) = self.online_by_nick(nick) else {
            return Self::download_error(id, nick, name, out);
        };
        let sharer_id = sharer.id;
        if sharer_id == id || self.catalog.file(sharer_id, &name).is_none() {
            return Self::download_error(id, nick, name, out);
        }
        let Some(me) = self.session(id).and_then(|s| s.user()) else {
            return;
        };
        out.message(
            sharer_id,
            &ServerMessage::UploadRequest(UploadRequest {
                file: UserFile {
                    nick: me.nick.clone(),
                    name: name.clone(),
                },
                link_speed: Some(me.link_speed),
            }),
        );
        let pending = self.pending.entry(sharer_id).or_default();
        if pending.len() >= MAX_PENDING_UPLOADS {
            pending.remove(0);
        }
        pending.push(PendingUpload {
            downloader: id,
            file: name,
        });
    }

    /// Removes and returns the pending request `sharer` is answering.
    pub(super) fn take_pending(
        &mut self,
        sharer: ConnId,
        downloader_nick: &str,
        file: &[u8],
    ) -> Option<ConnId> {
        let downloader = self.online_by_nick(downloader_nick)?.id;
        let list = self.pending.get_mut(&sharer)?;
        let pos = list
            .iter()
            .position(|p| p.downloader == downloader && p.file == file)?;
        list.remove(pos);
        Some(downloader)
    }

    pub(super) fn upload_accept(
        &mut self,
        id: ConnId,
        nick: &str,
        name: Vec<u8>,
        out: &mut Outbox,
    ) {
        let Some(downloader) = self.take_pending(id, nick, &name) else {
            return; // Not asked, or the downloader left: nothing to answer.
        };
        let Some(sharer) = self.session(id) else {
            return;
        };
        let Some(user) = sharer.user() else {
            return;
        };
        match self.catalog.file(id, &name) {
            Some(shared) => {
                let ack = address_of(sharer, user, name, shared.md5());
                out.message(downloader, &ServerMessage::DownloadAck(ack));
            }
            None => Self::download_error(downloader, &user.nick, name, out),
        }
    }

    pub(super) fn queue_limit(
        &mut self,
        id: ConnId,
        nick: &str,
        name: Vec<u8>,
        limit: u32,
        out: &mut Outbox,
    ) {
        let Some(downloader) = self.take_pending(id, nick, &name) else {
            return;
        };
        let (Some(sharer), Some(shared)) = (
            self.session(id).and_then(|s| s.user()),
            self.catalog.file(id, &name),
        ) else {
            return;
        };
        let notice = ServerMessage::QueueLimitReached(QueueLimitReached {
            size: shared.size,
            file: UserFile {
                nick: sharer.nick.clone(),
                name,
            },
            limit,
        });
        out.message(downloader, &notice);
    }

    pub(super) fn firewalled_download(
        &mut self,
        id: ConnId,
        nick: &str,
        name: Vec<u8>,
        out: &mut Outbox,
    ) {
        let Some(sharer) = self.online_by_nick(nick) else {
            let msg = format!("User {nick} is not currently online");
            return out.message(id, &error_message(msg));
        };
        let sharer_id = sharer.id;
        let Some(shared) = self.catalog.file(sharer_id, &name) else {
            return Self::download_error(id, nick, name, out);
        };
        let Some(me) = self.session(id) else {
            return;
        };
        let Some(user) = me.user() else {
            return;
        };
        if user.data_port == 0 {
            return out.message(id, &error_message("Both you and the sharer are firewalled"));
        }
        let ack = address_of(me, user, name, shared.md5());
        out.message(sharer_id, &ServerMessage::FirewalledDownloadAck(ack));
    }
}
