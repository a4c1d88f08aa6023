//! Our library on index servers (100/102, kept in sync), uploads they
//! ask us for (607 → 608 or 619; 220/221 around each upload), and direct
//! browses of our list (640 → 641, then `GETLIST` on the data port).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

use hazel_protocol::napster::transfer::{
    encode_list_end, encode_list_entry, encode_list_nick, encode_sendlist,
};
use hazel_protocol::napster::{
    ClientMessage, DirectBrowseRequest, QueueLimit, SharedFileRef, UserFile,
};
use hazel_protocol::text::{escape_bytes, Escaped};

use super::{
    IndexShare, ACCEPT_TIMEOUT, BROWSE_ACCEPT_TIMEOUT, LIST_PUSHES_PER_INTERVAL,
    LIST_PUSH_INTERVAL, SHARE_OUTPUT,
};
use crate::core::{Action, Core, CoreEvent};

impl Core {
    /// The library as shared to index servers (after a scan): every server
    /// online gets the difference.
    pub fn set_index_shares(&mut self, shares: Vec<IndexShare>) {
        self.napster.shares = shares;
        for addr in self.napster.online() {
            self.share_to(addr);
        }
    }

    /// Brings what `addr` has of our library up to date: 102 for what is
    /// gone, 100 for what is new. A large library goes out as the output
    /// drains ([`SHARE_OUTPUT`] at a time); the rest at the next ticks.
    pub(super) fn share_to(&mut self, addr: SocketAddr) {
        let napster = &mut self.napster;
        let Some(session) = napster
            .sessions
            .iter_mut()
            .find(|s| s.addr == addr && s.is_online())
        else {
            return;
        };
        let wanted: HashSet<&[u8]> = napster.shares.iter().map(|s| s.name.as_slice()).collect();
        let shared = napster.shared.entry(addr).or_default();
        let gone: Vec<Vec<u8>> = shared
            .iter()
            .filter(|n| !wanted.contains(n.as_slice()))
            .cloned()
            .collect();
        let mut done = true;
        for name in gone {
            if session.output().len() >= SHARE_OUTPUT {
                done = false;
                break;
            }
            shared.remove(&name);
            session.send(&ClientMessage::Unshare { name });
        }
        for share in &napster.shares {
            if !done || session.output().len() >= SHARE_OUTPUT {
                done = false;
                break;
            }
            if shared.insert(share.name.clone()) {
                session.send(&share.message());
            }
        }
        if done {
            napster.resync.remove(&addr);
        } else {
            napster.resync.insert(addr);
        }
        if let Some(id) = session.conn {
            self.links.push_action(Action::WantWrite(id));
        }
    }

    /// A 607: accept (608) a file we share while an upload slot is free,
    /// refuse (619) otherwise.
    pub(super) fn upload_request(&mut self, addr: SocketAddr, file: UserFile, now: Instant) {
        let shared = self.napster.share_named(&file.name).is_some();
        let free = !self.shares.uploads_busy;
        let message = if shared && free {
            self.napster
                .accepted
                .push((file.nick.clone(), file.name.clone()), now + ACCEPT_TIMEOUT);
            ClientMessage::UploadAccept(file)
        } else {
            let reason = if shared {
                "every upload slot is taken"
            } else {
                "not shared"
            };
            self.links.event(CoreEvent::Notice(format!(
                "index {addr}: refused {} to {}: {reason}",
                escape_bytes(&file.name),
                hazel_protocol::text::Escaped::new(&file.nick)
            )));
            ClientMessage::QueueLimit(QueueLimit { file, limit: 0 })
        };
        self.send_to(addr, &message);
    }

    /// An upload over the data port began or ended: 220/221 to every server.
    pub fn index_upload_counted(&mut self, started: bool) {
        let message = if started {
            self.napster.uploads_counted += 1;
            ClientMessage::UploadStarted
        } else {
            self.napster.uploads_counted = self.napster.uploads_counted.saturating_sub(1);
            ClientMessage::UploadFinished
        };
        for addr in self.napster.online() {
            self.send_to(addr, &message);
        }
    }

    /// Whether an upload of `name` to `nick` was accepted with a 608.
    pub fn index_upload_accepted(&mut self, nick: &[u8], name: &[u8]) -> Option<u32> {
        let index = self.napster.share_named(name)?.index;
        self.napster.take_accepted(nick, name).then_some(index)
    }
}

impl Core {
    /// A 640 from server `addr`: `request.nick` wants to browse our files
    /// directly. Accepted (641) when we share files to that server: the
    /// requester may then fetch the list once ([`Core::index_browse_list`]),
    /// or, when we are firewalled and the 640 says where the requester
    /// listens, we push it (`SENDLIST`), rate-limited per nick and overall.
    /// Otherwise not answered: the index refuses at once (642) when we
    /// share nothing, and answers the requester itself if we stay silent.
    pub(super) fn direct_browse_request(
        &mut self,
        addr: SocketAddr,
        request: DirectBrowseRequest,
        now: Instant,
    ) {
        let who = Escaped::new(&request.nick);
        let sharing = self
            .napster
            .shared
            .get(&addr)
            .is_some_and(|set| !set.is_empty());
        if !sharing {
            log::debug!("index {addr}: browse from {who} not accepted: nothing shared there");
            return;
        }
        let firewalled = self
            .napster
            .identity
            .as_ref()
            .is_none_or(|i| i.data_port == 0);
        if firewalled {
            return self.direct_browse_push(addr, request, now);
        }
        self.napster
            .browsers
            .push(request.nick.clone(), now + BROWSE_ACCEPT_TIMEOUT);
        log::info!("index {addr}: {who} browses our files");
        self.send_to(
            addr,
            &ClientMessage::DirectBrowseAccept { nick: request.nick },
        );
    }

    /// A 640 while firewalled: push our list to the address it gives.
    fn direct_browse_push(&mut self, addr: SocketAddr, request: DirectBrowseRequest, now: Instant) {
        let who = Escaped::new(&request.nick);
        let Some((ip, port)) = request.connect_to.filter(|(ip, port)| {
            *port != 0 && !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast()
        }) else {
            log::info!("index {addr}: browse from {who} not accepted: both sides firewalled");
            return;
        };
        let pushes = &mut self.napster.list_pushes;
        while pushes
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= LIST_PUSH_INTERVAL)
        {
            pushes.pop_front();
        }
        let again = pushes.iter().any(|(_, nick)| *nick == request.nick);
        if again || pushes.len() >= LIST_PUSHES_PER_INTERVAL {
            log::info!("index {addr}: browse from {who} not accepted: too many browse pushes");
            return;
        }
        let Some(list) = self.browse_list(true) else {
            return;
        };
        self.napster
            .list_pushes
            .push_back((now, request.nick.clone()));
        let to = SocketAddr::new(std::net::IpAddr::V4(ip), port);
        log::info!("index {addr}: {who} browses our files; pushing the list to {to}");
        self.send_to(
            addr,
            &ClientMessage::DirectBrowseAccept { nick: request.nick },
        );
        self.links.push_action(Action::NapsterListPush(to, list));
    }

    /// Our browse list: `SENDLIST <nick>\n` (pushed) or `<nick>\n`, then a
    /// line per shared file and the empty line.
    fn browse_list(&self, pushed: bool) -> Option<Vec<u8>> {
        let nick = &self.napster.identity.as_ref()?.nick;
        let mut list = Vec::new();
        if pushed {
            encode_sendlist(nick.as_bytes(), &mut list).ok()?;
        } else {
            encode_list_nick(nick.as_bytes(), &mut list).ok()?;
        }
        for share in &self.napster.shares {
            let file = SharedFileRef {
                name: &share.name,
                md5: share.md5.as_bytes(),
                size: share.size,
                bitrate: share.bitrate,
                freq: share.frequency,
                duration: share.length,
            };
            // A name that cannot be carried is left out, as from the shares.
            let _ = encode_list_entry(&file, &mut list);
        }
        encode_list_end(&mut list);
        Some(list)
    }

    /// A `GETLIST` on the data port: our list as the answer to it
    /// (`<nick>\n`, then the lines of the list and the empty line), if a
    /// direct browse we accepted is still waiting (it is used up). The
    /// request names nobody, so each accepted browse is good for one list,
    /// oldest first.
    pub fn index_browse_list(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut list = self.browse_list(false)?;
        let requester = self.napster.browsers.pop_front()?;
        let nick_line = list.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
        let rest = list.split_off(nick_line);
        let head = list;
        let list = rest;
        log::info!(
            "napster browse: list of {} files to {}",
            self.napster.shares.len(),
            Escaped::new(&requester)
        );
        Some((head, list))
    }
}
