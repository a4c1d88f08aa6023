//! The Napster data port: connections to `--napster-port` (greeted with
//! `1`, then a `GET` for a file we share, a `GETLIST` for our list after a
//! direct browse we accepted (640 → 641), or a firewalled sharer's `SEND`
//! for one of our downloads, handed to the core), and our own pushes when
//! we are the firewalled sharer (501: we connect out, read `1`, send `SEND`
//! and the bytes from the offset the downloader answers).
//!
//! Uploads here take the same slots as HTTP uploads, serve only a file the
//! core accepted with a 608 for that nick, and open it through the same
//! check as every upload (inside the shared folders, unchanged since the
//! scan). Every connection has a deadline for its request and a stall limit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hazel_protocol::napster::transfer::{
    DataPortRequest, TransferReply, FILE_NOT_SHARED, GETLIST, GREETING, INVALID_REQUEST,
};

use crate::core::shares::upload::{FileSpan, SpanSource, UploadSlots};
use crate::core::shares::Library;
use crate::core::{ConnId, Core};
use crate::reactor::{Action, Kind, Output};
use crate::scanner::Confinement;

/// A request must arrive within this time.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pushes (501) connecting at once.
pub const MAX_PUSHES: usize = 8;
/// Browse lists (GETLIST) being sent at once.
pub const MAX_LISTS: usize = 4;
/// Browse lists we push (firewalled, SENDLIST) connecting at once.
pub const MAX_LIST_PUSHES: usize = 2;

enum Role {
    /// Incoming: `1` sent, waiting for GET or SEND.
    Request,
    /// Our push: waiting for the downloader's `1`, then its offset.
    Push {
        index: u32,
        name: Vec<u8>,
        greeted: bool,
    },
    /// Sending a file body.
    Body {
        file: std::fs::File,
        offset: u64,
        remaining: u64,
    },
    /// A browse list: our nick line is queued (its own write); the list
    /// follows once it is out.
    Listing { rest: Vec<u8> },
    /// Our pushed browse list (`SENDLIST`, the list): waiting for the
    /// browser's `1` (closing before reading it would reset the connection
    /// under the list).
    ListPush { list: Vec<u8> },
    /// Refused or done: write what is queued, then close.
    Closing,
}

struct PortConn {
    peer: SocketAddr,
    role: Role,
    buf: Vec<u8>,
    out: Vec<u8>,
    since: Instant,
    last_progress: Instant,
    /// Holds an upload slot (released on close).
    slot: bool,
    /// A 220 was sent for it (a 221 goes when it ends).
    counted: bool,
    /// The file being sent, for `transfers`.
    serving: Option<(String, u64, u64)>,
    /// Sending (or sent) a browse list.
    serving_list: bool,
    /// A number (offset or size) ended at the end of what arrived: it is
    /// taken as whole at this time if no more digits come first.
    settle: Option<Instant>,
}

impl PortConn {
    fn new(peer: SocketAddr, role: Role, out: Vec<u8>, now: Instant) -> PortConn {
        PortConn {
            peer,
            role,
            buf: Vec::new(),
            out,
            since: now,
            last_progress: now,
            slot: false,
            counted: false,
            settle: None,
            serving: None,
            serving_list: false,
        }
    }
}

/// A push we were asked for, waiting for its connect.
enum PendingPush {
    /// A file (501).
    File { index: u32, name: Vec<u8> },
    /// Our browse list (640 with an address): `SENDLIST` and the list.
    List(Vec<u8>),
}

/// What the servent lends the data port for one call.
pub struct Parts<'a> {
    pub core: &'a mut Core,
    pub slots: &'a mut UploadSlots,
    pub confinement: &'a Confinement,
    pub library: &'a Library,
}

/// Every data-port connection the servent (not the core) holds.
#[derive(Default)]
pub struct NapsterPort {
    conns: HashMap<ConnId, PortConn>,
    pushes: HashMap<SocketAddr, PendingPush>,
    actions: std::collections::VecDeque<Action>,
}

/// A row of `transfers` for a Napster upload.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NapsterUploadInfo {
    pub id: ConnId,
    pub peer: SocketAddr,
    pub name: Option<String>,
    pub size: u64,
    pub done: u64,
    pub state: &'static str,
}

impl NapsterPort {
    pub fn contains(&self, id: ConnId) -> bool {
        self.conns.contains_key(&id)
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Someone connected to our data port: greet them.
    pub fn accepted(&mut self, id: ConnId, peer: SocketAddr, now: Instant) {
        let conn = PortConn::new(peer, Role::Request, vec![GREETING], now);
        self.conns.insert(id, conn);
        self.actions.push_back(Action::WantWrite(id));
    }

    /// A 501: connect to the downloader and push `index`.
    pub fn start_push(&mut self, addr: SocketAddr, index: u32, name: Vec<u8>) {
        if self.pushes.len() >= MAX_PUSHES || self.pushes.contains_key(&addr) {
            log::info!("napster push to {addr}: too many pushes connecting, ignored");
            return;
        }
        self.pushes.insert(addr, PendingPush::File { index, name });
        self.actions
            .push_back(Action::ConnectAs(addr, Kind::NapsterData));
    }

    /// A direct browse while firewalled: connect to the browser at `addr`
    /// and send `list` (`SENDLIST <nick>\n`, the list), then close.
    pub fn start_list_push(&mut self, addr: SocketAddr, list: Vec<u8>) {
        let lists = self
            .pushes
            .values()
            .filter(|p| matches!(p, PendingPush::List(_)))
            .count();
        if self.pushes.len() >= MAX_PUSHES
            || lists >= MAX_LIST_PUSHES
            || self.pushes.contains_key(&addr)
        {
            log::info!("napster browse push to {addr}: too many pushes connecting, ignored");
            return;
        }
        self.pushes.insert(addr, PendingPush::List(list));
        self.actions
            .push_back(Action::ConnectAs(addr, Kind::NapsterData));
    }

    /// An outgoing data connection is up: true if it is one of our pushes.
    pub fn connected(&mut self, id: ConnId, peer: SocketAddr, now: Instant) -> bool {
        let Some(push) = self.pushes.remove(&peer) else {
            return false;
        };
        match push {
            PendingPush::File { index, name } => {
                let role = Role::Push {
                    index,
                    name,
                    greeted: false,
                };
                self.conns
                    .insert(id, PortConn::new(peer, role, Vec::new(), now));
            }
            PendingPush::List(list) => {
                let mut conn = PortConn::new(peer, Role::ListPush { list }, Vec::new(), now);
                conn.serving_list = true;
                self.conns.insert(id, conn);
            }
        }
        true
    }

    /// An outgoing connect failed: true if it was a push.
    pub fn connect_failed(&mut self, peer: SocketAddr, error: &str) -> bool {
        if self.pushes.remove(&peer).is_some() {
            log::info!("napster push to {peer} failed: {error}");
            return true;
        }
        false
    }

    pub fn on_bytes(&mut self, id: ConnId, bytes: &[u8], parts: Parts<'_>, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if matches!(
            conn.role,
            Role::Body { .. } | Role::Listing { .. } | Role::Closing
        ) {
            return; // Nothing more is expected from the downloader.
        }
        conn.buf.extend_from_slice(bytes);
        if conn.buf.len() > MAX_REQUEST {
            return self.refuse(id, INVALID_REQUEST);
        }
        self.on_input(id, parts, now, false);
    }

    /// Acts on what a connection sent; `settled` once its number had time
    /// to arrive whole.
    fn on_input(&mut self, id: ConnId, parts: Parts<'_>, now: Instant, settled: bool) {
        match self.conns.get(&id).map(|c| &c.role) {
            Some(Role::Request) => self.on_request(id, parts, now, settled),
            Some(Role::Push { .. }) => self.on_push_bytes(id, parts, now, settled),
            Some(Role::ListPush { .. }) => self.on_list_push_bytes(id),
            _ => {}
        }
    }

    /// The browser we push our list to greeted us: the list goes, then we close.
    fn on_list_push_bytes(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.buf.first() != Some(&GREETING) {
            return self.refuse(id, INVALID_REQUEST);
        }
        conn.buf.clear();
        if let Role::ListPush { list } = std::mem::replace(&mut conn.role, Role::Closing) {
            conn.out = list;
        }
        self.actions.push_back(Action::WantWrite(id));
    }

    /// Whether the number that ends a request at `used` may still be
    /// arriving: nothing delimits it (the peer then waits for our answer),
    /// so when it ends where the input ends it is taken only after
    /// [`SETTLE`] without more bytes. Real clients send it in one write,
    /// but a segment boundary can still fall inside it.
    fn unsettled(conn: &mut PortConn, used: usize, settled: bool, now: Instant) -> bool {
        if settled || used < conn.buf.len() {
            return false;
        }
        conn.settle = Some(now + SETTLE);
        true
    }

    fn on_request(&mut self, id: ConnId, parts: Parts<'_>, now: Instant, settled: bool) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let (request, used) = match DataPortRequest::parse(&conn.buf) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return,
            Err(_) => return self.refuse(id, INVALID_REQUEST),
        };
        // Only a GETLIST with no line end can still grow (into a GET).
        let may_grow = request != DataPortRequest::GetList || used == GETLIST.len();
        if may_grow && NapsterPort::unsettled(conn, used, settled, now) {
            return;
        }
        conn.settle = None;
        let rest = conn.buf.split_off(used);
        match &request {
            DataPortRequest::Send { .. } => {
                // A firewalled sharer pushing one of our downloads: the
                // connection is the core's from now on, if a download waits.
                let Some(conn) = self.conns.remove(&id) else {
                    return;
                };
                if !parts.core.on_napster_send(id, &request, &rest, now) {
                    self.conns.insert(id, conn);
                    self.refuse(id, INVALID_REQUEST);
                }
            }
            DataPortRequest::Get { nick, name, offset } => {
                let Some(index) = parts.core.index_upload_accepted(nick, name) else {
                    return self.refuse(id, FILE_NOT_SHARED);
                };
                self.serve(id, index, *offset, true, parts, now);
            }
            DataPortRequest::GetList => self.send_list(id, parts),
        }
    }

    /// A `GETLIST`: our list, if a direct browse we accepted waits for it.
    fn send_list(&mut self, id: ConnId, parts: Parts<'_>) {
        let listing = self.conns.values().filter(|c| c.serving_list).count();
        if listing >= MAX_LISTS {
            return self.refuse(id, b"BUSY");
        }
        let Some((head, list)) = parts.core.index_browse_list() else {
            if let Some(conn) = self.conns.get(&id) {
                log::info!("napster browse from {}: not accepted, refused", conn.peer);
            }
            return self.refuse(id, INVALID_REQUEST);
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.out.extend_from_slice(&head);
        conn.role = Role::Listing { rest: list };
        conn.serving_list = true;
        self.actions.push_back(Action::WantWrite(id));
    }

    fn on_push_bytes(&mut self, id: ConnId, parts: Parts<'_>, now: Instant, settled: bool) {
        let nick = parts.core.napster_nick().unwrap_or_default().into_bytes();
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let Role::Push {
            index,
            name,
            greeted,
        } = &mut conn.role
        else {
            return;
        };
        if !*greeted {
            if conn.buf.first() != Some(&GREETING) {
                return self.refuse(id, INVALID_REQUEST);
            }
            conn.buf.remove(0);
            *greeted = true;
            let size = parts.library.get(*index).map_or(0, |f| f.size);
            let request = DataPortRequest::Send {
                nick,
                name: name.clone(),
                size,
            };
            if request.encode(&mut conn.out).is_err() {
                return self.refuse(id, INVALID_REQUEST);
            }
            self.actions.push_back(Action::WantWrite(id));
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let Role::Push { index, .. } = conn.role else {
            return;
        };
        // The offset: digits, then the downloader waits for the bytes.
        match TransferReply::parse(&conn.buf, true) {
            Ok(Some((TransferReply::Number(offset), used))) => {
                if NapsterPort::unsettled(conn, used, settled, now) {
                    return;
                }
                conn.settle = None;
                conn.buf.clear();
                self.serve(id, index, offset, false, parts, now);
            }
            Ok(Some((TransferReply::Refused(_), _))) | Err(_) => {
                self.close(id);
            }
            Ok(None) => {}
        }
    }

    /// Sends file `index` from `offset` (with its size first when `with_size`).
    fn serve(
        &mut self,
        id: ConnId,
        index: u32,
        offset: u64,
        with_size: bool,
        parts: Parts<'_>,
        now: Instant,
    ) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(file) = parts.library.get(index) else {
            return self.refuse(id, FILE_NOT_SHARED);
        };
        if offset > file.size {
            return self.refuse(id, INVALID_REQUEST);
        }
        if !parts.slots.try_take(conn.peer.ip()) {
            return self.refuse(id, b"BUSY");
        }
        conn.slot = true;
        let span = FileSpan {
            index,
            source: SpanSource::SharedFile,
            path: file.path.clone(),
            offset,
            len: file.size - offset,
            expected_size: file.size,
            expected_mtime: file.mtime,
        };
        let opened = crate::scanner::open_span(&span, parts.confinement);
        let Ok(handle) = opened else {
            log::warn!(
                "napster upload of {}: cannot be served",
                hazel_protocol::text::escape_path(&file.path)
            );
            return self.refuse(id, FILE_NOT_SHARED);
        };
        if with_size {
            TransferReply::Number(file.size).encode(&mut conn.out);
        }
        conn.role = Role::Body {
            file: handle,
            offset,
            remaining: file.size - offset,
        };
        conn.serving = Some((file.name.clone(), file.size - offset, 0));
        conn.last_progress = now;
        conn.counted = true;
        parts.core.index_upload_counted(true);
        log::info!(
            "napster upload to {}: {} from byte {offset}",
            conn.peer,
            hazel_protocol::text::Escaped::new(&file.name)
        );
        self.actions.push_back(Action::WantWrite(id));
    }

    fn refuse(&mut self, id: ConnId, text: &[u8]) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.out.extend_from_slice(text);
            conn.role = Role::Closing;
            self.actions.push_back(Action::WantWrite(id));
        }
    }

    fn close(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.role = Role::Closing;
            self.actions.push_back(Action::Close(id));
        }
    }

    pub fn output(&mut self, id: ConnId) -> Output<'_> {
        let Some(conn) = self.conns.get_mut(&id) else {
            return Output::Bytes(&[]);
        };
        if !conn.out.is_empty() {
            return Output::Bytes(&conn.out);
        }
        match &conn.role {
            Role::Body {
                file,
                offset,
                remaining,
            } if *remaining > 0 => Output::File {
                file,
                offset: *offset,
                len: *remaining,
            },
            Role::Body { .. } | Role::Closing => {
                self.actions.push_back(Action::Close(id));
                Output::Bytes(&[])
            }
            _ => Output::Bytes(&[]),
        }
    }

    pub fn consume(&mut self, id: ConnId, n: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if n > 0 {
            conn.last_progress = now;
        }
        if !conn.out.is_empty() {
            let n = n.min(conn.out.len());
            conn.out.drain(..n);
            if conn.out.is_empty() {
                if let Role::Listing { rest } = &mut conn.role {
                    conn.out = std::mem::take(rest);
                    conn.role = Role::Closing;
                }
                self.actions.push_back(Action::WantWrite(id));
            }
            return;
        }
        if let Role::Body {
            offset, remaining, ..
        } = &mut conn.role
        {
            let n = (n as u64).min(*remaining);
            *offset += n;
            *remaining -= n;
            if let Some(serving) = &mut conn.serving {
                serving.2 += n;
            }
            if *remaining == 0 {
                self.actions.push_back(Action::WantWrite(id));
            }
        }
    }

    pub fn on_closed(&mut self, id: ConnId, core: &mut Core, slots: &mut UploadSlots) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        let complete = matches!(conn.role, Role::Body { remaining: 0, .. });
        if conn.slot {
            slots.give_back(conn.peer.ip(), complete);
        }
        if conn.counted {
            core.index_upload_counted(false);
        }
    }

    /// When the earliest waiting number is taken as whole.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns.values().filter_map(|c| c.settle).min()
    }

    /// Takes the numbers that had their time to arrive whole.
    pub fn settle(&mut self, parts: Parts<'_>, now: Instant) {
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.settle.is_some_and(|t| t <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let parts = Parts {
                core: &mut *parts.core,
                slots: &mut *parts.slots,
                confinement: parts.confinement,
                library: parts.library,
            };
            self.on_input(id, parts, now, true);
        }
    }

    /// Closes connections whose request is late or whose reader stalled.
    pub fn tick(&mut self, now: Instant, stall: Duration) {
        for (&id, conn) in &mut self.conns {
            let late = match conn.role {
                Role::Request | Role::Push { .. } | Role::ListPush { .. } => {
                    now.saturating_duration_since(conn.since) >= REQUEST_TIMEOUT
                }
                Role::Body { .. } | Role::Listing { .. } | Role::Closing => {
                    now.saturating_duration_since(conn.last_progress) >= stall
                }
            };
            if late {
                conn.role = Role::Closing;
                self.actions.push_back(Action::Close(id));
            }
        }
    }

    /// Rows of `transfers`.
    pub fn list(&self) -> Vec<NapsterUploadInfo> {
        let mut rows: Vec<NapsterUploadInfo> = self
            .conns
            .iter()
            .map(|(&id, c)| NapsterUploadInfo {
                id,
                peer: c.peer,
                name: c.serving.as_ref().map(|s| s.0.clone()),
                size: c.serving.as_ref().map_or(0, |s| s.1),
                done: c.serving.as_ref().map_or(0, |s| s.2),
                state: match c.role {
                    Role::Request => "waiting for a request",
                    Role::Push { .. } => "pushing",
                    Role::ListPush { .. } => "pushing our list",
                    Role::Body { .. } => "sending",
                    Role::Listing { .. } => "sending our list",
                    Role::Closing => "closing",
                },
            })
            .collect();
        rows.sort_by_key(|r| r.id);
        rows
    }
}

/// How long a number that ends where the input ends may still grow.
pub const SETTLE: Duration = Duration::from_millis(100);

/// Longest request (greeting answer, GET or SEND line, offset) buffered.
const MAX_REQUEST: usize = hazel_protocol::napster::transfer::MAX_REQUEST_LEN + 16;
