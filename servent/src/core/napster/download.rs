//! Downloads of index results over the Napster data port.
//!
//! `get` on an index result sends 203 to the result's server; the server
//! asks the sharer (607) and answers 204 once it accepts (608), or 206 (not
//! shared, gone), 620 (refused), 609. A 204 with a port: we connect, read
//! the sharer's `1`, send `GET` and `<nick> "<file>" <offset>`, and the
//! sharer answers the file's size in digits, then the bytes from `offset`.
//! A 204 with port 0 (the sharer is firewalled): we send 500, the server
//! sends 501 to the sharer, who connects to our data port and sends
//! `SEND`, `<nick> "<file>" <size>`; we answer the offset and the bytes
//! follow. The bytes go to the download disk worker like any download's;
//! the download is checked against the size, and a failed one is retried
//! from the bytes it has (`retry`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hazel_protocol::napster::transfer::{DataPortRequest, TransferReply, GREETING};
use hazel_protocol::napster::{ClientMessage, ServerMessage, UserFile};
use hazel_protocol::text::escape_bytes;

use crate::core::events::SearchResult;
use crate::core::transfers::record::sanitize_name;
use crate::core::transfers::{DiskEvent, DiskJob, DownloadEvent, DownloadId, DownloadInfo};
use crate::core::{Action, ConnId, Core, CoreEvent};

/// Napster downloads are numbered from here, apart from the others.
pub const FIRST_ID: DownloadId = 1_000_000;
/// The server must answer a 203 (or the sharer push) within this time.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// The sharer must greet and answer within this time; data must keep coming.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Most Napster downloads remembered.
pub const MAX_DOWNLOADS: usize = 256;
/// Bytes handed to the disk but not yet written before reading pauses.
pub const DISK_BACKLOG: u64 = 8 * 1024 * 1024;
/// Bytes of a reply head (greeting, size or error text) kept.
const MAX_HEAD: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// 203 sent.
    Asking,
    /// Connecting to the sharer's data port.
    Connecting,
    /// Connected, waiting for the `1`.
    Greeting,
    /// `GET` sent, waiting for the size.
    AwaitSize,
    /// 500 sent, waiting for the sharer to connect with `SEND`.
    AwaitPush,
    Receiving,
    /// Every byte handed to the disk; waiting for it to be moved.
    Finishing,
    /// Stopped by the user (`pause`); `resume` asks the index again.
    Paused,
    Done(PathBuf),
    Failed(String),
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Asking => "asking the index",
            State::Connecting | State::Greeting | State::AwaitSize => "connecting",
            State::AwaitPush => "waiting for the firewalled sharer",
            State::Receiving => "downloading",
            State::Finishing => "finishing",
            State::Paused => "paused",
            State::Done(_) => "complete",
            State::Failed(_) => "failed",
        }
    }

    fn is_over(&self) -> bool {
        matches!(self, State::Done(_) | State::Failed(_))
    }
}

#[derive(Debug)]
struct Download {
    id: DownloadId,
    server: SocketAddr,
    nick: String,
    raw_name: Vec<u8>,
    name: String,
    size: u64,
    /// Bytes received (handed to the disk) and written.
    received: u64,
    written: u64,
    state: State,
    conn: Option<ConnId>,
    peer: Option<SocketAddr>,
    head: Vec<u8>,
    out: Vec<u8>,
    deadline: Instant,
    opened: bool,
    paused_reading: bool,
    /// A 218 was sent to the server (a 219 goes when the transfer ends).
    counted: bool,
    last_error: Option<String>,
}

/// Every Napster download.
#[derive(Debug, Default)]
pub struct NapsterDownloads {
    list: Vec<Download>,
    next: u64,
}

impl NapsterDownloads {
    pub fn owns(&self, id: ConnId) -> bool {
        self.list.iter().any(|d| d.conn == Some(id))
    }

    pub fn is_napster(id: DownloadId) -> bool {
        id >= FIRST_ID
    }

    fn by_conn(&mut self, id: ConnId) -> Option<&mut Download> {
        self.list.iter_mut().find(|d| d.conn == Some(id))
    }

    fn get(&mut self, id: DownloadId) -> Option<&mut Download> {
        self.list.iter_mut().find(|d| d.id == id)
    }
}

impl Core {
    /// `get` on an index result.
    pub(in crate::core) fn napster_get(
        &mut self,
        r: &SearchResult,
        now: Instant,
    ) -> Result<(DownloadId, bool), String> {
        let hit = r.napster.as_ref().ok_or("not an index result")?;
        let server = r
            .origin
            .strip_prefix("index:")
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .ok_or("the result's index is unknown")?;
        let downloads = &mut self.napster.downloads;
        if let Some(d) = downloads
            .list
            .iter()
            .find(|d| d.nick == hit.nick && d.raw_name == hit.raw_name && !d.state.is_over())
        {
            return Ok((d.id, false));
        }
        if downloads.list.len() >= MAX_DOWNLOADS {
            if let Some(pos) = downloads.list.iter().position(|d| d.state.is_over()) {
                downloads.list.remove(pos);
            } else {
                return Err(format!("at most {MAX_DOWNLOADS} index downloads"));
            }
        }
        let id = FIRST_ID + downloads.next;
        downloads.next += 1;
        let leaf = hit
            .raw_name
            .rsplit(|&b| b == b'\\' || b == b'/')
            .next()
            .unwrap_or(&hit.raw_name);
        let name = sanitize_name(&String::from_utf8_lossy(leaf));
        downloads.list.push(Download {
            id,
            server,
            nick: hit.nick.clone(),
            raw_name: hit.raw_name.clone(),
            name: name.clone(),
            size: r.size,
            received: 0,
            written: 0,
            state: State::Asking,
            conn: None,
            peer: None,
            head: Vec::new(),
            out: Vec::new(),
            deadline: now + ANSWER_TIMEOUT,
            opened: false,
            paused_reading: false,
            counted: false,
            last_error: None,
        });
        self.links.push_action(Action::Disk(DiskJob::Open {
            download: id,
            stem: format!("napster-{id}-{name}"),
            size: Some(r.size),
        }));
        if let Some(d) = self.napster.downloads.get(id) {
            d.opened = true;
        }
        self.ask_index(id, now)?;
        self.links
            .event(CoreEvent::Download(DownloadEvent::Started { id, name }));
        Ok((id, true))
    }

    /// Sends (again) the 203 of download `id`.
    fn ask_index(&mut self, id: DownloadId, now: Instant) -> Result<(), String> {
        let Some(d) = self.napster.downloads.get(id) else {
            return Err(format!("no download {id}"));
        };
        let (server, file) = (
            d.server,
            UserFile {
                nick: d.nick.clone(),
                name: d.raw_name.clone(),
            },
        );
        d.state = State::Asking;
        d.deadline = now + ANSWER_TIMEOUT;
        if !self.send_to(server, &ClientMessage::DownloadRequest(file)) {
            self.fail_napster(id, format!("not logged in to the index {server}"));
            return Err(format!("not logged in to the index {server}"));
        }
        Ok(())
    }

    /// Messages of a server about our downloads (and 501, a push asked of us).
    pub(super) fn napster_download_message(
        &mut self,
        server: SocketAddr,
        message: ServerMessage,
        now: Instant,
    ) {
        let find = |core: &mut Core, nick: &str, name: &[u8], state: State| {
            core.napster
                .downloads
                .list
                .iter()
                .find(|d| {
                    d.server == server && d.nick == nick && d.raw_name == name && d.state == state
                })
                .map(|d| d.id)
        };
        match message {
            ServerMessage::DownloadAck(ack) => {
                let Some(id) = find(self, &ack.nick, &ack.name, State::Asking) else {
                    return;
                };
                if ack.port != 0 {
                    let addr = SocketAddr::new(std::net::IpAddr::V4(ack.ip), ack.port);
                    if let Some(d) = self.napster.downloads.get(id) {
                        d.state = State::Connecting;
                        d.peer = Some(addr);
                        d.deadline = now + STALL_TIMEOUT;
                    }
                    self.links.push_action(Action::ConnectNapsterData(addr));
                } else if self.napster_data_port() == 0 {
                    self.fail_napster(
                        id,
                        "firewalled both ways: the sharer and we both have no data port".into(),
                    );
                } else {
                    if let Some(d) = self.napster.downloads.get(id) {
                        d.state = State::AwaitPush;
                        d.deadline = now + ANSWER_TIMEOUT;
                    }
                    let file = UserFile {
                        nick: ack.nick,
                        name: ack.name,
                    };
                    self.send_to(server, &ClientMessage::FirewalledDownloadRequest(file));
                }
            }
            ServerMessage::DownloadError(file) => {
                if let Some(id) = find(self, &file.nick, &file.name, State::Asking) {
                    self.fail_napster(id, "the index says the file is not shared (206)".into());
                }
            }
            ServerMessage::UploadRefused(file) => {
                if let Some(id) = find(self, &file.nick, &file.name, State::Asking) {
                    self.fail_napster(id, "the peer refused (609)".into());
                }
            }
            ServerMessage::QueueLimitReached(notice) => {
                let file = notice.file;
                if let Some(id) = find(self, &file.nick, &file.name, State::Asking) {
                    self.fail_napster(
                        id,
                        format!("the peer refused (620: queue limit {})", notice.limit),
                    );
                }
            }
            ServerMessage::FirewalledDownloadAck(ack) => {
                // We are firewalled and a downloader asks us to push.
                if let Some(share) = self.napster.share_named(&ack.name) {
                    let addr = SocketAddr::new(std::net::IpAddr::V4(ack.ip), ack.port);
                    let push = crate::core::events::NapsterPush {
                        addr,
                        nick: ack.nick,
                        index: share.index,
                        name: ack.name,
                    };
                    self.links.push_action(Action::NapsterPush(Box::new(push)));
                }
            }
            _ => {}
        }
    }

    /// Our data port as announced at login.
    fn napster_data_port(&self) -> u16 {
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
    fn uncount(&mut self, did: DownloadId) {
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

    fn fail_napster(&mut self, id: DownloadId, reason: String) {
        self.uncount(id);
        let Some(d) = self.napster.downloads.get(id) else {
            return;
        };
        if d.state.is_over() {
            return;
        }
        d.state = State::Failed(reason.clone());
        d.last_error = Some(reason.clone());
        d.head.clear();
        d.out.clear();
        let name = d.name.clone();
        if let Some(conn) = d.conn.take() {
            self.links.push_action(Action::Close(conn));
        }
        self.links.event(CoreEvent::Download(DownloadEvent::Failed {
            id,
            name,
            reason,
        }));
    }

    /// Downloads whose server session ended while they waited for it.
    pub(super) fn fail_downloads_via(&mut self, server: SocketAddr, _now: Instant) {
        let ids: Vec<DownloadId> = self
            .napster
            .downloads
            .list
            .iter()
            .filter(|d| d.server == server && matches!(d.state, State::Asking | State::AwaitPush))
            .map(|d| d.id)
            .collect();
        for id in ids {
            self.fail_napster(id, format!("the index {server} went away"));
        }
    }

    pub(super) fn tick_napster_downloads(&mut self, now: Instant) {
        let late: Vec<(DownloadId, &'static str)> = self
            .napster
            .downloads
            .list
            .iter()
            .filter(|d| now >= d.deadline)
            .filter_map(|d| match d.state {
                State::Asking => Some((d.id, "no answer from the index")),
                State::AwaitPush => Some((d.id, "the firewalled sharer never connected")),
                State::Connecting | State::Greeting | State::AwaitSize => {
                    Some((d.id, "the sharer did not answer on its data port"))
                }
                State::Receiving => Some((d.id, "the sharer stalled")),
                _ => None,
            })
            .collect();
        for (id, reason) in late {
            self.fail_napster(id, reason.to_string());
        }
    }

    /// `retry` of a failed Napster download: asks again, from the bytes it has.
    pub(in crate::core) fn napster_retry(
        &mut self,
        id: DownloadId,
        now: Instant,
    ) -> Result<(), String> {
        self.ask_again(id, |s| matches!(s, State::Failed(_)), "has not failed", now)
    }

    /// Asks the index again for download `id`, from the bytes on the disk,
    /// if its state is `ready` (else the error says it `is_not`).
    fn ask_again(
        &mut self,
        id: DownloadId,
        ready: impl Fn(&State) -> bool,
        is_not: &str,
        now: Instant,
    ) -> Result<(), String> {
        let d = self
            .napster
            .downloads
            .get(id)
            .ok_or(format!("no download {id}"))?;
        if !ready(&d.state) {
            return Err(format!("download {id} {is_not}"));
        }
        // What the disk has is what we resume from.
        d.received = d.written;
        d.peer = None;
        self.ask_index(id, now)
    }

    /// `pause` of a Napster download: the transfer stops; what is on the
    /// disk stays for `resume`.
    pub(in crate::core) fn napster_pause(&mut self, id: DownloadId) -> Result<(), String> {
        let d = self
            .napster
            .downloads
            .get(id)
            .ok_or(format!("no download {id}"))?;
        if d.state.is_over() || matches!(d.state, State::Finishing | State::Paused) {
            return Err(format!("download {id} is {}", d.state.name()));
        }
        d.state = State::Paused;
        d.head.clear();
        d.out.clear();
        if let Some(conn) = d.conn.take() {
            self.links.push_action(Action::Close(conn));
        }
        self.uncount(id);
        Ok(())
    }

    /// `resume` of a paused Napster download: asks the index again, from
    /// the bytes on the disk.
    pub(in crate::core) fn napster_resume(
        &mut self,
        id: DownloadId,
        now: Instant,
    ) -> Result<(), String> {
        self.ask_again(id, |s| *s == State::Paused, "is not paused", now)
    }

    /// `cancel` of a Napster download.
    pub(in crate::core) fn napster_cancel(&mut self, id: DownloadId) -> Result<(), String> {
        let d = self
            .napster
            .downloads
            .get(id)
            .ok_or(format!("no download {id}"))?;
        if let State::Done(_) = d.state {
            return Err(format!("download {id} is complete"));
        }
        self.fail_napster(id, "cancelled".into());
        self.links
            .push_action(Action::Disk(DiskJob::Remove { download: id }));
        self.napster.downloads.list.retain(|d| d.id != id);
        Ok(())
    }

    /// Rows of `transfers` for the Napster downloads.
    pub(in crate::core) fn napster_download_rows(&self) -> Vec<DownloadInfo> {
        self.napster
            .downloads
            .list
            .iter()
            .map(|d| DownloadInfo {
                id: d.id,
                name: d.name.clone(),
                urn: String::new(),
                size: Some(d.size),
                done: d.written.min(d.size),
                rate: 0,
                eta_secs: None,
                sources_active: usize::from(d.conn.is_some()),
                sources_known: 1,
                state: d.state.name(),
                verification: "size",
                last_error: d.last_error.clone(),
                path: match &d.state {
                    State::Done(path) => Some(path.clone()),
                    _ => None,
                },
                sources: Vec::new(),
            })
            .collect()
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
