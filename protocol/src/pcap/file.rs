//! Capture files: legacy pcap (both byte orders, micro- and nanosecond) and
//! pcapng, read from memory into numbered frames.
//!
//! The container format is parsed by `pcap-parser`; this module only walks
//! the records, numbers the packets from 1 like tshark does, and turns every
//! way a file can be damaged into a [`CaptureError`] that names the frame.
//! Nothing here allocates from a length field: frames borrow the input.

use std::fmt;

use pcap_parser::pcapng::Block;
use pcap_parser::{PcapError, PcapHeader};

/// The largest record a legacy pcap file may declare. libpcap's own limit
/// (`MAXIMUM_SNAPLEN`) is 262144; anything larger is a damaged record header.
const MAX_RECORD_LEN: u32 = 262_144;

/// How far past a damaged record the reader looks for the next good one.
const MAX_RESYNC_SCAN: usize = 4 << 20;

/// A record whose clock is further than this from the last good record's is
/// not taken for a record header when resynchronising.
const MAX_CLOCK_JUMP_SECS: u32 = 7 * 86_400;

/// The shape of legacy pcap record headers in one file.
#[derive(Debug, Clone, Copy)]
struct LegacyLayout {
    big_endian: bool,
    nanos: bool,
    header_len: usize,
}

impl LegacyLayout {
    fn frac_limit(&self) -> u32 {
        if self.nanos {
            1_000_000_000
        } else {
            1_000_000
        }
    }

    /// (seconds, fraction, captured length, original length), if whole.
    fn header(&self, at: &[u8]) -> Option<(u32, u32, u32, u32)> {
        let head = at.get(..self.header_len)?;
        let word = |i: usize| {
            let b = [head[i], head[i + 1], head[i + 2], head[i + 3]];
            if self.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        Some((word(0), word(4), word(8), word(12)))
    }

    /// The whole length of a believable record at `pos`, if there is one.
    fn plausible(&self, data: &[u8], pos: usize, last_secs: Option<u32>) -> Option<usize> {
        let (secs, frac, caplen, origlen) = self.header(data.get(pos..)?)?;
        let believable = caplen > 0
            && caplen <= MAX_RECORD_LEN
            && origlen >= caplen
            && origlen <= MAX_RECORD_LEN
            && frac < self.frac_limit()
            && match last_secs {
                Some(last) => secs.abs_diff(last) <= MAX_CLOCK_JUMP_SECS,
                None => true,
            };
        let len = self.header_len + caplen as usize;
        (believable && pos + len <= data.len()).then_some(len)
    }
}

/// Link-layer types this reader knows how to take apart (tcpdump.org numbers).
pub mod linktype {
    /// Ethernet II.
    pub const ETHERNET: i32 = 1;
    /// Raw IPv4 or IPv6 (no link header).
    pub const RAW: i32 = 101;
    /// Linux cooked capture v1 (`tcpdump -i any`).
    pub const LINUX_SLL: i32 = 113;
    /// Raw IPv4.
    pub const IPV4: i32 = 228;
    /// Raw IPv6.
    pub const IPV6: i32 = 229;
    /// BSD loopback: a 4-byte address family in host order, then IP.
    pub const NULL: i32 = 0;
}

/// When a frame was captured, as seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    /// Seconds as a float, for display and JSON.
    pub fn as_secs_f64(self) -> f64 {
        self.secs as f64 + f64::from(self.nanos) / 1e9
    }

    /// Time elapsed since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Timestamp {
        let a = i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos);
        let b = i128::from(earlier.secs) * 1_000_000_000 + i128::from(earlier.nanos);
        let d = (a - b).max(0);
        Timestamp {
            secs: i64::try_from(d / 1_000_000_000).unwrap_or(i64::MAX),
            nanos: (d % 1_000_000_000) as u32,
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.secs, self.nanos / 1000)
    }
}

/// One captured packet, borrowed from the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// 1-based position among the packets of the file, as tshark numbers them.
    pub number: u32,
    pub timestamp: Timestamp,
    /// Link-layer type of the interface that captured it (see [`linktype`]).
    pub linktype: i32,
    /// The bytes that were captured (may be fewer than went over the wire).
    pub data: &'a [u8],
    /// The length of the packet on the wire.
    pub orig_len: u32,
}

impl Frame<'_> {
    /// True when the capture kept fewer bytes than the packet had.
    pub fn is_cut(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.orig_len)
    }
}

/// Why a capture file (as opposed to one packet in it) cannot be read further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureError {
    /// The file does not start like a pcap or pcapng file.
    NotACapture,
    /// The file ends inside a record: `frame` is the number the record would
    /// have had, `offset` where it starts in the file.
    Truncated { frame: u32, offset: usize },
    /// A record header makes no sense (for example a length above 256 KiB).
    /// `resumed_at` is where reading goes on: the next offset at which two
    /// plausible records follow each other (legacy pcap), or `None` when
    /// nothing after the damage can be trusted. Frame numbers after a
    /// resumption count the records found, not those lost in the damage.
    Damaged {
        frame: u32,
        offset: usize,
        reason: &'static str,
        resumed_at: Option<usize>,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::NotACapture => write!(f, "not a pcap or pcapng capture file"),
            CaptureError::Truncated { frame, offset } => write!(
                f,
                "capture file is truncated: it ends inside the record of frame {frame} (file offset {offset})"
            ),
            CaptureError::Damaged {
                frame,
                offset,
                reason,
                resumed_at: None,
            } => write!(
                f,
                "capture file is damaged at the record of frame {frame} (file offset {offset}): {reason}; the rest of the file is skipped"
            ),
            CaptureError::Damaged {
                frame,
                offset,
                reason,
                resumed_at: Some(at),
            } => write!(
                f,
                "capture file is damaged at the record of frame {frame} (file offset {offset}): {reason}; skipped {} bytes, reading resumes at offset {at} (later frame numbers count only the records found)",
                at.saturating_sub(*offset)
            ),
        }
    }
}

impl std::error::Error for CaptureError {}

/// Which container the file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap; `big_endian`, `nanos` from the magic number.
    Legacy {
        big_endian: bool,
        nanos: bool,
        modified: bool,
        linktype: i32,
    },
    PcapNg,
}

/// A capture file held in memory.
#[derive(Debug, Clone, Copy)]
pub struct Capture<'a> {
    data: &'a [u8],
    format: CaptureFormat,
    /// Where the first record starts.
    body: usize,
}

impl<'a> Capture<'a> {
    /// Recognises the file's format from its first bytes.
    pub fn open(data: &'a [u8]) -> Result<Capture<'a>, CaptureError> {
        if data.len() >= 4 && data[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            return Ok(Capture {
                data,
                format: CaptureFormat::PcapNg,
                body: 0,
            });
        }
        match pcap_parser::parse_pcap_header(data) {
            Ok((rest, header)) => Ok(Capture {
                data,
                format: legacy_format(&header),
                body: data.len() - rest.len(),
            }),
            Err(_) => Err(CaptureError::NotACapture),
        }
    }

    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The packets of the file in order. After a [`CaptureError`] the
    /// iterator ends.
    pub fn frames(&self) -> Frames<'a> {
        Frames {
            data: self.data,
            pos: self.body,
            format: self.format,
            next_number: 1,
            done: false,
            ng: NgState::default(),
            last_secs: None,
        }
    }
}

fn legacy_format(header: &PcapHeader) -> CaptureFormat {
    CaptureFormat::Legacy {
        big_endian: header.is_bigendian(),
        nanos: header.is_nanosecond_precision(),
        modified: header.is_modified_format(),
        linktype: header.network.0,
    }
}

/// What a pcapng section has declared so far.
#[derive(Debug, Default, Clone)]
struct NgState {
    big_endian: bool,
    /// Per interface: link type, ticks per second, offset in seconds.
    interfaces: Vec<(i32, u64, i64)>,
}

/// Iterator over the frames of a [`Capture`].
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    data: &'a [u8],
    pos: usize,
    format: CaptureFormat,
    next_number: u32,
    done: bool,
    ng: NgState,
    /// Seconds of the last good legacy record, to judge candidate headers.
    last_secs: Option<u32>,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.format {
            CaptureFormat::Legacy {
                big_endian,
                nanos,
                modified,
                linktype,
            } => self.next_legacy(big_endian, nanos, modified, linktype),
            CaptureFormat::PcapNg => self.next_ng(),
        };
        match item {
            Some(Ok(frame)) => {
                self.next_number = self.next_number.saturating_add(1);
                Some(Ok(frame))
            }
            Some(Err(e)) => {
                // Only a resumable damage lets the iteration go on.
                self.done = !matches!(
                    e,
                    CaptureError::Damaged {
                        resumed_at: Some(_),
                        ..
                    }
                );
                Some(Err(e))
            }
            None => {
                self.done = true;
                None
            }
        }
    }
}

impl<'a> Frames<'a> {
    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    fn truncated(&self) -> CaptureError {
        CaptureError::Truncated {
            frame: self.next_number,
            offset: self.pos,
        }
    }

    /// Legacy pcap: reports damage at `pos` and moves past it to the next
    /// offset where a plausible record is followed by another (or by the end
    /// of the file). Without one, the rest of the file is given up.
    fn legacy_damage(&mut self, reason: &'static str, legacy: LegacyLayout) -> CaptureError {
        let offset = self.pos;
        let limit = self.data.len().min(offset.saturating_add(MAX_RESYNC_SCAN));
        let found =
            (offset + 1..limit).find(|&p| match legacy.plausible(self.data, p, self.last_secs) {
                Some(len) => {
                    let next = p + len;
                    next == self.data.len()
                        || legacy.plausible(self.data, next, self.last_secs).is_some()
                }
                None => false,
            });
        if let Some(p) = found {
            self.pos = p;
        }
        CaptureError::Damaged {
            frame: self.next_number,
            offset,
            reason,
            resumed_at: found,
        }
    }

    /// pcapng: a block at `pos` that does not parse (`reason`) or runs past the end of the
    /// file (`None`). Reading resumes at the next offset where a believable block is followed
    /// by another (or by the end of the file); without one, a block running past the end is
    /// the file's truncation and any other damage gives up the rest of the file.
    fn ng_damage(&mut self, reason: Option<&'static str>) -> CaptureError {
        let offset = self.pos;
        let limit = self.data.len().min(offset.saturating_add(MAX_RESYNC_SCAN));
        let big_endian = self.ng.big_endian;
        let data = self.data;
        // Blocks are padded to 4 bytes, so the next good one starts at a multiple of 4 from here.
        let found = (offset + 4..limit).step_by(4).find(|&p| {
            ng_block_len(data, p, big_endian).is_some_and(|len| {
                let next = p + len;
                next == data.len() || ng_block_len(data, next, big_endian).is_some()
            })
        });
        match (found, reason) {
            (None, None) => self.truncated(),
            (found, reason) => {
                if let Some(p) = found {
                    self.pos = p;
                }
                CaptureError::Damaged {
                    frame: self.next_number,
                    offset,
                    reason: reason.unwrap_or("pcapng block length is damaged"),
                    resumed_at: found,
                }
            }
        }
    }

    fn next_legacy(
        &mut self,
        big_endian: bool,
        nanos: bool,
        modified: bool,
        linktype: i32,
    ) -> Option<Result<Frame<'a>, CaptureError>> {
        let layout = LegacyLayout {
            big_endian,
            nanos,
            header_len: if modified { 24 } else { 16 },
        };
        let rest = self.rest();
        if rest.is_empty() {
            return None;
        }
        let Some((ts_sec, ts_frac, caplen, origlen)) = layout.header(rest) else {
            return Some(Err(self.truncated()));
        };
        if caplen > MAX_RECORD_LEN {
            return Some(Err(self.legacy_damage(
                "record length above 256 KiB (not a record header)",
                layout,
            )));
        }
        if ts_frac >= layout.frac_limit() {
            return Some(Err(self.legacy_damage(
                "sub-second timestamp out of range (not a record header)",
                layout,
            )));
        }
        if origlen < caplen {
            return Some(Err(self.legacy_damage(
                "record keeps more bytes than the packet had (not a record header)",
                layout,
            )));
        }
        let end = layout.header_len + caplen as usize;
        let Some(data) = rest.get(layout.header_len..end) else {
            return Some(Err(self.truncated()));
        };
        self.pos += end;
        self.last_secs = Some(ts_sec);
        Some(Ok(Frame {
            number: self.next_number,
            timestamp: Timestamp {
                secs: i64::from(ts_sec),
                nanos: if nanos { ts_frac } else { ts_frac * 1000 },
            },
            linktype,
            data,
            orig_len: origlen,
        }))
    }

    fn next_ng(&mut self) -> Option<Result<Frame<'a>, CaptureError>> {
        loop {
            let rest = self.rest();
            if rest.is_empty() {
                return None;
            }
            let parsed = if rest.len() >= 4 && rest[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
                pcap_parser::parse_sectionheaderblock(rest)
                    .map(|(r, b)| (r, Block::SectionHeader(b)))
            } else if self.ng.big_endian {
                pcap_parser::parse_block_be(rest)
            } else {
                pcap_parser::parse_block_le(rest)
            };
            let (after, block) = match parsed {
                Ok(ok) => ok,
                Err(pcap_parser::nom::Err::Incomplete(_)) => {
                    return Some(Err(self.ng_damage(None)));
                }
                Err(pcap_parser::nom::Err::Error(e)) | Err(pcap_parser::nom::Err::Failure(e)) => {
                    return Some(Err(match e {
                        PcapError::Incomplete(_) | PcapError::UnexpectedEof => self.ng_damage(None),
                        _ => self.ng_damage(Some("pcapng block does not parse")),
                    }))
                }
            };
            let consumed = rest.len() - after.len();
            if consumed == 0 {
                return Some(Err(self.ng_damage(Some("pcapng block of length zero"))));
            }
            let block_start = self.pos;
            self.pos += consumed;
            match block {
                Block::SectionHeader(shb) => {
                    self.ng = NgState {
                        big_endian: shb.big_endian(),
                        interfaces: Vec::new(),
                    };
                }
                Block::InterfaceDescription(idb) => {
                    let per_sec = ticks_per_second(idb.if_tsresol);
                    self.ng
                        .interfaces
                        .push((idb.linktype.0, per_sec, idb.if_tsoffset));
                }
                Block::EnhancedPacket(epb) => {
                    let Some(&(linktype, per_sec, offset)) =
                        self.ng.interfaces.get(epb.if_id as usize)
                    else {
                        // The block itself is whole: only this packet is lost.
                        return Some(Err(CaptureError::Damaged {
                            frame: self.next_number,
                            offset: block_start,
                            reason: "packet names an interface that was never described",
                            resumed_at: Some(self.pos),
                        }));
                    };
                    let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    return Some(Ok(Frame {
                        number: self.next_number,
                        timestamp: ticks_to_timestamp(ticks, per_sec, offset),
                        linktype,
                        data: epb.data.get(..epb.caplen as usize).unwrap_or(epb.data),
                        orig_len: epb.origlen,
                    }));
                }
                Block::SimplePacket(spb) => {
                    let Some(&(linktype, _, _)) = self.ng.interfaces.first() else {
                        return Some(Err(CaptureError::Damaged {
                            frame: self.next_number,
                            offset: block_start,
                            reason: "packet before any interface description",
                            resumed_at: Some(self.pos),
                        }));
                    };
                    return Some(Ok(Frame {
                        number: self.next_number,
                        timestamp: Timestamp::default(),
                        linktype,
                        data: spb.data.get(..spb.origlen as usize).unwrap_or(spb.data),
                        orig_len: spb.origlen,
                    }));
                }
                _ => {}
            }
        }
    }
}

/// The length of a believable pcapng block at `pos`: a known block type, a length of at least
/// 12 that is a multiple of 4 and fits in the file, repeated at the block's end. A section
/// header is judged in its own byte order.
fn ng_block_len(data: &[u8], pos: usize, big_endian: bool) -> Option<usize> {
    const SECTION_HEADER: u32 = 0x0a0d_0d0a;
    let word = |at: usize, big: bool| -> Option<u32> {
        let b: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let kind = word(pos, big_endian)?;
    let big = if kind == SECTION_HEADER {
        match data.get(pos + 8..pos + 12)? {
            [0x1a, 0x2b, 0x3c, 0x4d] => true,
            [0x4d, 0x3c, 0x2b, 0x1a] => false,
            _ => return None,
        }
    } else {
        big_endian
    };
    // Interface description, packet (obsolete), simple packet, name resolution,
    // interface statistics, enhanced packet, decryption secrets.
    let known = matches!(kind, SECTION_HEADER | 1..=6 | 0x0a);
    let len = usize::try_from(word(pos + 4, big)?).ok()?;
    let end = pos.checked_add(len)?;
    let believable = known
        && len >= 12
        && len % 4 == 0
        && end <= data.len()
        && word(end - 4, big)? as usize == len;
    believable.then_some(len)
}

/// pcapng `if_tsresol`: high bit set = negative power of two, else of ten.
/// Unrepresentable resolutions fall back to the default (microseconds).
fn ticks_per_second(tsresol: u8) -> u64 {
    let exp = u32::from(tsresol & 0x7f);
    let v = if tsresol & 0x80 != 0 {
        2u64.checked_pow(exp)
    } else {
        10u64.checked_pow(exp)
    };
    match v {
        Some(0) | None => 1_000_000,
        Some(v) => v,
    }
}

fn ticks_to_timestamp(ticks: u64, per_sec: u64, offset: i64) -> Timestamp {
    let per_sec = per_sec.max(1);
    let secs = ticks / per_sec;
    let frac = u128::from(ticks % per_sec) * 1_000_000_000 / u128::from(per_sec);
    Timestamp {
        secs: i64::try_from(secs)
            .unwrap_or(i64::MAX)
            .saturating_add(offset),
        nanos: frac as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy_header(magic: [u8; 4]) -> Vec<u8> {
        let mut v = magic.to_vec();
        v.extend_from_slice(&[2, 0, 4, 0]);
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v
    }

    fn legacy_record(sec: u32, usec: u32, data: &[u8], orig: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sec.to_le_bytes());
        v.extend_from_slice(&usec.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&orig.to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn legacy_frames_are_numbered_from_one_with_times() {
        let mut file = legacy_header([0xd4, 0xc3, 0xb2, 0xa1]);
        file.extend(legacy_record(10, 500_000, &[1, 2, 3, 4], 60));
        file.extend(legacy_record(11, 1, &[5; 60], 60));
        let cap = Capture::open(&file).unwrap();
        let frames: Vec<_> = cap.frames().collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].number, 1);
        assert_eq!(frames[0].data, &[1, 2, 3, 4]);
        assert!(frames[0].is_cut());
        assert_eq!(
            frames[0].timestamp,
            Timestamp {
                secs: 10,
                nanos: 500_000_000
            }
        );
        assert_eq!(frames[1].number, 2);
        assert!(!frames[1].is_cut());
        assert_eq!(
            frames[1].timestamp.since(frames[0].timestamp).to_string(),
            "0.500001"
        );
    }

    #[test]
    fn file_cut_inside_a_record_reports_that_frame() {
        let mut file = legacy_header([0xd4, 0xc3, 0xb2, 0xa1]);
        file.extend(legacy_record(1, 0, &[7; 30], 30));
        let second = legacy_record(2, 0, &[8; 30], 30);
        file.extend_from_slice(&second[..20]);
        let cap = Capture::open(&file).unwrap();
        let items: Vec<_> = cap.frames().collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(
            items[1],
            Err(CaptureError::Truncated {
                frame: 2,
                offset: 24 + 46
            })
        );
    }

    #[test]
    fn garbage_record_header_is_damage_not_allocation() {
        let mut file = legacy_header([0xd4, 0xc3, 0xb2, 0xa1]);
        file.extend_from_slice(&[0xff; 40]);
        let items: Vec<_> = Capture::open(&file).unwrap().frames().collect();
        assert!(matches!(
            items[..],
            [Err(CaptureError::Damaged {
                frame: 1,
                resumed_at: None,
                ..
            })]
        ));
    }

    #[test]
    fn reading_resumes_after_a_damaged_record() {
        let mut file = legacy_header([0xd4, 0xc3, 0xb2, 0xa1]);
        file.extend(legacy_record(100, 0, &[1; 20], 20));
        let damaged_at = file.len();
        let mut second = legacy_record(101, 0, &[2; 20], 20);
        second[8..12].copy_from_slice(&[0xff; 4]); // its length field is destroyed
        file.extend(second);
        let resume_at = file.len();
        file.extend(legacy_record(102, 0, &[3; 20], 20));
        file.extend(legacy_record(103, 0, &[4; 20], 20));
        let items: Vec<_> = Capture::open(&file).unwrap().frames().collect();
        assert_eq!(items.len(), 4, "{items:?}");
        assert_eq!(items[0].as_ref().unwrap().data, &[1; 20]);
        assert_eq!(
            items[1],
            Err(CaptureError::Damaged {
                frame: 2,
                offset: damaged_at,
                reason: "record length above 256 KiB (not a record header)",
                resumed_at: Some(resume_at),
            })
        );
        assert_eq!(items[2].as_ref().unwrap().data, &[3; 20]);
        assert_eq!(items[3].as_ref().unwrap().data, &[4; 20]);
        assert_eq!(items[3].as_ref().unwrap().number, 3);
    }

    #[test]
    fn not_a_capture() {
        assert_eq!(
            Capture::open(b"hello world, this is text").unwrap_err(),
            CaptureError::NotACapture
        );
        assert_eq!(Capture::open(b"").unwrap_err(), CaptureError::NotACapture);
    }

    /// A pcapng file (SHB, IDB, then `packets` EPBs of 3 bytes each) and the offsets of the EPBs.
    fn pcapng(packets: u8) -> (Vec<u8>, Vec<usize>) {
        let mut f = Vec::new();
        f.extend_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        f.extend_from_slice(&28u32.to_le_bytes());
        f.extend_from_slice(&0x1a2b3c4du32.to_le_bytes());
        f.extend_from_slice(&[1, 0, 0, 0]);
        f.extend_from_slice(&(-1i64).to_le_bytes());
        f.extend_from_slice(&28u32.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&20u32.to_le_bytes());
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&0u16.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&20u32.to_le_bytes());
        let mut epbs = Vec::new();
        for n in 0..packets {
            epbs.push(f.len());
            f.extend_from_slice(&6u32.to_le_bytes());
            f.extend_from_slice(&36u32.to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes());
            f.extend_from_slice(&u32::from(n).to_le_bytes());
            f.extend_from_slice(&3u32.to_le_bytes());
            f.extend_from_slice(&3u32.to_le_bytes());
            f.extend_from_slice(&[n, n, n, 0]);
            f.extend_from_slice(&36u32.to_le_bytes());
        }
        (f, epbs)
    }

    fn datas<'a>(items: &[Result<Frame<'a>, CaptureError>]) -> Vec<&'a [u8]> {
        items
            .iter()
            .filter_map(|i| i.as_ref().ok())
            .map(|f| f.data)
            .collect()
    }

    #[test]
    fn pcapng_reading_resumes_after_a_damaged_block() {
        let (good, epbs) = pcapng(5);
        // A block length destroyed: 4 GiB (runs past the end), 8 (too short), 45 (not padded).
        for bad_len in [0xffff_fffcu32, 8, 45] {
            let mut f = good.clone();
            f[epbs[2] + 4..epbs[2] + 8].copy_from_slice(&bad_len.to_le_bytes());
            let items: Vec<_> = Capture::open(&f).unwrap().frames().collect();
            assert_eq!(
                datas(&items),
                vec![&[0u8, 0, 0][..], &[1, 1, 1], &[3, 3, 3], &[4, 4, 4]],
                "length {bad_len}: {items:?}"
            );
            assert!(
                items.iter().any(|i| matches!(
                    i,
                    Err(CaptureError::Damaged { frame: 3, offset, resumed_at: Some(at), .. })
                        if *offset == epbs[2] && *at == epbs[3]
                )),
                "length {bad_len}: {items:?}"
            );
        }
        // A packet on an interface never described: that packet alone is lost.
        let mut f = good.clone();
        f[epbs[1] + 8..epbs[1] + 12].copy_from_slice(&9u32.to_le_bytes());
        let items: Vec<_> = Capture::open(&f).unwrap().frames().collect();
        assert_eq!(datas(&items).len(), 4, "{items:?}");
        // Zeros from the middle on: nothing to resume at.
        let mut f = good.clone();
        let n = f.len();
        f[epbs[2]..n].fill(0);
        let items: Vec<_> = Capture::open(&f).unwrap().frames().collect();
        assert_eq!(datas(&items).len(), 2);
        assert!(matches!(
            items.last(),
            Some(Err(CaptureError::Damaged {
                resumed_at: None,
                ..
            }))
        ));
        // A file cut inside its last block is truncated, not damaged.
        let items: Vec<_> = Capture::open(&good[..good.len() - 7])
            .unwrap()
            .frames()
            .collect();
        assert_eq!(datas(&items).len(), 4);
        assert!(matches!(
            items.last(),
            Some(Err(CaptureError::Truncated { frame: 5, .. }))
        ));
    }

    #[test]
    fn pcapng_with_one_interface() {
        // SHB (LE, no options), IDB (Ethernet, tsresol 10^-6 by default), one EPB.
        let mut f = Vec::new();
        f.extend_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        f.extend_from_slice(&28u32.to_le_bytes());
        f.extend_from_slice(&0x1a2b3c4du32.to_le_bytes());
        f.extend_from_slice(&[1, 0, 0, 0]);
        f.extend_from_slice(&(-1i64).to_le_bytes());
        f.extend_from_slice(&28u32.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&20u32.to_le_bytes());
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&0u16.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&20u32.to_le_bytes());
        let ticks: u64 = 3_000_250;
        f.extend_from_slice(&6u32.to_le_bytes());
        f.extend_from_slice(&36u32.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        f.extend_from_slice(&(ticks as u32).to_le_bytes());
        f.extend_from_slice(&3u32.to_le_bytes());
        f.extend_from_slice(&3u32.to_le_bytes());
        f.extend_from_slice(&[9, 9, 9, 0]);
        f.extend_from_slice(&36u32.to_le_bytes());
        let cap = Capture::open(&f).unwrap();
        assert_eq!(cap.format(), CaptureFormat::PcapNg);
        let frames: Vec<_> = cap.frames().collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data, &[9, 9, 9]);
        assert_eq!(frames[0].linktype, linktype::ETHERNET);
        assert_eq!(
            frames[0].timestamp,
            Timestamp {
                secs: 3,
                nanos: 250_000
            }
        );
        // The same file cut in the middle of the packet block.
        let cut: Vec<_> = Capture::open(&f[..f.len() - 10])
            .unwrap()
            .frames()
            .collect();
        assert!(matches!(
            cut[..],
            [Err(CaptureError::Truncated { frame: 1, .. })]
        ));
    }
}
