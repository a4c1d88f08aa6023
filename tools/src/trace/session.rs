//! Decoding one TCP stream: each direction is sniffed from its first bytes
//! (Gnutella handshake, HTTP, GIV, OpenNap) and then read message by
//! message. After a 0.6 handshake both sides' blocks decide what follows:
//! descriptors, inflated first when `Content-Encoding: deflate` was
//! announced; TLS and Gnutella2 links are named and skipped.
//!
//! A direction that starts with none of those (the capture started after
//! the handshake, perhaps inside a descriptor) is searched for a run of
//! descriptor headers ([`super::resync`]); so is a plain descriptor link
//! after a gap or a header that declares an impossible length. The bytes
//! skipped are reported once, when descriptors are found again.
//!
//! Every buffer is bounded: heads by the parsers' caps, descriptors by the
//! 64 KiB payload check, a hunt by the length of the run it checks, inflated
//! output by its bounded steps. A direction that stops making sense (bad
//! message, gap in a compressed stream, no descriptors to be found) is
//! reported once and ignored from there on; the rest of the capture goes on.

use hazel_protocol::framer::{split_frame, Framer};
use hazel_protocol::giv::Giv;
use hazel_protocol::handshake::{Handshake, HeadScanner, Headers, Parsed};
use hazel_protocol::http::{Request, Response};
use hazel_protocol::napster::transfer::{DataPortRequest, TransferReply};
use hazel_protocol::pcap::{Direction, StreamInfo, Timestamp};
use serde_json::{json, Map, Value};

use super::describe;
use super::opennap;
use super::record::{quoted, shown, Origin, Record, Transport};
use super::resync::{self, Need, Scan, ZlibStart};
use super::summary::Summary;

/// Bytes a direction may hold while waiting for the other side's handshake.
const MAX_WAITING: usize = 1 << 20;

/// Segments remembered while bytes wait to be recognised (beyond it, the
/// oldest are forgotten and their bytes credited to a later frame).
const MAX_MARKS: usize = 4096;

/// Where one segment of buffered bytes came from: descriptors found by a hunt
/// are shown with the frame that completed them, not the one that let the
/// hunt decide.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Stream offset just past the segment's last byte.
    end: u64,
    frame: u32,
    time: Timestamp,
    epoch: Timestamp,
}

#[derive(Debug)]
enum Mode {
    /// Nothing seen yet: the first bytes decide.
    Sniff,
    Handshake,
    /// Handshake over in this direction; the other side's blocks decide what follows.
    AwaitLink,
    /// Plain descriptors, framed from `buf` by their declared lengths.
    Plain,
    /// Descriptors on a deflate link, through the protocol crate's framer,
    /// which inflates in bounded steps and checks every declared length.
    Deflated {
        framer: Box<Framer>,
    },
    /// Looking for descriptor headers (capture started late, or the framing
    /// was lost).
    Hunt(Box<Hunt>),
    HttpRequests,
    /// `body_left`: body bytes of the last response still to skip.
    HttpResponses {
        body_left: u64,
    },
    OpenNap,
    /// OpenNap data port, connecting side: `GET`/`SEND` and the request line.
    NapRequest,
    /// OpenNap data port, accepting side after its `1`: the size or offset reply.
    NapReply,
    /// OpenNap data port: file data, counted and skipped.
    NapData,
    /// Not decoded from here on (the reason was reported when entering).
    Ignore,
}

/// Why a direction is looking for descriptor headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HuntCause {
    /// The direction's first bytes are no known start: the capture began late.
    CaptureStart,
    /// Bytes were not captured.
    Gap,
    /// A header declared a length no descriptor has.
    BadHeader,
}

impl HuntCause {
    fn label(self) -> &'static str {
        match self {
            HuntCause::CaptureStart => "capture_start",
            HuntCause::Gap => "gap",
            HuntCause::BadHeader => "bad_header",
        }
    }
}

#[derive(Debug)]
struct Hunt {
    cause: HuntCause,
    /// The direction was a plain descriptor link before it lost its framing.
    known_link: bool,
    /// Bytes dropped while hunting.
    skipped: u64,
    /// Bytes of a descriptor cut by a gap, dropped when the hunt began.
    dropped_before: u64,
    /// The first bytes hunted through, to say what they look like.
    sample: Vec<u8>,
    /// The direction may start with a zlib stream (capture start, nothing dropped yet).
    zlib: bool,
}

impl Hunt {
    fn new(cause: HuntCause, known_link: bool, dropped_before: u64) -> Box<Hunt> {
        Box::new(Hunt {
            cause,
            known_link,
            skipped: 0,
            dropped_before,
            sample: Vec::new(),
            zlib: cause == HuntCause::CaptureStart,
        })
    }

    /// Counts bytes dropped, keeping the first few as a sample.
    fn skip(&mut self, bytes: &[u8]) {
        let room = resync::SAMPLE_LEN.saturating_sub(self.sample.len());
        self.sample
            .extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.skipped += bytes.len() as u64;
    }
}

#[derive(Debug)]
struct Half {
    mode: Mode,
    /// Wire bytes not consumed yet. Only appended to directly; bytes leave it through
    /// [`Half::consume`] and [`Half::discard`], which keep `head_scan` in step.
    buf: Vec<u8>,
    /// How far `buf` was searched for the end of the head (handshake block, HTTP head, GIV line)
    /// at its start, so a head arriving in many small segments is scanned once.
    head_scan: HeadScanner,
    /// Handshake blocks this side sent, in order.
    blocks: Vec<Handshake>,
    /// Stream offset just past the last byte received (gaps included): `buf`
    /// ends there.
    end: u64,
    /// No more bytes will come.
    ended: bool,
    /// The segments of `buf` received while sniffing or hunting, oldest first.
    marks: std::collections::VecDeque<Mark>,
    frame: u32,
    time: Timestamp,
    epoch: Timestamp,
}

impl Half {
    fn new() -> Half {
        Half {
            mode: Mode::Sniff,
            buf: Vec::new(),
            head_scan: HeadScanner::new(),
            blocks: Vec::new(),
            end: 0,
            ended: false,
            marks: std::collections::VecDeque::new(),
            frame: 0,
            time: Timestamp::default(),
            epoch: Timestamp::default(),
        }
    }

    /// Drops the first `n` buffered bytes (a message taken, or body skipped): a new head starts.
    fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
        self.head_scan.reset();
    }

    /// Drops everything buffered and frees the buffer.
    fn discard(&mut self) {
        self.buf = Vec::new();
        self.head_scan.reset();
        self.marks = std::collections::VecDeque::new();
    }

    /// Stream offset of `buf[at]`.
    fn offset_of(&self, at: usize) -> u64 {
        (self.end - self.buf.len() as u64) + at as u64
    }

    /// The segment that held the byte just before stream offset `end` (`None`: the latest).
    fn mark_for(&self, end: u64) -> Option<Mark> {
        self.marks.iter().find(|m| m.end >= end).copied()
    }

    /// Forgets the segments wholly before `buf`.
    fn prune_marks(&mut self) {
        let start = self.offset_of(0);
        while self.marks.front().is_some_and(|m| m.end <= start) {
            self.marks.pop_front();
        }
    }
}

/// Where a piece of stream data was seen.
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub frame: u32,
    /// Stream offset of the first byte of the data (gaps included).
    pub offset: u64,
    /// Since the first frame of the capture.
    pub time: Timestamp,
    /// As captured.
    pub epoch: Timestamp,
}

/// One TCP stream being decoded.
#[derive(Debug)]
pub struct Session {
    info: StreamInfo,
    halves: [Half; 2],
    /// The stream uses a Gnutella port (6346, 6347 or one the user named):
    /// shorter runs of headers are enough, and a direction with none is
    /// reported.
    gnutella_port: bool,
    /// A direction carried descriptors (after a handshake or by content).
    descriptor_link: bool,
    /// The connecting side has sent something (the data-port greeting `1`
    /// comes from the accepting side before anything else).
    client_spoke: bool,
    /// The accepting side opened with the OpenNap data-port greeting.
    nap_greeting: bool,
    /// The data-port request was `SEND` (push) rather than `GET`.
    nap_send: bool,
    /// For each HTTP request not yet answered: was it a HEAD (no body back)?
    unanswered_heads: std::collections::VecDeque<bool>,
}

/// What a finished 0.6 handshake agreed for the bytes that follow.
enum LinkKind {
    Descriptors,
    Refused,
    Tls,
    Gnutella2,
}

impl Session {
    /// `gnutella_port`: the stream uses a port Gnutella is expected on.
    pub fn new(info: StreamInfo, gnutella_port: bool) -> Session {
        Session {
            info,
            halves: [Half::new(), Half::new()],
            gnutella_port,
            descriptor_link: false,
            client_spoke: false,
            nap_greeting: false,
            nap_send: false,
            unanswered_heads: std::collections::VecDeque::new(),
        }
    }

    /// Both directions have ended: nothing more will come out of this stream.
    pub fn is_finished(&self) -> bool {
        self.halves.iter().all(|h| matches!(h.mode, Mode::Ignore))
    }

    fn origin(&self, dir: Direction) -> Origin {
        self.origin_at(dir, None)
    }

    /// The origin of a message completed by the segment `mark` (`None`: the latest).
    fn origin_at(&self, dir: Direction, mark: Option<Mark>) -> Origin {
        let h = &self.halves[dir.index()];
        let (src, dst) = match dir {
            Direction::ClientToServer => (self.info.client, self.info.server),
            Direction::ServerToClient => (self.info.server, self.info.client),
        };
        let (frame, time, epoch) = match mark {
            Some(m) => (m.frame, m.time, m.epoch),
            None => (h.frame, h.time, h.epoch),
        };
        Origin {
            frame,
            time,
            epoch,
            transport: Transport::Tcp,
            stream: self.info.id,
            src,
            dst,
            dir,
        }
    }

    fn emit(
        &self,
        dir: Direction,
        kind: &'static str,
        text: String,
        fields: Map<String, Value>,
        out: &mut Vec<Record>,
    ) {
        out.push(Record::new(self.origin(dir), kind, text, fields));
    }

    fn note(&self, dir: Direction, text: String, out: &mut Vec<Record>, summary: &mut Summary) {
        summary.notes += 1;
        let mut f = Map::new();
        f.insert("note".into(), text.clone().into());
        self.emit(dir, "note", text, f, out);
    }

    fn error(
        &mut self,
        dir: Direction,
        what: String,
        out: &mut Vec<Record>,
        summary: &mut Summary,
    ) {
        summary.errors += 1;
        let mut f = Map::new();
        f.insert("error".into(), what.clone().into());
        self.emit(
            dir,
            "error",
            format!("error: {what}; rest of this direction not decoded"),
            f,
            out,
        );
        self.ignore(dir);
    }

    fn ignore(&mut self, dir: Direction) {
        let h = &mut self.halves[dir.index()];
        h.mode = Mode::Ignore;
        h.discard();
    }

    /// In-order bytes of one direction.
    pub fn data(
        &mut self,
        dir: Direction,
        at: At,
        data: &[u8],
        out: &mut Vec<Record>,
        summary: &mut Summary,
    ) {
        let h = &mut self.halves[dir.index()];
        h.frame = at.frame;
        h.time = at.time;
        h.epoch = at.epoch;
        h.end = at.offset + data.len() as u64;
        if matches!(h.mode, Mode::Ignore) {
            return;
        }
        h.buf.extend_from_slice(data);
        if matches!(h.mode, Mode::Sniff | Mode::Hunt(_)) {
            h.prune_marks();
            if h.marks.len() >= MAX_MARKS {
                h.marks.pop_front();
            }
            h.marks.push_back(Mark {
                end: h.end,
                frame: at.frame,
                time: at.time,
                epoch: at.epoch,
            });
        }
        self.pump(dir, out, summary);
        if dir == Direction::ClientToServer {
            self.client_spoke = true;
        }
        // This side's progress may settle what the other side was waiting for: the
        // handshake's outcome, or (once this side carries descriptors) a shorter run.
        let other = dir.reverse();
        if matches!(
            self.halves[other.index()].mode,
            Mode::AwaitLink | Mode::Hunt(_)
        ) {
            self.pump(other, out, summary);
        }
    }

    /// Bytes that were never captured.
    pub fn gap(
        &mut self,
        dir: Direction,
        frame: u32,
        offset: u64,
        len: u64,
        out: &mut Vec<Record>,
        summary: &mut Summary,
    ) {
        summary.gaps += 1;
        self.halves[dir.index()].frame = frame;
        let mut f = Map::new();
        f.insert("offset".into(), offset.into());
        f.insert("len".into(), len.into());
        self.emit(
            dir,
            "gap",
            format!("gap: {len} bytes at offset {offset} were not captured"),
            f,
            out,
        );
        let h = &mut self.halves[dir.index()];
        h.end = offset + len;
        match &mut h.mode {
            Mode::HttpResponses { body_left } if *body_left >= len + h.buf.len() as u64 => {
                *body_left -= len + h.buf.len() as u64;
                h.discard();
            }
            // File data on an OpenNap data port: nothing to resynchronise.
            Mode::Ignore | Mode::NapData => {}
            // A run of headers cannot span the gap: hunt on after it.
            Mode::Hunt(hunt) => {
                hunt.skip(&h.buf);
                hunt.zlib = false;
                h.discard();
            }
            // Descriptors resume at the next run of headers; a handshake cut by the gap
            // may be followed by descriptors too.
            Mode::Plain | Mode::Sniff | Mode::Handshake | Mode::AwaitLink => {
                let known_link = matches!(h.mode, Mode::Plain);
                let dropped = if known_link { h.buf.len() as u64 } else { 0 };
                h.discard();
                h.mode = Mode::Hunt(Hunt::new(HuntCause::Gap, known_link, dropped));
            }
            Mode::Deflated { .. } => {
                self.note(
                    dir,
                    "a gap in a deflate-compressed direction cannot be recovered (inflating \
                     needs every byte before); rest of this direction not decoded"
                        .into(),
                    out,
                    summary,
                );
                self.ignore(dir);
            }
            _ => {
                self.note(
                    dir,
                    "message boundaries lost after the gap; rest of this direction not decoded"
                        .into(),
                    out,
                    summary,
                );
                self.ignore(dir);
            }
        }
    }

    /// The direction ended (FIN/RST) or the capture did.
    pub fn end(&mut self, dir: Direction, out: &mut Vec<Record>, summary: &mut Summary) {
        if matches!(self.halves[dir.index()].mode, Mode::NapReply)
            && !self.halves[dir.index()].buf.is_empty()
        {
            // A number at the very end may have been waiting for a non-digit.
            self.nap_reply(dir, true, out, summary);
        }
        if !self.halves[dir.index()].ended {
            // A hunt judges shorter runs now that no more bytes will come.
            self.halves[dir.index()].ended = true;
            if matches!(self.halves[dir.index()].mode, Mode::Hunt(_) | Mode::Sniff) {
                self.pump(dir, out, summary);
            }
        }
        let h = &self.halves[dir.index()];
        let left = h.buf.len()
            + match &h.mode {
                Mode::Deflated { framer } => framer.buffered(),
                _ => 0,
            };
        let waiting_body = matches!(h.mode, Mode::HttpResponses { body_left } if body_left > 0);
        if left > 0 && !matches!(h.mode, Mode::Ignore | Mode::NapData) && !waiting_body {
            self.note(
                dir,
                format!("stream ends inside a message ({left} bytes left undecoded)"),
                out,
                summary,
            );
        }
        self.ignore(dir);
    }

    fn pump(&mut self, dir: Direction, out: &mut Vec<Record>, summary: &mut Summary) {
        // Each pass either consumes bytes, changes mode, or returns.
        for _ in 0..1_000_000 {
            let progressed = match self.halves[dir.index()].mode {
                Mode::Sniff => self.sniff(dir, out, summary),
                Mode::Handshake => self.handshake(dir, out, summary),
                Mode::AwaitLink => self.await_link(dir, out, summary),
                Mode::Plain => self.plain(dir, out, summary),
                Mode::Deflated { .. } => self.deflated(dir, out, summary),
                Mode::Hunt(_) => self.hunt(dir, out, summary),
                Mode::HttpRequests => self.http_request(dir, out, summary),
                Mode::HttpResponses { .. } => self.http_response(dir, out, summary),
                Mode::OpenNap => self.opennap(dir, out, summary),
                Mode::NapRequest => self.nap_request(dir, out, summary),
                Mode::NapReply => self.nap_reply(dir, false, out, summary),
                Mode::NapData => {
                    let h = &mut self.halves[dir.index()];
                    summary.nap_data_bytes += h.buf.len() as u64;
                    h.discard();
                    false
                }
                Mode::Ignore => false,
            };
            if !progressed {
                return;
            }
        }
    }

    /// How long a run of headers this direction needs before it is taken for descriptors.
    fn need(&self, dir: Direction) -> Need {
        let Mode::Hunt(hunt) = &self.halves[dir.index()].mode else {
            return Need::UNKNOWN;
        };
        if hunt.known_link {
            Need::KNOWN
        } else if self.gnutella_port
            || self.descriptor_link
            || self.halves.iter().any(|h| !h.blocks.is_empty())
        {
            Need::LIKELY
        } else {
            Need::UNKNOWN
        }
    }

    /// Looks for descriptors in a direction that lost (or never had) its framing.
    fn hunt(&mut self, dir: Direction, out: &mut Vec<Record>, summary: &mut Summary) -> bool {
        let need = self.need(dir);
        let h = &mut self.halves[dir.index()];
        let at_end = h.ended;
        let Mode::Hunt(hunt) = &mut h.mode else {
            return false;
        };
        if hunt.zlib {
            match resync::zlib_start(&h.buf, need, at_end) {
                ZlibStart::NeedMore => return false,
                ZlibStart::No => hunt.zlib = false,
                ZlibStart::Yes { .. } => {
                    summary.deflate_directions += 1;
                    h.marks.clear();
                    h.mode = Mode::Deflated {
                        framer: Box::new(Framer::deflated()),
                    };
                    self.descriptor_link = true;
                    self.note(
                        dir,
                        "no handshake in the capture (it starts mid-connection), but this \
                         direction starts with a zlib stream of descriptors (a deflate link \
                         captured from its first compressed byte) — inflating this direction"
                            .into(),
                        out,
                        summary,
                    );
                    return true;
                }
            }
        }
        match resync::scan(&h.buf, need, at_end) {
            Scan::Found { offset } => {
                hunt.skip(&h.buf[..offset]);
                let Mode::Hunt(hunt) = std::mem::replace(&mut h.mode, Mode::Plain) else {
                    return false;
                };
                let at = h.offset_of(offset);
                let mark = h.mark_for(at + 1);
                h.consume(offset);
                self.descriptor_link = true;
                self.resynchronised(dir, &hunt, at, mark, out, summary);
                true
            }
            Scan::Undecided { offset } => {
                hunt.skip(&h.buf[..offset]);
                let given_up = hunt.skipped > resync::GIVE_UP_AFTER;
                h.consume(offset);
                if given_up {
                    self.not_recognised(dir, out, summary);
                }
                false
            }
            Scan::Nothing => {
                hunt.skip(&h.buf);
                h.discard();
                self.not_recognised(dir, out, summary);
                false
            }
        }
    }

    /// Says once where descriptors were found again, and what was skipped to get there.
    fn resynchronised(
        &self,
        dir: Direction,
        hunt: &Hunt,
        offset: u64,
        mark: Option<Mark>,
        out: &mut Vec<Record>,
        summary: &mut Summary,
    ) {
        summary.resyncs += 1;
        summary.resync_skipped_bytes += hunt.skipped;
        let skipped = hunt.skipped;
        let mut text = match hunt.cause {
            HuntCause::CaptureStart => {
                let mut t = String::from(
                    "no handshake in the capture (it starts mid-connection): descriptors \
                     recognised by their headers",
                );
                if skipped > 0 {
                    t.push_str(&format!(
                        "; skipped the first {skipped} bytes (the capture starts inside a message)"
                    ));
                }
                t
            }
            HuntCause::Gap => format!(
                "resynchronised after the gap: skipped {skipped} bytes to the next descriptor header"
            ),
            HuntCause::BadHeader => format!(
                "resynchronised after the bad header: skipped {skipped} bytes to the next \
                 descriptor header"
            ),
        };
        if hunt.dropped_before > 0 {
            text.push_str(&format!(
                "; the {} bytes of a descriptor cut by the gap were dropped",
                hunt.dropped_before
            ));
        }
        let mut f = Map::new();
        f.insert("note".into(), text.clone().into());
        f.insert("cause".into(), hunt.cause.label().into());
        f.insert("skipped".into(), skipped.into());
        f.insert("dropped_before".into(), hunt.dropped_before.into());
        f.insert("offset".into(), offset.into());
        out.push(Record::new(self.origin_at(dir, mark), "resync", text, f));
    }

    /// A hunt that found nothing: the direction is not decoded. Said on the
    /// Gnutella ports and on links known to carry descriptors; counted always.
    fn not_recognised(&mut self, dir: Direction, out: &mut Vec<Record>, summary: &mut Summary) {
        summary.unrecognised_directions += 1;
        let Mode::Hunt(hunt) = &self.halves[dir.index()].mode else {
            return;
        };
        let looks = resync::looks_like(&hunt.sample);
        let mut what = looks.describe().to_string();
        if looks == resync::Looks::Text {
            what.push_str(&format!(": {}", quoted(&hunt.sample, 60)));
        }
        let text = match hunt.cause {
            HuntCause::CaptureStart => format!(
                "no Gnutella handshake and no run of descriptor headers in {} bytes; {what}; \
                 not decoded",
                hunt.skipped
            ),
            HuntCause::Gap | HuntCause::BadHeader => format!(
                "no run of descriptor headers in the {} bytes after the {}; {what}; rest of \
                 this direction not decoded",
                hunt.skipped,
                if hunt.cause == HuntCause::Gap {
                    "gap"
                } else {
                    "bad header"
                },
            ),
        };
        let say = self.gnutella_port
            || self.descriptor_link
            || hunt.known_link
            || self.halves.iter().any(|h| !h.blocks.is_empty());
        if say {
            self.note(dir, text, out, summary);
        }
        self.ignore(dir);
    }

    fn sniff(&mut self, dir: Direction, out: &mut Vec<Record>, summary: &mut Summary) -> bool {
        let buf = &self.halves[dir.index()].buf;
        if buf.is_empty() {
            return false;
        }
        if dir == Direction::ServerToClient && !self.client_spoke && buf[..] == b"1"[..] {
            // The accepting side of an OpenNap data port speaks first, with "1" alone (a
            // capture that starts late may well start with other bytes that begin with '1').
            self.nap_greeting = true;
            let mut f = Map::new();
            f.insert("piece".into(), "greeting".into());
            self.emit(
                dir,
                "opennap_data",
                "OpenNap data port: greeting \"1\"".into(),
                f,
                out,
            );
            summary.count("OpenNap data port");
            let h = &mut self.halves[dir.index()];
            h.consume(1);
            h.mode = Mode::NapReply;
            return true;
        }
        if dir == Direction::ClientToServer && self.nap_greeting {
            self.halves[dir.index()].mode = Mode::NapRequest;
            return true;
        }
        let could_be = |word: &[u8]| {
            let n = buf.len().min(word.len());
            buf[..n] == word[..n]
        };
        let decided = |word: &[u8]| buf.len() >= word.len();
        let mode = if could_be(b"GNUTELLA") {
            decided(b"GNUTELLA").then_some(Mode::Handshake)
        } else if could_be(b"GET ") || could_be(b"HEAD ") {
            (decided(b"GET ") && could_be(b"GET ") || decided(b"HEAD "))
                .then_some(Mode::HttpRequests)
        } else if could_be(b"HTTP") {
            decided(b"HTTP").then_some(Mode::HttpResponses { body_left: 0 })
        } else if could_be(b"GIV ") {
            if !decided(b"GIV ") {
                None
            } else {
                return self.giv(dir, out, summary);
            }
        } else {
            let late = || Some(Mode::Hunt(Hunt::new(HuntCause::CaptureStart, false, 0)));
            match opennap::sniff(buf, dir) {
                Some(true) => Some(Mode::OpenNap),
                // No known start: perhaps a link whose start was not captured.
                Some(false) => late(),
                // Waiting for a whole OpenNap frame of text (a descriptor header always
                // holds a byte below 0x20 in its TTL, hops or length, so it never waits
                // here), unless no more bytes will come.
                None if self.halves[dir.index()].ended => late(),
                None => None,
            }
        };
        match mode {
            Some(mode) => {
                self.halves[dir.index()].mode = mode;
                true
            }
            None => false,
        }
    }

    fn giv(&mut self, dir: Direction, out: &mut Vec<Record>, summary: &mut Summary) -> bool {
        let h = &mut self.halves[dir.index()];
        match Giv::parse_from(&h.buf, &mut h.head_scan) {
            Ok(Parsed::NeedMore) => false,
            Ok(Parsed::Complete { message, consumed }) => {
                summary.count("GIV");
                let mut f = Map::new();
                f.insert("index".into(), message.file_index.into());
                f.insert(
                    "servent_id".into(),
                    super::record::hex(&message.servent_id).into(),
                );
                f.insert(
                    "name".into(),
                    String::from_utf8_lossy(&message.file_name).into(),
                );
                self.emit(
                    dir,
                    "giv",
                    format!(
                        "GIV index={} servent={} name={}",
                        message.file_index,
                        super::record::hex(&message.servent_id),
                        quoted(&message.file_name, 80)
                    ),
                    f,
                    out,
                );
                let h = &mut self.halves[dir.index()];
                h.consume(consumed);
                // The GIV sender serves the file: HTTP responses follow.
                h.mode = Mode::HttpResponses { body_left: 0 };
                true
            }
            Err(e) => {
                self.error(dir, format!("GIV line: {e}"), out, summary);
                false
            }
        }
    }

    fn handshake(&mut self, dir: Direction, out: &mut Vec<Record>, summary: &mut Summary) -> bool {
        let h = &mut self.halves[dir.index()];
        if h.buf.is_empty() {
            return false;
        }
        let n = h.buf.len().min(8);
        if h.buf[..n] != b"GNUTELLA"[..n] {
            // The blocks are over; what follows depends on both sides.
            self.halves[dir.index()].mode = Mode::AwaitLink;
            return true;
        }
        match Handshake::parse_from(&h.buf, &mut h.head_scan) {
            Ok(Parsed::NeedMore) => false,
            Ok(Parsed::Complete { message, consumed }) => {
                summary.count("handshake");
                let (text, fields) = describe_handshake(&message);
                self.emit(dir, "handshake", text, fields, out);
                let h = &mut self.halves[dir.index()];
                h.consume(consumed);
                h.blocks.push(message);
                true
            }
            Err(e) => {
                self.error(dir, format!("handshake block: {e}"), out, summary);
                false
            }
        }
    }

    /// What the handshake agreed, once both sides have said enough.
    fn link(&self) -> Option<LinkKind> {
        let client = &self.halves[0].blocks;
        let server = &self.halves[1].blocks;
        let first_server = server.first()?;
        if matches!(first_server, Handshake::Ok04) {
            return Some(LinkKind::Descriptors);
        }
        if matches!(client.first(), Some(Handshake::Connect04)) || first_server.code() != Some(200)
        {
            return Some(LinkKind::Refused);
        }
        let step3 = client.get(1)?;
        if step3.code() != Some(200) {
            return Some(LinkKind::Refused);
        }
        let empty = Headers::new();
        let h2 = first_server.headers().unwrap_or(&empty);
        let h3 = step3.headers().unwrap_or(&empty);
        let g2 = |h: &Headers| {
            h.get("Content-Type")
                .is_some_and(|v| v.eq_ignore_ascii_case("application/x-gnutella2"))
        };
        if g2(h2) || g2(h3) {
            return Some(LinkKind::Gnutella2);
        }
        if h2
            .get("Upgrade")
            .is_some_and(|v| v.to_ascii_uppercase().starts_with("TLS"))
            && h3.has_token("Connection", "Upgrade")
        {
            return Some(LinkKind::Tls);
        }
        Some(LinkKind::Descriptors)
    }

    fn await_link(&mut self, dir: Direction, out: &mut Vec<Record>, summary: &mut Summary) -> bool {
        let Some(link) = self.link() else {
            if self.halves[dir.index()].buf.len() > MAX_WAITING {
                self.note(
                    dir,
                    "no handshake answer seen; rest of this direction not decoded".into(),
                    out,
                    summary,
                );
                self.ignore(dir);
            }
            return false;
        };
        match link {
            LinkKind::Descriptors => {
                // Each side announces the encoding of what it sends.
                let own = self.halves[dir.index()].blocks.last();
                let deflate = own
                    .and_then(|b| b.headers())
                    .is_some_and(|h| h.content_deflate());
                if deflate {
                    summary.deflate_directions += 1;
                    self.note(
                        dir,
                        "Content-Encoding: deflate — inflating this direction".into(),
                        out,
                        summary,
                    );
                }
                self.descriptor_link = true;
                self.halves[dir.index()].mode = if deflate {
                    Mode::Deflated {
                        framer: Box::new(Framer::deflated()),
                    }
                } else {
                    Mode::Plain
                };
            }
            LinkKind::Refused => {
                self.note(
                    dir,
                    "handshake did not establish a link; rest not decoded".into(),
                    out,
                    summary,
                );
                self.ignore(dir);
            }
            LinkKind::Tls => {
                summary.tls_directions += 1;
                self.note(
                    dir,
                    "link switches to TLS after the handshake; not decoded".into(),
                    out,
                    summary,
                );
                self.ignore(dir);
            }
            LinkKind::Gnutella2 => {
                self.note(
                    dir,
                    "Gnutella2 link (application/x-gnutella2); not decoded".into(),
                    out,
                    summary,
                );
                self.ignore(dir);
            }
        }
        true
    }

    /// Plain descriptors: each header's length says where the next one starts. A header
    /// that declares more than 64 KiB means the framing is lost: it is reported and the
    /// next run of headers is looked for.
    fn plain(&mut self, dir: Direction, out: &mut Vec<Record>, summary: &mut Summary) -> bool {
        let h = &mut self.halves[dir.index()];
        let mut pos = 0;
        let mut records = Vec::new();
        let mut bad = None;
        loop {
            match split_frame(&h.buf[pos..]) {
                Ok(Some((_, total))) => {
                    let (text, fields, type_name) = describe::descriptor(&h.buf[pos..pos + total]);
                    summary.count_descriptor(&type_name, fields.contains_key("error"));
                    let mark = h.mark_for(h.offset_of(pos + total));
                    records.push((text, fields, mark));
                    pos += total;
                }
                Ok(None) => break,
                Err(e) => {
                    bad = Some((e, h.offset_of(pos)));
                    break;
                }
            }
        }
        h.consume(pos);
        h.prune_marks();
        for (text, fields, mark) in records {
            let origin = self.origin_at(dir, mark);
            out.push(Record::new(origin, "descriptor", text, fields));
        }
        let Some((e, offset)) = bad else {
            return false;
        };
        summary.errors += 1;
        let what = format!("descriptor header at stream offset {offset}: {e}");
        let mut f = Map::new();
        f.insert("error".into(), what.clone().into());
        f.insert("offset".into(), offset.into());
        self.emit(
            dir,
            "error",
            format!("error: {what}; looking for the next descriptor header"),
            f,
            out,
        );
        self.halves[dir.index()].mode = Mode::Hunt(Hunt::new(HuntCause::BadHeader, true, 0));
        true
    }

    fn deflated(&mut self, dir: Direction, out: &mut Vec<Record>, summary: &mut Summary) -> bool {
        let h = &mut self.halves[dir.index()];
        let Mode::Deflated { framer } = &mut h.mode else {
            return false;
        };
        let wire = std::mem::take(&mut h.buf);
        h.head_scan.reset();
        let mut failure = framer.push(&wire).err();
        let mut records = Vec::new();
        while failure.is_none() {
            match framer.next_frame_ref() {
                Ok(Some(frame)) => {
                    let (text, fields, type_name) = describe::descriptor(frame.bytes);
                    summary.inflated_bytes += frame.bytes.len() as u64;
                    summary.count_descriptor(&type_name, fields.contains_key("error"));
                    records.push((text, fields));
                }
                Ok(None) => break,
                Err(e) => failure = Some(e),
            }
        }
        for (text, fields) in records {
            self.emit(dir, "descriptor", text, fields, out);
        }
        if let Some(e) = failure {
            self.error(
                dir,
                format!("descriptor stream (inflated): {e}"),
                out,
                summary,
            );
        }
        false
    }

    fn http_request(
        &mut self,
        dir: Direction,
        out: &mut Vec<Record>,
        summary: &mut Summary,
    ) -> bool {
        let h = &mut self.halves[dir.index()];
        if h.buf.is_empty() {
            return false;
        }
        match Request::parse_from(&h.buf, &mut h.head_scan) {
            Ok(Parsed::NeedMore) => false,
            Ok(Parsed::Complete { message, consumed }) => {
                summary.count("HTTP request");
                if self.unanswered_heads.len() < 1024 {
                    self.unanswered_heads
                        .push_back(message.method == hazel_protocol::http::Method::Head);
                }
                let line = format!(
                    "{} {} {}",
                    message.method.as_str(),
                    String::from_utf8_lossy(&message.target),
                    message.version
                );
                let mut f = Map::new();
                f.insert("method".into(), message.method.as_str().into());
                f.insert(
                    "target".into(),
                    String::from_utf8_lossy(&message.target).into(),
                );
                f.insert("version".into(), message.version.to_string().into());
                f.insert("headers".into(), headers_json(&message.headers));
                let mut text = format!("HTTP request: {}", quoted(line.as_bytes(), 200));
                if let Some(r) = message.headers.get("Range") {
                    text.push_str(&format!(" Range: {}", shown(r, 120)));
                }
                self.emit(dir, "http_request", text, f, out);
                self.halves[dir.index()].consume(consumed);
                true
            }
            Err(e) => {
                self.error(dir, format!("HTTP request head: {e}"), out, summary);
                false
            }
        }
    }

    fn http_response(
        &mut self,
        dir: Direction,
        out: &mut Vec<Record>,
        summary: &mut Summary,
    ) -> bool {
        let h = &mut self.halves[dir.index()];
        if let Mode::HttpResponses { body_left } = &mut h.mode {
            if *body_left > 0 {
                let skip = (*body_left).min(h.buf.len() as u64);
                *body_left -= skip;
                let still_in_body = *body_left > 0;
                h.consume(skip as usize);
                summary.http_body_bytes += skip;
                if still_in_body {
                    return false;
                }
            }
        }
        if h.buf.is_empty() {
            return false;
        }
        match Response::parse_from(&h.buf, &mut h.head_scan) {
            Ok(Parsed::NeedMore) => false,
            Ok(Parsed::Complete { message, consumed }) => {
                summary.count("HTTP response");
                let answers_head = self.unanswered_heads.pop_front().unwrap_or(false);
                // No body after a HEAD, a 1xx, a 204 or a 304, whatever the headers say.
                let bodiless = answers_head
                    || (100..200).contains(&message.code)
                    || message.code == 204
                    || message.code == 304;
                let length = if bodiless {
                    Some(0)
                } else {
                    message.content_length().ok().flatten()
                };
                let mut f = Map::new();
                f.insert("status_line".into(), message.status_line().into());
                f.insert(
                    "version".into(),
                    message
                        .version
                        .map(|v| v.to_string())
                        .map_or(Value::Null, Value::from),
                );
                f.insert("code".into(), message.code.into());
                f.insert("reason".into(), message.reason.clone().into());
                f.insert("headers".into(), headers_json(&message.headers));
                f.insert(
                    "content_length".into(),
                    length.map_or(Value::Null, Value::from),
                );
                let mut text = format!(
                    "HTTP response: {}",
                    quoted(message.status_line().as_bytes(), 120)
                );
                if let Some(server) = message.headers.get("Server") {
                    text.push_str(&format!(" Server: {}", shown(server, 120)));
                }
                if let Some(range) = message.headers.get("Content-Range") {
                    text.push_str(&format!(" Content-Range: {}", shown(range, 120)));
                }
                if let Some(l) = length.filter(|&l| l > 0) {
                    text.push_str(&format!(" body={l}"));
                }
                self.emit(dir, "http_response", text, f, out);
                let h = &mut self.halves[dir.index()];
                h.consume(consumed);
                // Without a length the body runs to the end of the connection.
                h.mode = Mode::HttpResponses {
                    body_left: length.unwrap_or(u64::MAX),
                };
                true
            }
            Err(e) => {
                self.error(dir, format!("HTTP response head: {e}"), out, summary);
                false
            }
        }
    }

    fn nap_request(
        &mut self,
        dir: Direction,
        out: &mut Vec<Record>,
        summary: &mut Summary,
    ) -> bool {
        match DataPortRequest::parse(&self.halves[dir.index()].buf) {
            Ok(None) => false,
            Ok(Some((request, used))) => {
                summary.count("OpenNap data port");
                if request == DataPortRequest::GetList {
                    let mut f = Map::new();
                    f.insert("piece".into(), "request".into());
                    f.insert("command".into(), "GETLIST".into());
                    self.emit(
                        dir,
                        "opennap_data",
                        "OpenNap data port: GETLIST".to_string(),
                        f,
                        out,
                    );
                    let h = &mut self.halves[dir.index()];
                    h.consume(used);
                    // The browse list follows from the other side.
                    self.nap_send = false;
                    h.mode = Mode::NapData;
                    return true;
                }
                let (word, nick, name, number, what) = match &request {
                    DataPortRequest::Get { nick, name, offset } => {
                        ("GET", nick, name, *offset, "offset")
                    }
                    DataPortRequest::Send { nick, name, size } => {
                        ("SEND", nick, name, *size, "size")
                    }
                    DataPortRequest::GetList => return true,
                };
                self.nap_send = word == "SEND";
                let mut f = Map::new();
                f.insert("piece".into(), "request".into());
                f.insert("command".into(), word.into());
                f.insert("nick".into(), String::from_utf8_lossy(nick).into());
                f.insert("name".into(), String::from_utf8_lossy(name).into());
                f.insert(what.into(), number.into());
                self.emit(
                    dir,
                    "opennap_data",
                    format!(
                        "OpenNap data port: {word} nick={} file={} {what}={number}",
                        quoted(nick, 40),
                        quoted(name, 120)
                    ),
                    f,
                    out,
                );
                let h = &mut self.halves[dir.index()];
                h.consume(used);
                // After a SEND the pushing sharer sends the file; after a GET nothing.
                h.mode = Mode::NapData;
                true
            }
            Err(e) => {
                self.error(dir, format!("OpenNap data-port request: {e}"), out, summary);
                false
            }
        }
    }

    fn nap_reply(
        &mut self,
        dir: Direction,
        end_of_piece: bool,
        out: &mut Vec<Record>,
        summary: &mut Summary,
    ) -> bool {
        match TransferReply::parse(&self.halves[dir.index()].buf, end_of_piece) {
            Ok(None) => false,
            Ok(Some((reply, used))) => {
                summary.count("OpenNap data port");
                // To a GET the sharer answers the size; to a SEND the downloader the offset.
                let what = if self.nap_send { "offset" } else { "size" };
                let mut f = Map::new();
                f.insert("piece".into(), "reply".into());
                let text = match &reply {
                    TransferReply::Number(n) => {
                        f.insert(what.into(), (*n).into());
                        format!("OpenNap data port: {what} {n}")
                    }
                    TransferReply::Refused(t) => {
                        f.insert("refused".into(), String::from_utf8_lossy(t).into());
                        format!("OpenNap data port: refused {}", quoted(t, 80))
                    }
                };
                self.emit(dir, "opennap_data", text, f, out);
                let h = &mut self.halves[dir.index()];
                h.consume(used);
                h.mode = Mode::NapData;
                true
            }
            Err(e) => {
                self.error(dir, format!("OpenNap data-port reply: {e}"), out, summary);
                false
            }
        }
    }

    fn opennap(&mut self, dir: Direction, out: &mut Vec<Record>, summary: &mut Summary) -> bool {
        let h = &self.halves[dir.index()];
        match opennap::next(&h.buf, dir) {
            opennap::Next::NeedMore => false,
            opennap::Next::Message {
                consumed,
                text,
                fields,
            } => {
                summary.count("OpenNap");
                self.emit(dir, "opennap", text, fields, out);
                self.halves[dir.index()].consume(consumed);
                true
            }
            opennap::Next::Error(e) => {
                self.error(dir, format!("OpenNap frame: {e}"), out, summary);
                false
            }
        }
    }
}

fn headers_json(headers: &Headers) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|h| json!([h.name(), h.value()]))
            .collect(),
    )
}

fn describe_handshake(block: &Handshake) -> (String, Map<String, Value>) {
    let mut f = Map::new();
    f.insert("start_line".into(), block.start_line().into());
    let headers = block.headers();
    f.insert(
        "headers".into(),
        headers.map_or(Value::Array(Vec::new()), headers_json),
    );
    let mut text = format!("handshake: {}", shown(&block.start_line(), 200));
    if let Some(h) = headers {
        let mut notable = Vec::new();
        for name in [
            "User-Agent",
            "X-Ultrapeer",
            "Accept-Encoding",
            "Content-Encoding",
            "Upgrade",
            "Content-Type",
        ] {
            if let Some(v) = h.get(name) {
                notable.push(format!("{name}: {}", shown(v, 200)));
            }
        }
        text.push_str(&format!(
            " ({} header{}",
            h.len(),
            if h.len() == 1 { "" } else { "s" }
        ));
        if !notable.is_empty() {
            text.push_str("; ");
            text.push_str(&notable.join("; "));
        }
        text.push(')');
    }
    (text, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a stream whose pieces arrive in order, each `step` bytes at a time (or whole when
    /// `step` is 0), and returns each record's kind and text.
    fn decode(pieces: &[(Direction, &[u8])], step: usize) -> Vec<(&'static str, String)> {
        let info = StreamInfo {
            id: 0,
            client: "127.0.0.1:40000".parse().expect("addr"),
            server: "127.0.0.1:6346".parse().expect("addr"),
            first_frame: 1,
        };
        let mut session = Session::new(info, true);
        let mut out = Vec::new();
        let mut summary = Summary::default();
        let mut offsets = [0u64; 2];
        for (dir, bytes) in pieces {
            let step = if step == 0 { bytes.len() } else { step };
            for chunk in bytes.chunks(step) {
                let at = At {
                    frame: 1,
                    offset: offsets[dir.index()],
                    time: Timestamp::default(),
                    epoch: Timestamp::default(),
                };
                offsets[dir.index()] += chunk.len() as u64;
                session.data(*dir, at, chunk, &mut out, &mut summary);
            }
        }
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            session.end(dir, &mut out, &mut summary);
        }
        out.into_iter().map(|r| (r.kind, r.text)).collect()
    }

    #[test]
    fn heads_dribbled_one_byte_per_segment_decode_as_when_whole() {
        let http: [(Direction, &[u8]); 2] = [
            (
                Direction::ClientToServer,
                b"GET /get/1/a.mp3 HTTP/1.1\r\nRange: bytes=0-\r\n\r\nHEAD /get/2/b.mp3 HTTP/1.1\r\n\r\n",
            ),
            (
                Direction::ServerToClient,
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 404 Not Found\r\nContent-Length: 7\r\n\r\n",
            ),
        ];
        let handshake: [(Direction, &[u8]); 3] = [
            (
                Direction::ClientToServer,
                b"GNUTELLA CONNECT/0.6\r\nUser-Agent: a\r\n\r\n",
            ),
            (
                Direction::ServerToClient,
                b"GNUTELLA/0.6 200 OK\r\nUser-Agent: b\r\n\r\n",
            ),
            (Direction::ClientToServer, b"GNUTELLA/0.6 200 OK\r\n\r\n"),
        ];
        let giv: [(Direction, &[u8]); 1] = [(
            Direction::ClientToServer,
            b"GIV 5:00112233445566778899aabbccddeeff/a.mp3\n\nHTTP/1.1 503 Busy\r\n\r\n",
        )];
        for (pieces, kinds) in [
            (
                &http[..],
                &[
                    "http_request",
                    "http_request",
                    "http_response",
                    "http_response",
                ][..],
            ),
            (&handshake[..], &["handshake", "handshake", "handshake"][..]),
            (&giv[..], &["giv", "http_response"][..]),
        ] {
            let whole = decode(pieces, 0);
            let got: Vec<&str> = whole.iter().map(|(kind, _)| *kind).collect();
            assert_eq!(got, kinds, "{whole:?}");
            assert_eq!(decode(pieces, 1), whole);
            assert_eq!(decode(pieces, 3), whole);
        }
    }

    /// A plain descriptor stream captured from any byte on, delivered in any segment size:
    /// exactly the descriptors that start at or after the cut are decoded, and the bytes
    /// before the first of them are reported as skipped.
    #[test]
    fn late_start_at_any_offset_finds_the_next_descriptor() {
        use hazel_protocol::descriptor::{Descriptor, Payload, Ping, Pong, Query, SpeedField};
        use hazel_protocol::header::DescriptorId;
        let mut stream = Vec::new();
        let mut starts = Vec::new();
        for n in 0..12u8 {
            let payload = match n % 3 {
                0 => Payload::Query(Query::new(SpeedField::flags(0), format!("find {n}"))),
                1 => Payload::Ping(Ping { ggep: None }),
                _ => Payload::Pong(Pong {
                    port: 6346,
                    ip: std::net::Ipv4Addr::new(10, 0, 0, n),
                    files: 3,
                    kbytes: 4,
                    ggep: None,
                }),
            };
            starts.push(stream.len());
            stream.extend_from_slice(
                &Descriptor {
                    id: DescriptorId::modern([n.wrapping_mul(37); 16]),
                    ttl: 5,
                    hops: 1,
                    payload,
                }
                .to_bytes(),
            );
        }
        for cut in 0..starts[5] {
            let first = starts.iter().position(|&s| s >= cut).unwrap();
            for step in [0, 1, 5] {
                let records = decode(&[(Direction::ClientToServer, &stream[cut..])], step);
                let descriptors = records.iter().filter(|(k, _)| *k == "descriptor").count();
                assert_eq!(descriptors, starts.len() - first, "cut {cut} step {step}");
                let resync: Vec<&String> = records
                    .iter()
                    .filter(|(k, _)| *k == "resync")
                    .map(|(_, t)| t)
                    .collect();
                assert_eq!(resync.len(), 1, "cut {cut} step {step}: {records:?}");
                let skipped = starts[first] - cut;
                if skipped > 0 {
                    assert!(
                        resync[0].contains(&format!("skipped the first {skipped} bytes")),
                        "{}",
                        resync[0]
                    );
                }
            }
        }
    }

    /// Random mixtures of descriptors, their fragments, junk, headers declaring 4 GiB,
    /// zlib headers and gaps, in random segment sizes, through both directions: nothing
    /// panics, and no direction ever holds more than its largest bound (a handshake
    /// waiting for the other side) plus one segment.
    #[test]
    fn random_input_never_panics_and_buffers_stay_bounded() {
        use hazel_protocol::descriptor::{Descriptor, Payload, Ping, Query, SpeedField};
        use hazel_protocol::header::DescriptorId;
        use rand::{Rng, SeedableRng};
        let seed: u64 = rand::thread_rng().gen();
        println!("seed {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        const MAX_SEGMENT: usize = 3000;
        for round in 0..60 {
            let mut pieces: Vec<Vec<u8>> = Vec::new();
            for _ in 0..rng.gen_range(1..80) {
                let piece = match rng.gen_range(0..7) {
                    0 | 1 => Descriptor {
                        id: DescriptorId::modern(rng.gen()),
                        ttl: rng.gen_range(1..8),
                        hops: rng.gen_range(0..8),
                        payload: if rng.gen_bool(0.5) {
                            Payload::Ping(Ping { ggep: None })
                        } else {
                            Payload::Query(Query::new(
                                SpeedField::flags(0),
                                "x".repeat(rng.gen_range(0..300)),
                            ))
                        },
                    }
                    .to_bytes(),
                    2 => (0..rng.gen_range(1..5000)).map(|_| rng.gen()).collect(),
                    3 => {
                        let mut h = vec![0x11u8; 16];
                        h.extend_from_slice(&[0x80, 3, 1]);
                        h.extend_from_slice(&rng.gen_range(65_000u32..=u32::MAX).to_le_bytes());
                        h
                    }
                    4 => vec![0x78, 0x9c, 0x00, 0x00, 0xff, 0xff],
                    5 => b"GNUTELLA CONNECT/0.6\r\nX: y\r\n".to_vec(),
                    _ => vec![rng.gen(); rng.gen_range(1..70_000)],
                };
                pieces.push(piece);
            }
            let stream: Vec<u8> = pieces.concat();
            let info = StreamInfo {
                id: round,
                client: "127.0.0.1:40000".parse().expect("addr"),
                server: "127.0.0.1:6346".parse().expect("addr"),
                first_frame: 1,
            };
            let mut session = Session::new(info, rng.gen_bool(0.5));
            let mut out = Vec::new();
            let mut summary = Summary::default();
            let mut offsets = [0u64; 2];
            let mut pos = 0;
            while pos < stream.len() {
                let dir = if rng.gen_bool(0.7) {
                    Direction::ClientToServer
                } else {
                    Direction::ServerToClient
                };
                let len = rng.gen_range(1..=MAX_SEGMENT).min(stream.len() - pos);
                let d = dir.index();
                if rng.gen_ratio(1, 30) {
                    session.gap(dir, 1, offsets[d], len as u64, &mut out, &mut summary);
                } else {
                    let at = At {
                        frame: 1,
                        offset: offsets[d],
                        time: Timestamp::default(),
                        epoch: Timestamp::default(),
                    };
                    session.data(dir, at, &stream[pos..pos + len], &mut out, &mut summary);
                }
                offsets[d] += len as u64;
                pos += len;
                for h in &session.halves {
                    assert!(h.buf.len() <= MAX_WAITING + MAX_SEGMENT, "round {round}");
                    assert!(h.marks.len() <= MAX_MARKS);
                }
                out.clear();
            }
            for dir in [Direction::ClientToServer, Direction::ServerToClient] {
                session.end(dir, &mut out, &mut summary);
            }
            assert!(session.is_finished());
        }
    }
}
