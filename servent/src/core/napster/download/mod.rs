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

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hazel_protocol::napster::{ClientMessage, ServerMessage, UserFile};

use crate::core::events::SearchResult;
use crate::core::transfers::record::{sanitize_name, DownloadRecord, NapsterSourceRecord};
use crate::core::transfers::{DiskJob, DownloadEvent, DownloadId, RateMeter};
use crate::core::{Action, ConnId, Core, CoreEvent};

mod control;
mod data;

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
/// A download's state file is rewritten at most this often.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

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
    /// Restored from a state file: asks the index once logged in to it.
    Waiting,
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
            State::Waiting => "waiting for the index",
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
    /// Its files in `incomplete/`: `<stem>.part` and `<stem>.state`.
    stem: String,
    size: u64,
    /// Bytes received (handed to the disk) and written.
    received: u64,
    written: u64,
    /// Written bytes the last state file named, when it was asked for, and
    /// whether something else in it changed since.
    checkpointed: u64,
    last_checkpoint: Instant,
    unsaved: bool,
    rate: RateMeter,
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
    /// Other index users found with the same file (same md5 and size):
    /// when this source fails, the next is asked, from the bytes on the disk.
    others: VecDeque<Source>,
    /// Failed, but another source is asked at the next tick.
    next_source: bool,
}

/// Where an index download can come from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    server: SocketAddr,
    nick: String,
    raw_name: Vec<u8>,
}

/// Other sources remembered per download.
pub const MAX_OTHER_SOURCES: usize = 16;

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
        let others = other_sources(&self.searches.results(None), r, server);
        let stem = format!("napster-{id}-{name}");
        let downloads = &mut self.napster.downloads;
        downloads.list.push(Download {
            id,
            server,
            nick: hit.nick.clone(),
            raw_name: hit.raw_name.clone(),
            name: name.clone(),
            stem: stem.clone(),
            size: r.size,
            received: 0,
            written: 0,
            checkpointed: 0,
            last_checkpoint: now,
            unsaved: true,
            rate: RateMeter::new(now),
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
            others,
            next_source: false,
        });
        self.links.push_action(Action::Disk(DiskJob::Open {
            download: id,
            stem,
            size: Some(r.size),
        }));
        if let Some(d) = self.napster.downloads.get(id) {
            d.opened = true;
        }
        self.napster_checkpoint(id, now);
        self.ask_index(id, now)?;
        self.links
            .event(CoreEvent::Download(DownloadEvent::Started { id, name }));
        Ok((id, true))
    }

    /// Sends (again) the 203 of download `id`.
    pub(super) fn ask_index(&mut self, id: DownloadId, now: Instant) -> Result<(), String> {
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

    pub(super) fn fail_napster(&mut self, id: DownloadId, reason: String) {
        self.uncount(id);
        let Some(d) = self.napster.downloads.get(id) else {
            return;
        };
        if d.state.is_over() {
            return;
        }
        d.state = State::Failed(reason.clone());
        d.last_error = Some(reason.clone());
        d.unsaved = true;
        d.head.clear();
        d.out.clear();
        let name = d.name.clone();
        if let Some(conn) = d.conn.take() {
            self.links.push_action(Action::Close(conn));
        }
        if let Some(next) = d.others.front() {
            // Not over: another user has the file.
            d.next_source = true;
            let text = format!(
                "download {id} ({name}) from {}: {reason}; asking {} next",
                d.nick, next.nick
            );
            self.links.event(CoreEvent::Notice(text));
            return;
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
        // Restored downloads ask once their index is there.
        let online = self.napster.online();
        let ready: Vec<DownloadId> = self
            .napster
            .downloads
            .list
            .iter()
            .filter(|d| d.state == State::Waiting && online.contains(&d.server))
            .map(|d| d.id)
            .collect();
        for id in ready {
            let _ = self.ask_index(id, now);
        }
        let due: Vec<DownloadId> = self
            .napster
            .downloads
            .list
            .iter()
            .filter(|d| {
                // Once finishing, the state file is the disk's to remove.
                !matches!(d.state, State::Finishing | State::Done(_))
                    && (d.unsaved || d.written != d.checkpointed)
                    && now.saturating_duration_since(d.last_checkpoint) >= CHECKPOINT_EVERY
            })
            .map(|d| d.id)
            .collect();
        for id in due {
            self.napster_checkpoint(id, now);
        }
        let switching: Vec<DownloadId> = self
            .napster
            .downloads
            .list
            .iter()
            .filter(|d| d.next_source)
            .map(|d| d.id)
            .collect();
        for id in switching {
            let Some(d) = self.napster.downloads.get(id) else {
                continue;
            };
            d.next_source = false;
            let Some(next) = d.others.pop_front() else {
                continue;
            };
            d.server = next.server;
            d.nick = next.nick;
            d.raw_name = next.raw_name;
            d.received = d.written;
            d.peer = None;
            let _ = self.ask_index(id, now);
        }
    }
}

impl Core {
    /// Writes download `id`'s state file (after syncing what it names).
    pub(super) fn napster_checkpoint(&mut self, id: DownloadId, now: Instant) {
        let Some(d) = self.napster.downloads.get(id) else {
            return;
        };
        d.checkpointed = d.written;
        d.last_checkpoint = now;
        d.unsaved = false;
        let record = d.record().to_bytes();
        self.links.push_action(Action::Disk(DiskJob::Checkpoint {
            download: id,
            record,
            sync: true,
        }));
    }

    /// An index download saved by an earlier run: it resumes from the bytes
    /// its state file names once we are logged in to its index again.
    pub fn napster_restore(&mut self, record: &DownloadRecord, now: Instant) -> bool {
        let mut sources = record.napster.iter().filter_map(|s| {
            Some(Source {
                server: s.server,
                nick: s.nick.clone(),
                raw_name: data_encoding::HEXLOWER_PERMISSIVE
                    .decode(s.file.as_bytes())
                    .ok()?,
            })
        });
        let (Some(first), Some(size)) = (sources.next(), record.size) else {
            return false;
        };
        let downloads = &mut self.napster.downloads;
        if record.id < FIRST_ID
            || downloads.list.len() >= MAX_DOWNLOADS
            || downloads.list.iter().any(|d| d.id == record.id)
        {
            return false;
        }
        downloads.next = downloads.next.max(record.id - FIRST_ID + 1);
        // Only bytes from the start count: the data port sends from an offset on.
        let written = record
            .received
            .iter()
            .find(|[start, _]| *start == 0)
            .map_or(0, |[_, end]| (*end).min(size));
        let state = match record.state.as_str() {
            "paused" => State::Paused,
            "failed" => State::Failed(record.last_error.clone().unwrap_or_default()),
            _ => State::Waiting,
        };
        downloads.list.push(Download {
            id: record.id,
            server: first.server,
            nick: first.nick,
            raw_name: first.raw_name,
            name: record.name.clone(),
            stem: record.stem.clone(),
            size,
            received: written,
            written,
            checkpointed: written,
            last_checkpoint: now,
            unsaved: false,
            rate: RateMeter::new(now),
            state,
            conn: None,
            peer: None,
            head: Vec::new(),
            out: Vec::new(),
            deadline: now + ANSWER_TIMEOUT,
            opened: true,
            paused_reading: false,
            counted: false,
            last_error: record.last_error.clone(),
            others: sources.take(MAX_OTHER_SOURCES).collect(),
            next_source: false,
        });
        self.links.push_action(Action::Disk(DiskJob::Open {
            download: record.id,
            stem: record.stem.clone(),
            size: Some(size),
        }));
        true
    }
}

impl Download {
    /// What its state file says.
    fn record(&self) -> DownloadRecord {
        let source = |server: SocketAddr, nick: &str, raw_name: &[u8]| NapsterSourceRecord {
            server,
            nick: nick.to_string(),
            file: data_encoding::HEXLOWER.encode(raw_name),
        };
        let mut napster = vec![source(self.server, &self.nick, &self.raw_name)];
        napster.extend(
            self.others
                .iter()
                .map(|o| source(o.server, &o.nick, &o.raw_name)),
        );
        DownloadRecord {
            id: self.id,
            name: self.name.clone(),
            stem: self.stem.clone(),
            size: Some(self.size),
            urn: String::new(),
            tiger: None,
            state: match self.state {
                State::Paused => "paused",
                State::Failed(_) => "failed",
                _ => "running",
            }
            .into(),
            received: if self.written > 0 {
                vec![[0, self.written]]
            } else {
                Vec::new()
            },
            verified: Vec::new(),
            sources: Vec::new(),
            last_error: self.last_error.clone(),
            napster,
        }
    }

    /// Counts `bytes` in the rate.
    fn count_rate(&mut self, bytes: u64, now: Instant) {
        self.rate.count(bytes, now);
    }

    /// Bytes a second now (0 when not receiving).
    fn rate(&self, now: Instant) -> f64 {
        if self.state != State::Receiving {
            return 0.0;
        }
        self.rate.rate(now)
    }
}

/// Other index results for the file `r` is: the same md5 (when it is one)
/// and size, another user. At most [`MAX_OTHER_SOURCES`], in result order.
fn other_sources(
    results: &[SearchResult],
    r: &SearchResult,
    server: SocketAddr,
) -> VecDeque<Source> {
    let Some(hit) = r.napster.as_ref() else {
        return VecDeque::new();
    };
    let real_md5 = |md5: &str| md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit());
    if !real_md5(&hit.md5) {
        return VecDeque::new();
    }
    let mut others: VecDeque<Source> = VecDeque::new();
    for other in results {
        let (Some(o), Some(at)) = (
            other.napster.as_ref(),
            other
                .origin
                .strip_prefix("index:")
                .and_then(|a| a.parse::<SocketAddr>().ok()),
        ) else {
            continue;
        };
        let same_user = at == server && o.nick == hit.nick;
        let known = others.iter().any(|s| s.server == at && s.nick == o.nick);
        if o.md5 == hit.md5 && other.size == r.size && !same_user && !known {
            others.push_back(Source {
                server: at,
                nick: o.nick.clone(),
                raw_name: o.raw_name.clone(),
            });
            if others.len() >= MAX_OTHER_SOURCES {
                break;
            }
        }
    }
    others
}
