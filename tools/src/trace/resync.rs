//! Finding Gnutella descriptors by their content: in a TCP direction whose
//! handshake was not captured (the capture started late, perhaps inside a
//! descriptor), and after a gap or a bad header broke the framing.
//!
//! A descriptor header has no magic number, but it is far from random: the
//! payload type is one of a few codes, TTL and hops are small, the payload
//! length is at most 64 KiB (and at least what the type needs), and the
//! next header starts right where the length says. [`scan`] looks for the
//! first offset where several such headers line up, one after the other;
//! random bytes pass one header check with a probability around 10⁻⁹, text
//! and zeros not at all. The run it asks for is shorter when the stream is
//! already known to carry descriptors (after a gap in a decoded link) and
//! on the Gnutella ports, longer elsewhere.
//!
//! Compressed links cannot be found this way: a deflate stream depends on
//! everything before it. The one case that works is a capture that starts
//! exactly where the compressed stream does (right after the handshake),
//! recognised by its zlib header and by the headers it inflates to
//! ([`zlib_start`]). What the bytes look like when nothing is found is
//! told by [`looks_like`].

use hazel_protocol::framer::{Framer, SYNC_FLUSH_MARKER};
use hazel_protocol::header::{Header, HEADER_LEN, MAX_PAYLOAD_LEN};

/// Largest TTL + hops believed: servents originate with TTL 7 or less, and
/// hops only grow as TTL shrinks.
pub const MAX_TTL_PLUS_HOPS: u16 = 16;

/// Hunting gives up after this many bytes without a run of headers.
pub const GIVE_UP_AFTER: u64 = 1 << 20;

/// Compressed bytes buffered while deciding whether a direction starts with a
/// zlib stream of descriptors.
pub const ZLIB_PROBE_MAX: usize = 64 * 1024;

/// Bytes of the start of a hunt kept to say what they look like.
pub const SAMPLE_LEN: usize = 4096;

/// The smallest payload each descriptor type can have on a TCP link, for the
/// types a Gnutella 0.4/0.6 link carries. `None`: not a TCP descriptor type.
fn min_payload(payload_type: u8) -> Option<usize> {
    Some(match payload_type {
        0x00 => 0,        // Ping (GGEP optional)
        0x01 => 14,       // Pong
        0x02 => 2,        // Bye: code, then text
        0x30 => 1,        // QRP: variant byte first
        0x31 | 0x32 => 8, // vendor messages: vendor, selector, version
        0x40 => 26,       // Push
        0x80 => 3,        // Query: speed field and the NUL of an empty search
        0x81 => 27,       // QueryHit: count, port, IP, speed, servent id
        0xcd => 0,        // HSEP
        _ => return None,
    })
}

/// The header at the start of `bytes` if it is one a servent would send on a
/// TCP link: a known type with at least its minimum payload, TTL at least 1,
/// TTL + hops at most [`MAX_TTL_PLUS_HOPS`], payload at most 64 KiB.
pub fn plausible(bytes: &[u8]) -> Option<Header> {
    let h = Header::parse(bytes).ok()?;
    let min = min_payload(h.payload_type.to_u8())?;
    let len = h.payload_len as usize;
    let ok = h.ttl >= 1
        && u16::from(h.ttl) + u16::from(h.hops) <= MAX_TTL_PLUS_HOPS
        && len >= min
        && len <= MAX_PAYLOAD_LEN;
    ok.then_some(h)
}

/// The chain of headers that starts at one offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// `want` plausible headers, each where the one before says.
    Found,
    /// A header that is not plausible: no descriptor stream starts here.
    Broken,
    /// The bytes end after `headers` plausible headers. `exact`: the last
    /// descriptor ends exactly at the end of the bytes.
    Open { headers: usize, exact: bool },
}

/// Follows the chain of headers from `start`, checking up to `want` of them.
pub fn run_at(buf: &[u8], start: usize, want: usize) -> Run {
    let mut pos = start;
    for n in 0..want {
        let Some(rest) = buf.get(pos..).filter(|r| r.len() >= HEADER_LEN) else {
            return Run::Open {
                headers: n,
                exact: pos == buf.len(),
            };
        };
        match plausible(rest) {
            Some(h) => pos += HEADER_LEN + h.payload_len as usize,
            None => return Run::Broken,
        }
    }
    Run::Found
}

/// How long a run of headers is asked for before taking bytes for descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// Headers in a row while more bytes may come.
    pub run: usize,
    /// Headers in a row at the end of the bytes (a short stream). Fewer than
    /// two count only if the last descriptor ends exactly at the end.
    pub at_end: usize,
}

impl Need {
    /// Nothing known about the stream: content alone decides.
    pub const UNKNOWN: Need = Need { run: 4, at_end: 3 };
    /// A Gnutella port, or the other direction already carries descriptors.
    pub const LIKELY: Need = Need { run: 3, at_end: 2 };
    /// A link that was decoding descriptors until a gap or a bad header.
    pub const KNOWN: Need = Need { run: 2, at_end: 1 };
}

/// What [`scan`] found in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Descriptors start at this offset: the bytes before it are skipped.
    Found { offset: usize },
    /// No run starts before `offset`, and whether one starts there needs
    /// more bytes: the bytes before it can be dropped.
    Undecided { offset: usize },
    /// No run anywhere (only at the end of the bytes).
    Nothing,
}

/// Looks for the first offset of `buf` where a run of headers begins. With
/// `at_end`, no more bytes will come and shorter runs are judged by
/// [`Need::at_end`].
pub fn scan(buf: &[u8], need: Need, at_end: bool) -> Scan {
    for start in 0..buf.len() {
        match run_at(buf, start, need.run) {
            Run::Found => return Scan::Found { offset: start },
            Run::Broken => {}
            Run::Open { headers, exact } => {
                if !at_end {
                    return Scan::Undecided { offset: start };
                }
                if headers >= need.at_end && (exact || headers >= 2) {
                    return Scan::Found { offset: start };
                }
            }
        }
    }
    if at_end {
        Scan::Nothing
    } else {
        Scan::Undecided { offset: buf.len() }
    }
}

/// Whether `buf` starts with a zlib header (deflate, 32 KiB window or less,
/// no preset dictionary), as a `Content-Encoding: deflate` link does.
pub fn zlib_header(buf: &[u8]) -> bool {
    match buf {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && flg & 0x20 == 0
                && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// Whether a direction that starts with `buf` is a compressed descriptor
/// stream whose start was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZlibStart {
    /// It inflates to `headers` plausible descriptors in a row.
    Yes {
        headers: usize,
    },
    No,
    /// More compressed bytes are needed to tell.
    NeedMore,
}

/// Inflates the start of `buf` (bounded steps, at most `need.run` frames)
/// and checks the descriptors it gives.
pub fn zlib_start(buf: &[u8], need: Need, at_end: bool) -> ZlibStart {
    if !zlib_header(buf) {
        return ZlibStart::No;
    }
    let mut framer = Framer::deflated();
    if framer.push(buf).is_err() {
        return ZlibStart::No;
    }
    let mut headers = 0;
    while headers < need.run {
        match framer.next_frame_ref() {
            Ok(Some(frame)) => {
                if plausible(frame.bytes).is_none() {
                    return ZlibStart::No;
                }
                headers += 1;
            }
            Ok(None) => break,
            Err(_) => return ZlibStart::No,
        }
    }
    if headers >= need.run || (at_end && headers >= 1) {
        ZlibStart::Yes { headers }
    } else if at_end || buf.len() > ZLIB_PROBE_MAX {
        ZlibStart::No
    } else {
        ZlibStart::NeedMore
    }
}

/// What bytes that are not descriptors look like, for the note that says
/// why a direction was not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looks {
    Nothing,
    Zeros,
    Tls,
    Text,
    /// Sync-flush markers: the middle of a deflate link.
    Deflate,
    /// High entropy: compressed or encrypted.
    Random,
    Binary,
}

impl Looks {
    pub fn describe(self) -> &'static str {
        match self {
            Looks::Nothing => "there are none",
            Looks::Zeros => "they are all zeros",
            Looks::Tls => "they look like TLS records (encrypted)",
            Looks::Text => "they look like text",
            Looks::Deflate => {
                "they look like a deflate stream (sync-flush markers 00 00 ff ff): a \
                 deflate-compressed link captured after its start cannot be inflated (the \
                 compressor's earlier output is missing)"
            }
            Looks::Random => {
                "they look compressed or encrypted: a deflate-compressed link captured after \
                 its start cannot be inflated (the compressor's earlier output is missing), \
                 and TLS cannot be read"
            }
            Looks::Binary => "they look like binary data of some other kind",
        }
    }
}

/// Judges the first bytes of a direction that holds no descriptors.
pub fn looks_like(sample: &[u8]) -> Looks {
    if sample.is_empty() {
        return Looks::Nothing;
    }
    if sample.iter().all(|&b| b == 0) {
        return Looks::Zeros;
    }
    if tls_records(sample) {
        return Looks::Tls;
    }
    let texty = sample
        .iter()
        .filter(|&&b| (0x20..0x7f).contains(&b) || b == b'\r' || b == b'\n' || b == b'\t')
        .count();
    if texty * 10 >= sample.len() * 9 {
        return Looks::Text;
    }
    // A deflate link flushes after each batch of messages; every flush ends with this marker.
    let flushes = sample
        .windows(SYNC_FLUSH_MARKER.len())
        .filter(|w| *w == SYNC_FLUSH_MARKER)
        .count();
    if flushes >= 2 {
        return Looks::Deflate;
    }
    if sample.len() >= 256 && entropy_bits(sample) >= 7.0 {
        return Looks::Random;
    }
    Looks::Binary
}

/// Two TLS record headers in a row (type 20–23, version 3.x, length up to
/// 2^14 + 2048) at the start of `sample`.
fn tls_records(sample: &[u8]) -> bool {
    let record = |at: usize| -> Option<usize> {
        let h = sample.get(at..at + 5)?;
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        ((20..=23).contains(&h[0]) && h[1] == 3 && h[2] <= 4 && len <= (1 << 14) + 2048)
            .then_some(at + 5 + len)
    };
    match record(0) {
        Some(next) if next < sample.len() => record(next).is_some(),
        Some(_) => true,
        None => false,
    }
}

/// Shannon entropy of the byte values, in bits per byte.
fn entropy_bits(sample: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in sample {
        counts[usize::from(b)] += 1;
    }
    let n = sample.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hazel_protocol::descriptor::{Descriptor, Payload, Ping, Pong, Query, SpeedField};
    use hazel_protocol::header::DescriptorId;
    use rand::{Rng, SeedableRng};
    use std::io::Write;
    use std::net::Ipv4Addr;

    fn some_descriptors(n: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            let payload = match i % 3 {
                0 => Payload::Ping(Ping { ggep: None }),
                1 => Payload::Query(Query::new(SpeedField::flags(0), "abc")),
                _ => Payload::Pong(Pong {
                    port: 1,
                    ip: Ipv4Addr::LOCALHOST,
                    files: 1,
                    kbytes: 1,
                    ggep: None,
                }),
            };
            let d = Descriptor {
                id: DescriptorId::modern([i; 16]),
                ttl: 3,
                hops: 1,
                payload,
            };
            out.extend_from_slice(&d.to_bytes());
        }
        out
    }

    #[test]
    fn header_plausibility() {
        let stream = some_descriptors(1);
        assert!(plausible(&stream).is_some());
        let mut bad = stream.clone();
        bad[16] = 0x99; // type
        assert!(plausible(&bad).is_none());
        let mut bad = stream.clone();
        bad[17] = 0; // TTL 0
        assert!(plausible(&bad).is_none());
        let mut bad = stream.clone();
        bad[17] = 10;
        bad[18] = 7; // TTL + hops 17
        assert!(plausible(&bad).is_none());
        let mut bad = stream.clone();
        bad[19..23].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(plausible(&bad).is_none());
        let mut bad = stream;
        bad[16] = 0x01; // a Pong of 0 bytes
        assert!(plausible(&bad).is_none());
        assert!(plausible(&[0u8; 23]).is_none(), "zeros are not a Ping");
    }

    #[test]
    fn runs_start_inside_a_descriptor_and_wait_for_bytes() {
        let stream = some_descriptors(6);
        let first_len = 23;
        // Cut 5 bytes into the first descriptor (a Ping: header only).
        let cut = &stream[5..];
        assert_eq!(
            scan(cut, Need::UNKNOWN, false),
            Scan::Found {
                offset: first_len - 5
            }
        );
        // Only two descriptors: undecided while streaming, found at the end when likely.
        let two = &stream[..23 + 23 + 2 + 4];
        assert_eq!(
            scan(two, Need::LIKELY, false),
            Scan::Undecided { offset: 0 }
        );
        assert_eq!(scan(two, Need::LIKELY, true), Scan::Found { offset: 0 });
        assert_eq!(scan(two, Need::UNKNOWN, true), Scan::Nothing);
        // One header alone counts at the end only on a known link, and only when whole.
        let one = &stream[..23];
        assert_eq!(scan(one, Need::KNOWN, true), Scan::Found { offset: 0 });
        assert_eq!(scan(&stream[..30], Need::KNOWN, true), Scan::Nothing);
    }

    #[test]
    fn random_bytes_text_and_zeros_hold_no_run() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let random: Vec<u8> = (0..200_000).map(|_| rng.gen()).collect();
        assert_eq!(scan(&random, Need::UNKNOWN, true), Scan::Nothing);
        assert_eq!(scan(&random, Need::LIKELY, true), Scan::Nothing);
        // Undecided only within the last header's length of the end.
        match scan(&random, Need::UNKNOWN, false) {
            Scan::Undecided { offset } => assert!(offset + HEADER_LEN > random.len()),
            other => panic!("{other:?}"),
        }
        let text = b"GET /get/1/a.mp3 HTTP/1.1\r\nUser-Agent: x\r\n\r\n".repeat(100);
        assert_eq!(scan(&text, Need::KNOWN, true), Scan::Nothing);
        assert_eq!(scan(&[0u8; 10_000], Need::KNOWN, true), Scan::Nothing);
        assert_eq!(looks_like(&[0u8; 100]), Looks::Zeros);
        assert_eq!(looks_like(&text), Looks::Text);
        assert_eq!(looks_like(&random[..4096]), Looks::Random);
        assert!(Looks::Random.describe().contains("compressed or encrypted"));
        let mut flushed = random[..1000].to_vec();
        flushed.extend_from_slice(&[0, 0, 0xff, 0xff, 9, 0, 0, 0xff, 0xff]);
        assert_eq!(looks_like(&flushed), Looks::Deflate);
        let mut tls = vec![0x17, 0x03, 0x03, 0x00, 0x10];
        tls.extend_from_slice(&[0xaa; 16]);
        tls.extend_from_slice(&[0x17, 0x03, 0x03, 0x01, 0x00]);
        tls.extend_from_slice(&random[..300]);
        assert_eq!(looks_like(&tls), Looks::Tls);
    }

    #[test]
    fn a_zlib_stream_of_descriptors_is_recognised_from_its_start() {
        let plain = some_descriptors(5);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&plain).unwrap();
        let compressed = z.finish().unwrap();
        assert!(zlib_header(&compressed));
        assert_eq!(
            zlib_start(&compressed, Need::LIKELY, false),
            ZlibStart::Yes { headers: 3 }
        );
        assert_eq!(
            zlib_start(&compressed[..4], Need::LIKELY, false),
            ZlibStart::NeedMore
        );
        assert_eq!(
            zlib_start(&compressed[3..], Need::LIKELY, true),
            ZlibStart::No
        );
        // Compressed text is not a descriptor stream.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&b"hello world, this is not gnutella ".repeat(10))
            .unwrap();
        assert_eq!(
            zlib_start(&z.finish().unwrap(), Need::LIKELY, true),
            ZlibStart::No
        );
    }
}
