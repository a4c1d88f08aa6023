//! A download's data connection: the sharer's greeting, our `GET` (or its
//! `SEND` when it pushes), the size, the bytes to the disk, the end.

use std::net::SocketAddr;
use std::time::Instant;

use hazel_protocol::napster::transfer::{DataPortRequest, TransferReply, GREETING};
use hazel_protocol::napster::ClientMessage;
use hazel_protocol::text::escape_bytes;

use super::{NapsterDownloads, State, DISK_BACKLOG, MAX_HEAD, STALL_TIMEOUT};
use crate::core::transfers::{DiskEvent, DiskJob, DownloadEvent, DownloadId};
use crate::core::{Action, ConnId, Core, CoreEvent};

impl Core {
    /// Our data port as announced at login.
    pub(super) fn napster_data_port(&self) -> u16 {
        self.napster.identity().map_or(0, |i| i.data_port)
    }

    /// A data connection we opened is up.
    pub fn on_napster_data_connected(
        &mut self,
        id: ConnId,
        peer: SocketAddr,
        now: Instant,
    ) -> bool {
        let Some(d) = self
            .napster
            .downloads
            .list
            .iter_mut()
            .find(|d| d.state == State::Connecting && d.peer == Some(peer))
        else {
            return false;
        };
        d.conn = Some(id);
        d.state = State::Greeting;
        d.deadline = now + STALL_TIMEOUT;
        true
    }

    pub fn on_napster_data_connect_failed(&mut self, peer: SocketAddr, error: &str) {
        let ids: Vec<DownloadId> = self
            .napster
            .downloads
            .list
            .iter()
            .filter(|d| d.state == State::Connecting && d.peer == Some(peer))
            .map(|d| d.id)
            .collect();
        for id in ids {
            self.fail_napster(id, format!("cannot reach the sharer at {peer}: {error}"));
        }
    }

    /// A firewalled sharer connected to our data port with `SEND`: true
    /// when a download waits for it (the connection is the download's now).
    pub fn on_napster_send(
        &mut self,
        id: ConnId,
        request: &DataPortRequest,
        rest: &[u8],
        now: Instant,
    ) -> bool {
        let DataPortRequest::Send { nick, name, size } = request else {
            return false;
        };
        let Some(d) = self.napster.downloads.list.iter_mut().find(|d| {
            d.state == State::AwaitPush && d.nick.as_bytes() == nick && &d.raw_name == name
        }) else {
            return false;
        };
        if *size != d.size {
            let (did, expected) = (d.id, d.size);
            self.fail_napster(
                did,
                format!("the sharer sends {size} bytes, not {expected}"),
            );
            return false;
        }
        d.conn = Some(id);
        d.state = State::Receiving;
        d.deadline = now + STALL_TIMEOUT;
        TransferReply::Number(d.received).encode(&mut d.out);
        self.links.push_action(Action::WantWrite(id));
        if !rest.is_empty() {
            self.napster_data_bytes(id, rest, now);
        }
        true
    }

    /// Bytes on a download's data connection.
    pub(in crate::core) fn napster_data_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        let nick = self
            .napster
            .identity()
            .map(|i| i.nick.clone())
            .unwrap_or_default();
        let Some(d) = self.napster.downloads.by_conn(id) else {
            return;
        };
        d.deadline = now + STALL_TIMEOUT;
        let did = d.id;
        let mut data: &[u8] = bytes;
        if d.state == State::Greeting {
            d.head.extend_from_slice(data);
            data = &[];
            if !d.head.is_empty() {
                if d.head[0] != GREETING {
                    return self.fail_napster(did, "the sharer did not greet with `1`".into());
                }
                let rest = d.head.split_off(1);
                d.head = rest;
                let request = DataPortRequest::Get {
                    nick: nick.into_bytes(),
                    name: d.raw_name.clone(),
                    offset: d.received,
                };
                if request.encode(&mut d.out).is_err() {
                    return self.fail_napster(did, "the file name cannot be asked for".into());
                }
                d.state = State::AwaitSize;
                self.links.push_action(Action::WantWrite(id));
            }
        }
        let Some(d) = self.napster.downloads.by_conn(id) else {
            return;
        };
        let owned_head;
        if d.state == State::AwaitSize {
            d.head.extend_from_slice(data);
            let expected = d.size.to_string();
            if d.head.len() < expected.len() && expected.as_bytes().starts_with(&d.head) {
                return; // the size is still arriving
            }
            if d.head.starts_with(expected.as_bytes()) {
                owned_head = d.head.split_off(expected.len());
                d.head.clear();
                d.state = State::Receiving;
                data = &owned_head;
            } else if d.head.first().is_some_and(|b| !b.is_ascii_digit()) && d.head.len() < MAX_HEAD
            {
                // An error text: it ends when the sharer closes.
                return;
            } else {
                let text = refusal_text(&d.head, d.size);
                return self.fail_napster(did, text);
            }
        }
        if data.is_empty() {
            return;
        }
        let Some(d) = self.napster.downloads.by_conn(id) else {
            return;
        };
        if d.state != State::Receiving {
            return;
        }
        let room = d.size.saturating_sub(d.received);
        if data.len() as u64 > room {
            return self.fail_napster(did, "the sharer sent more bytes than the size".into());
        }
        let offset = d.received;
        d.count_rate(data.len() as u64, now);
        let first_bytes = !d.counted;
        d.counted = true;
        let server = d.server;
        d.received += data.len() as u64;
        let complete = d.received == d.size;
        let behind = d.received - d.written > DISK_BACKLOG;
        self.links.push_action(Action::Disk(DiskJob::Write {
            download: did,
            offset,
            data: data.to_vec(),
        }));
        if first_bytes {
            self.send_to(server, &ClientMessage::DownloadStarted);
        }
        if behind {
            if let Some(d) = self.napster.downloads.get(did) {
                if !d.paused_reading {
                    d.paused_reading = true;
                    self.links.push_action(Action::PauseReading(id));
                }
            }
        }
        if complete {
            self.finish_napster(did);
        }
    }

    /// Ends the count of a transfer with the server (219), if it began.
    pub(super) fn uncount(&mut self, did: DownloadId) {
        let Some(d) = self.napster.downloads.get(did) else {
            return;
        };
        if std::mem::take(&mut d.counted) {
            let server = d.server;
            self.send_to(server, &ClientMessage::DownloadFinished);
        }
    }

    fn finish_napster(&mut self, did: DownloadId) {
        self.uncount(did);
        let Some(d) = self.napster.downloads.get(did) else {
            return;
        };
        d.state = State::Finishing;
        let name = d.name.clone();
        if let Some(conn) = d.conn.take() {
            self.links.push_action(Action::Close(conn));
        }
        self.links.push_action(Action::Disk(DiskJob::Finish {
            download: did,
            name,
        }));
    }

    /// A disk event for a Napster download; false when it is not one.
    pub(in crate::core) fn napster_disk(&mut self, event: &DiskEvent) -> bool {
        let id = match event {
            DiskEvent::Written { download, .. }
            | DiskEvent::Failed { download, .. }
            | DiskEvent::Verified { download, .. }
            | DiskEvent::UnitChecked { download, .. }
            | DiskEvent::Finished { download, .. } => *download,
        };
        if !NapsterDownloads::is_napster(id) {
            return false;
        }
        match event {
            DiskEvent::Written { bytes, .. } => {
                if let Some(d) = self.napster.downloads.get(id) {
                    d.written += *bytes as u64;
                    if d.paused_reading && d.received - d.written <= DISK_BACKLOG / 2 {
                        d.paused_reading = false;
                        if let Some(conn) = d.conn {
                            self.links.push_action(Action::ResumeReading(conn));
                        }
                    }
                }
            }
            DiskEvent::Failed { error, .. } => self.fail_napster(id, format!("disk: {error}")),
            DiskEvent::Finished { path, .. } => {
                if let Some(d) = self.napster.downloads.get(id) {
                    d.state = State::Done(path.clone());
                    let name = d.name.clone();
                    self.links.event(CoreEvent::Download(DownloadEvent::Saved {
                        id,
                        name,
                        path: path.clone(),
                    }));
                }
            }
            _ => {}
        }
        true
    }

    /// The data connection closed.
    pub(in crate::core) fn napster_data_closed(&mut self, id: ConnId) {
        let Some(d) = self.napster.downloads.by_conn(id) else {
            return;
        };
        d.conn = None;
        let (did, received, size) = (d.id, d.received, d.size);
        if d.state == State::AwaitSize && !d.head.is_empty() {
            let text = refusal_text(&d.head, size);
            self.fail_napster(did, text);
        } else if d.state != State::Finishing && !d.state.is_over() {
            self.fail_napster(
                did,
                format!("the sharer closed the connection at {received} of {size} bytes"),
            );
        }
    }

    pub(in crate::core) fn napster_data_output(&mut self, id: ConnId) -> &[u8] {
        match self
            .napster
            .downloads
            .list
            .iter()
            .find(|d| d.conn == Some(id))
        {
            Some(d) => &d.out,
            None => &[],
        }
    }

    pub(in crate::core) fn napster_data_consume(&mut self, id: ConnId, n: usize) {
        if let Some(d) = self.napster.downloads.by_conn(id) {
            let n = n.min(d.out.len());
            d.out.drain(..n);
        }
    }
}

/// What a sharer's answer other than the expected size says.
fn refusal_text(head: &[u8], size: u64) -> String {
    match TransferReply::parse(head, true) {
        Ok(Some((TransferReply::Refused(text), _))) => {
            format!("the sharer says: {}", escape_bytes(text.trim_ascii()))
        }
        Ok(Some((TransferReply::Number(n), _))) => {
            format!("the sharer has {n} bytes, the index said {size}")
        }
        _ => "the sharer's answer is unreadable".into(),
    }
}
