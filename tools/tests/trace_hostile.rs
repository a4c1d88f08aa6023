//! `hazel-trace` against hostile input: damaged pcapng files, legacy pcap
//! files with absurd headers, packets whose length fields lie, random bytes
//! on the Gnutella port, tens of thousands of streams, overlapping and
//! retransmitted segments, descriptors and heads that declare absurd
//! lengths. Every run is the real binary with a time limit and an
//! address-space limit of 1 GiB (so a buffer sized from an unchecked length
//! aborts the run instead of passing unnoticed); it must not panic, must
//! report damage on stderr or in its records and go on, and must exit 0
//! when the file is a capture (however damaged) and 1 when it is not.
//!
//! Damage to a real legacy pcap file (cut records, garbage appended, a
//! destroyed record header) is covered in `trace_damaged.rs`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flate2::write::ZlibEncoder;
use flate2::Compression;
use hazel_protocol::descriptor::{Payload, Ping, Pong, Query, SpeedField};
use hazel_protocol::pcap::writer::{ethernet_frame, to_pcapng, PcapWriter, Transport};
use hazel_protocol::pcap::Capture;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use support::*;

/// A generous limit for one run (debug build, shared machine); a loop that
/// does not end, or work that grows with the square of the input, exceeds it.
const LIMIT: Duration = Duration::from_secs(120);

fn run(tag: &str, bytes: &[u8], args: &[&str]) -> Output {
    let file = TempFile::new(tag, bytes);
    hazel_trace_bounded(args, &file.0, LIMIT)
}

/// A capture that could be read (perhaps with damage): exit 0 and a summary at the end.
#[track_caller]
fn readable(out: &Output, what: &str) {
    assert_eq!(out.code, 0, "{what}: {}", out.stderr);
    assert!(
        out.summary().starts_with("summary: ") || out.summary().contains("\"kind\":\"summary\""),
        "{what}: {}",
        out.stdout
    );
}

/// A descriptor in flight (TTL 3, one hop).
fn relayed(n: u8, payload: Payload) -> Vec<u8> {
    descriptor(n, 3, 1, payload)
}

fn ping(n: u8) -> Vec<u8> {
    relayed(n, Payload::Ping(Ping { ggep: None }))
}

fn query(n: u8) -> Vec<u8> {
    relayed(
        n,
        Payload::Query(Query::new(SpeedField::flags(0), format!("search {n}"))),
    )
}

fn pong(n: u8) -> Vec<u8> {
    relayed(
        n,
        Payload::Pong(Pong {
            port: 6346,
            ip: Ipv4Addr::new(10, 9, 9, n),
            files: 1,
            kbytes: 2,
            ggep: None,
        }),
    )
}

/// A small capture with a little of everything: a 0.4 link with descriptors,
/// a UDP descriptor, an HTTP exchange.
fn sample() -> Vec<u8> {
    let mut w = PcapWriter::new();
    let descriptors = [ping(1), query(2), pong(3)].concat();
    w.tcp_conversation(
        addr("10.0.0.1:5000"),
        addr("10.0.0.2:6346"),
        &[
            (true, b"GNUTELLA CONNECT/0.4\n\n"),
            (false, b"GNUTELLA OK\n\n"),
            (true, &descriptors),
            (false, &pong(4)),
        ],
    );
    w.udp(addr("10.0.0.1:6346"), addr("10.0.0.3:6346"), &ping(5));
    w.tcp_conversation(
        addr("10.0.0.1:5001"),
        addr("10.0.0.4:6346"),
        &[
            (true, b"GET /get/1/a.mp3 HTTP/1.1\r\n\r\n"),
            (false, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"),
        ],
    );
    w.into_bytes()
}

/// `(offset, type, total length)` of each block of a little-endian pcapng file.
fn ng_blocks(ng: &[u8]) -> Vec<(usize, u32, u32)> {
    let mut blocks = Vec::new();
    let mut at = 0;
    while at + 12 <= ng.len() {
        let kind = u32::from_le_bytes(ng[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(ng[at + 4..at + 8].try_into().unwrap());
        blocks.push((at, kind, len));
        at += len as usize;
    }
    blocks
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn damaged_pcapng_files() {
    let legacy = sample();
    let ng = to_pcapng(&Capture::open(&legacy).unwrap()).unwrap();
    let whole = run("ng-whole", &ng, &[]);
    readable(&whole, "intact pcapng");
    assert!(
        whole.summary().contains("5 descriptors"),
        "{}",
        whole.summary()
    );
    let blocks = ng_blocks(&ng);
    let epbs: Vec<usize> = blocks.iter().filter(|b| b.1 == 6).map(|b| b.0).collect();
    let idb = blocks.iter().find(|b| b.1 == 1).unwrap().0;
    let middle = epbs[epbs.len() / 2];

    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    // Cut at, and next to, every block boundary.
    for &(at, _, _) in &blocks[1..] {
        for cut in [at - 1, at + 1, at + 9] {
            cases.push((format!("cut at {cut}"), ng[..cut].to_vec()));
        }
    }
    let mut edit = |name: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = ng.clone();
        f(&mut bytes);
        cases.push((name.to_string(), bytes));
    };
    edit("block length 4 GiB", &|b| {
        put_u32(b, middle + 4, 0xffff_fffc)
    });
    edit("block length 4 GiB at both ends", &|b| {
        let len = u32::from_le_bytes(b[middle + 4..middle + 8].try_into().unwrap()) as usize;
        put_u32(b, middle + 4, 0xffff_fffc);
        put_u32(b, middle + len - 4, 0xffff_fffc);
    });
    edit("block length 8", &|b| put_u32(b, middle + 4, 8));
    edit("block length 0", &|b| put_u32(b, middle + 4, 0));
    edit("block length not a multiple of 4", &|b| {
        put_u32(b, middle + 4, 45)
    });
    edit("captured length 4 GiB", &|b| {
        put_u32(b, middle + 20, 0xffff_ffff)
    });
    edit("original length 4 GiB", &|b| {
        put_u32(b, middle + 24, 0xffff_ffff)
    });
    edit("interface that was never described", &|b| {
        put_u32(b, middle + 8, 7)
    });
    edit("unknown link type", &|b| {
        b[idb + 8..idb + 10].copy_from_slice(&[0xff, 0xfe])
    });
    edit("timestamp resolution 2^-127", &|b| b[idb + 20] = 0xff);
    edit("timestamps at the end of time", &|b| {
        for &e in &epbs {
            put_u32(b, e + 12, 0xffff_ffff);
            put_u32(b, e + 16, 0xffff_ffff);
        }
    });
    edit("byte-order magic destroyed", &|b| {
        put_u32(b, 8, 0x1234_5678)
    });
    edit("section length absurd", &|b| {
        b[16..24].copy_from_slice(&0x7fff_ffff_ffff_fff0u64.to_le_bytes())
    });
    edit("unknown block type with a huge length", &|b| {
        put_u32(b, middle, 0x0bad_f00d);
        put_u32(b, middle + 4, 0x7fff_fff0);
    });
    edit("a second section header, big-endian, mid-file", &|b| {
        let shb_len = blocks[0].2 as usize;
        let mut shb = b[..shb_len].to_vec();
        shb[8..12].copy_from_slice(&0x1a2b_3c4du32.to_be_bytes());
        b.splice(middle..middle, shb);
    });
    edit("zeros from the middle on", &|b| {
        let n = b.len();
        b[middle..n].fill(0);
    });
    let frames = |out: &Output| -> u64 {
        out.summary()
            .strip_prefix("summary: ")
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // Damage to one block: every other frame is read.
    let one_block = [
        "block length 4 GiB",
        "block length 4 GiB at both ends",
        "block length 8",
        "block length 0",
        "block length not a multiple of 4",
        "captured length 4 GiB",
        "interface that was never described",
        "unknown block type with a huge length",
        "a second section header, big-endian, mid-file",
    ];
    // Odd but readable.
    let harmless = [
        "original length 4 GiB",
        "timestamps at the end of time",
        "timestamp resolution 2^-127",
        "section length absurd",
    ];
    for (name, bytes) in cases {
        let out = run("ng-damaged", &bytes, &[]);
        println!("{name}: exit {} / {}", out.code, out.stderr.trim_end());
        readable(&out, &name);
        let name = name.as_str();
        if harmless.contains(&name) {
            assert!(out.stderr.is_empty(), "{name}: {}", out.stderr);
            assert_eq!(frames(&out), 17, "{name}");
        } else if one_block.contains(&name) {
            assert!(
                out.stderr.contains("reading resumes"),
                "{name}: {}",
                out.stderr
            );
            assert!(frames(&out) >= 16, "{name}: {}", out.summary());
        } else if name == "unknown link type" {
            // Listed ten times, then said once that the rest are only counted.
            let listed = out
                .stderr
                .lines()
                .filter(|l| l.contains("link-layer type (not supported)"))
                .count();
            assert_eq!(listed, 11, "{}", out.stderr);
            assert!(out.stderr.contains("counted in the summary, not listed"));
            assert_eq!(frames(&out), 17, "{name}");
            assert!(
                out.summary().contains("(17 unreadable)"),
                "{}",
                out.summary()
            );
        } else {
            assert!(
                out.stderr.contains("capture file is"),
                "{name}: damage not reported: {}",
                out.stderr
            );
        }
    }
}

#[test]
fn legacy_pcap_files_with_absurd_headers() {
    let good = sample();
    let mut cases: Vec<(&str, Vec<u8>, i32)> = Vec::new();
    let mut edit = |name: &'static str, code: i32, f: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = good.clone();
        f(&mut bytes);
        cases.push((name, bytes, code));
    };
    edit("snap length 4 GiB", 0, &|b| put_u32(b, 16, 0xffff_ffff));
    edit("link type unknown", 0, &|b| put_u32(b, 20, 0xffff_ffff));
    edit("version 0.0", 0, &|b| b[4..8].fill(0));
    edit("header only", 0, &|b| b.truncate(24));
    edit("header cut short", 1, &|b| b.truncate(23));
    edit("empty file", 1, &|b| b.clear());
    edit("first record: captured length 0", 0, &|b| {
        put_u32(b, 24 + 8, 0)
    });
    edit("first record: captured length 262145", 0, &|b| {
        put_u32(b, 24 + 8, 262_145)
    });
    edit("first record: original length below captured", 0, &|b| {
        put_u32(b, 24 + 12, 1)
    });
    edit("first record: microseconds out of range", 0, &|b| {
        put_u32(b, 24 + 4, 2_000_000)
    });
    edit("every record header 0xff", 0, &|b| {
        let mut at = 24;
        while at + 16 <= b.len() {
            let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
            b[at..at + 16].fill(0xff);
            at += 16 + caplen;
        }
    });
    // The same records, big-endian with nanoseconds, and in the "modified" format
    // (24-byte record headers) that a legacy reader must not misread.
    edit(
        "big-endian nanosecond magic over little-endian records",
        0,
        &|b| b[..4].copy_from_slice(&[0xa1, 0xb2, 0x3c, 0x4d]),
    );
    edit("modified-pcap magic over ordinary records", 0, &|b| {
        b[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes())
    });
    for (name, bytes, code) in cases {
        let out = run("legacy-absurd", &bytes, &[]);
        println!("{name}: exit {} / {}", out.code, out.stderr.trim_end());
        assert_eq!(out.code, code, "{name}: {}", out.stderr);
        if code == 0 {
            readable(&out, name);
        } else {
            assert!(out.stderr.contains("not a pcap or pcapng"), "{name}");
        }
    }
}

#[test]
fn packets_whose_length_fields_lie() {
    let a = addr("10.0.0.1:40000");
    let b = addr("10.0.0.2:6346");
    let tcp = Transport::Tcp {
        seq: 1000,
        ack: 1,
        syn: false,
        fin: false,
        rst: false,
    };
    let base = ethernet_frame(a, b, tcp, &ping(1)).unwrap();
    let udp = ethernet_frame(a, b, Transport::Udp, &ping(2)).unwrap();
    let mut w = PcapWriter::new();
    let mut variants: Vec<Vec<u8>> = Vec::new();
    let mut vary = |frame: &[u8], f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = frame.to_vec();
        f(&mut v);
        variants.push(v);
    };
    // Ethernet 14, IPv4 at 14..34, TCP at 34..54 / UDP at 34..42.
    vary(&base, &|f| {
        f[16..18].copy_from_slice(&0xffffu16.to_be_bytes())
    }); // IP total length
    vary(&base, &|f| f[16..18].copy_from_slice(&10u16.to_be_bytes())); // below the header
    vary(&base, &|f| f[14] = 0x4f); // IHL 15
    vary(&base, &|f| f[14] = 0x41); // IHL 1
    vary(&base, &|f| f[14] = 0x65); // IP version 6 in an IPv4 frame
    vary(&base, &|f| f[46] = 0xf0); // TCP data offset 15
    vary(&base, &|f| f[46] = 0x10); // TCP data offset 1
    vary(&base, &|f| f[20] = 0x3f); // more fragments, offset
    vary(&udp, &|f| {
        f[38..40].copy_from_slice(&0xffffu16.to_be_bytes())
    }); // UDP length
    vary(&udp, &|f| f[38..40].copy_from_slice(&3u16.to_be_bytes())); // below its header
    vary(&udp, &|f| {
        // The Gnutella header inside declares 4 GiB.
        let at = 42 + 19;
        f[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    });
    vary(&base, &|f| f.truncate(14)); // Ethernet header only
    vary(&base, &|f| f.truncate(3));
    vary(&base, &|f| f.clear());
    vary(&base, &|f| f[12..14].copy_from_slice(&[0x81, 0x00])); // a VLAN tag that is not there
    for v in &variants {
        w.push(v);
    }
    // A frame of 256 KiB of zeros, and one that claims more on the wire than it kept.
    w.push(&vec![0u8; 262_144]);
    w.push_cut(&base, 20);
    let out = run("lying-packets", w.bytes(), &["--json"]);
    readable(&out, "lying packets");
    let records = out.json();
    let summary = records.last().unwrap();
    assert_eq!(summary["frames"], variants.len() + 2);
    assert!(
        summary["unreadable_frames"].as_u64().unwrap() >= 8,
        "{summary}"
    );
    assert!(out.stderr.contains("headers unreadable"), "{}", out.stderr);
    // The datagram whose descriptor declares 4 GiB is not a Gnutella datagram.
    assert!(records
        .iter()
        .all(|r| r["kind"] != "descriptor" || r["length"].as_u64().unwrap() < 65536));
}

#[test]
fn random_bytes_on_the_gnutella_port() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xbad);
    let noise: Vec<u8> = (0..4 << 20).map(|_| rng.gen()).collect();
    let back: Vec<u8> = (0..1 << 20).map(|_| rng.gen()).collect();
    let mut pieces: Vec<(bool, &[u8])> = noise.chunks(536).map(|c| (true, c)).collect();
    pieces.extend(back.chunks(1460).map(|c| (false, c)));
    let mut w = PcapWriter::new();
    w.tcp_conversation(addr("10.0.0.1:40000"), addr("10.0.0.2:6346"), &pieces);
    w.tcp_midstream(addr("10.0.0.1:40001"), addr("10.0.0.2:6346"), &pieces, &[]);
    let started = Instant::now();
    let out = run("random-6346", w.bytes(), &[]);
    println!("{:?}: {}", started.elapsed(), out.summary());
    readable(&out, "random bytes");
    out.assert_summary_has(&["; 0 descriptors", "4 TCP directions not recognised"]);
    let notes = out
        .lines()
        .into_iter()
        .filter(|l| l.contains("they look compressed or encrypted"))
        .count();
    assert_eq!(notes, 4, "{}", out.stdout);
}

#[test]
fn tens_of_thousands_of_streams() {
    const STREAMS: u32 = 30_000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(30_000);
    let mut w = PcapWriter::new();
    let descriptors = [ping(1), query(2), pong(3), ping(4)].concat();
    for i in 0..STREAMS {
        let client = SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + i), 40000));
        let server = addr("10.255.0.1:6346");
        match i % 5 {
            // A connection attempt that got no answer.
            0 => {
                let syn = Transport::Tcp {
                    seq: i,
                    ack: 0,
                    syn: true,
                    fin: false,
                    rst: false,
                };
                w.push(&ethernet_frame(client, server, syn, &[]).unwrap());
            }
            // A handshake that never completes.
            1 => {
                w.tcp_midstream(
                    client,
                    server,
                    &[(true, b"GNUTELLA CONNECT/0.6\r\nUser-Agent: x\r\n")],
                    &[],
                );
            }
            // Random bytes, held while looking for descriptor headers.
            2 => {
                let junk: Vec<u8> = (0..rng.gen_range(1..600)).map(|_| rng.gen()).collect();
                w.tcp_midstream(client, server, &[(true, &junk)], &[]);
            }
            // Descriptors captured mid-connection.
            3 => {
                w.tcp_midstream(client, server, &[(true, &descriptors)], &[]);
            }
            // An OpenNap header that promises a frame that never comes.
            _ => {
                w.tcp_midstream(
                    client,
                    server,
                    &[(true, &[0x00, 0x20, 0x02, 0x00, b'a'])],
                    &[],
                );
            }
        }
    }
    let started = Instant::now();
    let out = run("many-streams", w.bytes(), &[]);
    println!("{:?}: {}", started.elapsed(), out.summary());
    readable(&out, "many streams");
    assert!(
        out.summary().contains(&format!("{STREAMS} TCP streams")),
        "{}",
        out.summary()
    );
    assert!(
        out.summary()
            .contains(&format!("{} descriptors", 4 * STREAMS / 5)),
        "{}",
        out.summary()
    );
}

/// A 0.4 link whose segments arrive retransmitted, overlapping, out of order
/// and duplicated, with retransmissions that disagree with what was first
/// sent: decoding follows the bytes delivered first, never panics, and
/// decodes every descriptor once.
#[test]
fn overlapping_and_retransmitted_segments() {
    let client = addr("10.0.0.1:40000");
    let server = addr("10.0.0.2:6346");
    let stream = [
        b"GNUTELLA CONNECT/0.4\n\n".to_vec(),
        ping(1),
        query(2),
        pong(3),
        query(4),
        ping(5),
        pong(6),
    ]
    .concat();
    let isn: u32 = u32::MAX - 40; // the sequence numbers wrap inside the stream
    let seg = |from: usize, to: usize, payload: Option<&[u8]>| {
        let tcp = Transport::Tcp {
            seq: isn.wrapping_add(1).wrapping_add(from as u32),
            ack: 1,
            syn: false,
            fin: false,
            rst: false,
        };
        ethernet_frame(client, server, tcp, payload.unwrap_or(&stream[from..to])).unwrap()
    };
    let syn = |seq: u32| {
        let tcp = Transport::Tcp {
            seq,
            ack: 0,
            syn: true,
            fin: false,
            rst: false,
        };
        ethernet_frame(client, server, tcp, &[]).unwrap()
    };
    let n = stream.len();
    let garbage = vec![0xeeu8; 40];
    let mut w = PcapWriter::new();
    w.push(&syn(isn));
    w.push(&syn(isn)); // SYN retransmitted
    let ok = Transport::Tcp {
        seq: 5000,
        ack: isn.wrapping_add(1),
        syn: false,
        fin: false,
        rst: false,
    };
    w.push(&ethernet_frame(server, client, ok, b"GNUTELLA OK\n\n").unwrap());
    w.push(&seg(0, 30, None));
    w.push(&seg(0, 30, None)); // retransmitted whole
    w.push(&seg(60, 90, None)); // early
    w.push(&seg(20, 70, None)); // overlaps both
    w.push(&seg(25, 65, Some(&garbage))); // a retransmission that disagrees: too late
    w.push(&seg(120, n, None)); // early, to the end
    w.push(&seg(100, 130, None)); // early, overlapping the one before
    w.push(&seg(90, 100, None)); // fills the hole
    w.push(&seg(0, n, None)); // everything again
    w.push(&seg(n - 5, n, Some(&garbage[..5]))); // a late disagreeing tail
    let fin = Transport::Tcp {
        seq: isn.wrapping_add(1).wrapping_add(n as u32),
        ack: 1,
        syn: false,
        fin: true,
        rst: false,
    };
    w.push(&ethernet_frame(client, server, fin, &[]).unwrap());
    let out = run("overlaps", w.bytes(), &["--json"]);
    readable(&out, "overlapping segments");
    let records = out.json();
    let want: Vec<String> = [1u8, 2, 3, 4, 5, 6]
        .iter()
        .map(|&i| {
            format!("{:02x}", i).repeat(8) + &format!("ff{}00", format!("{:02x}", i).repeat(6))
        })
        .collect();
    assert_eq!(descriptor_ids(&records), want, "{}", out.stdout);
    assert_eq!(records.last().unwrap()["gaps"], 0);
}

/// A descriptor header that declares 4 GiB, on a plain link, inside a deflate
/// link, and among the bytes of a late capture: reported, never allocated,
/// and (on the plain link) decoding resumes at the next descriptor.
#[test]
fn descriptors_that_declare_four_gib() {
    let mut huge = ping(9);
    huge[19..23].copy_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&[0x41; 100]);
    let after = [query(10), pong(11), ping(12)].concat();
    let plain = [ping(8), huge.clone(), after.clone()].concat();
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&[ping(8), huge.clone(), after.clone()].concat())
        .unwrap();
    let compressed = z.finish().unwrap();
    let mut w = PcapWriter::new();
    w.tcp_conversation(
        addr("10.0.0.1:40000"),
        addr("10.0.0.2:6346"),
        &[
            (true, b"GNUTELLA CONNECT/0.4\n\n"),
            (false, b"GNUTELLA OK\n\n"),
            (true, &plain),
        ],
    );
    w.tcp_conversation(
        addr("10.0.0.1:40001"),
        addr("10.0.0.3:6346"),
        &[
            (
                true,
                b"GNUTELLA CONNECT/0.6\r\nAccept-Encoding: deflate\r\n\r\n",
            ),
            (false, b"GNUTELLA/0.6 200 OK\r\n\r\n"),
            (
                true,
                b"GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n",
            ),
            (true, &compressed),
        ],
    );
    let late = [huge.clone(), after.clone(), huge.clone()].concat();
    w.tcp_midstream(
        addr("10.0.0.1:40002"),
        addr("10.0.0.4:6346"),
        &[(true, &late)],
        &[],
    );
    w.udp(addr("10.0.0.1:6346"), addr("10.0.0.5:6346"), &huge);
    let out = run("four-gib", w.bytes(), &["--json"]);
    readable(&out, "4 GiB descriptors");
    let records = out.json();
    let in_stream = |s: u64| -> Vec<&Value> {
        records
            .iter()
            .filter(|r| r["stream"] == s && r["transport"] == "tcp")
            .collect()
    };
    let ids = |rs: &[&Value]| -> Vec<u8> {
        rs.iter()
            .filter(|r| r["kind"] == "descriptor")
            .map(|r| u8::from_str_radix(&r["id"].as_str().unwrap()[..2], 16).unwrap())
            .collect()
    };
    // Plain link: the error, then the descriptors after the junk.
    let s0 = in_stream(0);
    assert_eq!(ids(&s0), vec![8, 10, 11, 12], "{}", out.stdout);
    let error = s0.iter().find(|r| r["kind"] == "error").unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("declared length 4294967295 exceeds the limit of 65536"),
        "{error}"
    );
    let resync = s0.iter().find(|r| r["kind"] == "resync").unwrap();
    assert_eq!(resync["cause"], "bad_header");
    assert_eq!(resync["skipped"], huge.len());
    // Deflate link: what came before, then the error; nothing is guessed after it.
    let s1 = in_stream(1);
    assert_eq!(ids(&s1), vec![8], "{}", out.stdout);
    assert!(s1.iter().any(|r| r["kind"] == "error"));
    // Late capture: the 4 GiB header is skipped, the real ones found.
    assert_eq!(ids(&in_stream(2)), vec![10, 11, 12], "{}", out.stdout);
    let summary = records.last().unwrap();
    assert_eq!(summary["gnutella_datagrams"], 0);
}

/// Heads that never end or declare absurd lengths: a handshake block, an HTTP
/// head and a GIV line are cut off at their caps; an OpenNap frame declaring
/// 64 KiB is not taken for OpenNap; an HTTP body length beyond u64 is read as
/// "to the end of the connection" (skipped as it comes, never buffered).
#[test]
fn heads_that_never_end_or_declare_absurd_lengths() {
    let endless_handshake = [
        b"GNUTELLA CONNECT/0.6\r\n".to_vec(),
        b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
            .repeat(50_000),
    ]
    .concat();
    let endless_http = [
        b"HTTP/1.1 200 OK\r\n".to_vec(),
        b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(50_000),
    ]
    .concat();
    let endless_giv = [b"GIV 1:".to_vec(), vec![b'a'; 1 << 20]].concat();
    let mut w = PcapWriter::new();
    let segments = |bytes: &[u8]| -> Vec<(bool, Vec<u8>)> {
        bytes.chunks(1460).map(|c| (true, c.to_vec())).collect()
    };
    for (i, bytes) in [&endless_handshake, &endless_http, &endless_giv]
        .iter()
        .enumerate()
    {
        let owned = segments(bytes);
        let pieces: Vec<(bool, &[u8])> = owned.iter().map(|(d, b)| (*d, &b[..])).collect();
        w.tcp_conversation(
            SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 41000 + i as u16)),
            addr("10.0.0.2:6346"),
            &pieces,
        );
    }
    w.tcp_conversation(
        addr("10.0.0.1:42000"),
        addr("10.0.0.2:6346"),
        &[
            (true, b"GET /a HTTP/1.1\r\n\r\n"),
            (
                false,
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999999\r\n\r\nabc",
            ),
        ],
    );
    w.tcp_conversation(
        addr("10.0.0.1:42001"),
        addr("10.0.0.2:6346"),
        &[
            (true, b"GET /a HTTP/1.1\r\n\r\n"),
            (
                false,
                b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nabc",
            ),
        ],
    );
    // OpenNap: a login frame declaring 65535 bytes, then a promise never kept.
    w.tcp_conversation(
        addr("10.0.0.1:42002"),
        addr("10.0.0.2:8888"),
        &[(true, &[0xff, 0xff, 0x02, 0x00, b'a', b'b'])],
    );
    let out = run("endless-heads", w.bytes(), &[]);
    readable(&out, "endless heads");
    println!("{}", out.stdout);
    let errors: Vec<&str> = out
        .lines()
        .into_iter()
        .filter(|l| l.contains("error:"))
        .collect();
    assert!(errors.len() >= 3, "{}", out.stdout);
    for (stream, what) in [(0, "handshake"), (1, "HTTP response head"), (2, "GIV")] {
        assert!(
            errors
                .iter()
                .any(|l| l.contains(&format!("tcp#{stream} ")) && l.contains(what)),
            "tcp#{stream} {what}: {}",
            out.stdout
        );
    }
}

/// A reader that goes away: hazel-trace stops quietly with exit 0.
#[test]
fn output_closed_early() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hazel-trace"))
        .arg(trace("ndpi-gtkg-0.6-2022.pcap"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // The read end is closed here.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < LIMIT, "hazel-trace did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn not_a_capture_exits_1() {
    let dir = std::env::temp_dir();
    let out = hazel_trace_bounded(&[], &dir, LIMIT);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("cannot read"), "{}", out.stderr);
    let out = run("pcapng-magic-only", &[0x0a, 0x0d, 0x0d, 0x0a], &[]);
    assert!(matches!(out.code, 0 | 1), "{}", out.stderr);
}
