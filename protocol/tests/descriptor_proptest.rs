//! Property tests: every descriptor type and GGEP block round-trips
//! (`decode(encode(x)) == x`, and `encoded_len` is the real length), any
//! byte sequence decodes to a value or an error without panicking, and a
//! valid stream split at random points comes out of the framer whole, with
//! and without the zlib layer.

use std::net::Ipv4Addr;

use hazel_protocol::descriptor::{
    Bye, Descriptor, Extension, HitResult, Payload, Ping, Pong, Push, QhdTrailer, Query, QueryHit,
    ServentId, SpeedField,
};
use hazel_protocol::framer::{Deflater, Framer};
use hazel_protocol::ggep::{Ggep, GgepExtension, GgepId};
use hazel_protocol::header::{DescriptorId, Header};
use hazel_protocol::huge::Urn;
use proptest::collection::vec;
use proptest::prelude::*;

/// Bytes that may not be 0x00 (results end at a NUL) nor 0x1C.
fn plain_bytes(min: usize, max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(
        any::<u8>().prop_filter("no NUL / 0x1C", |b| *b != 0 && *b != 0x1C),
        min..max,
    )
}

fn ggep_id(no_nul: bool) -> impl Strategy<Value = GgepId> {
    vec(any::<u8>(), 1..16)
        .prop_filter("NUL-free when asked", move |id| !no_nul || !id.contains(&0))
        .prop_map(|id| GgepId::new(&id).expect("1..=15 bytes"))
}

fn ggep_extension(no_nul: bool) -> impl Strategy<Value = GgepExtension> {
    (
        ggep_id(no_nul),
        any::<bool>(),
        any::<bool>(),
        // Lengths up to 5000 exercise all three length-field forms (1, 2, 3 bytes).
        prop_oneof![vec(any::<u8>(), 0..80), vec(any::<u8>(), 4090..5000)],
    )
        .prop_map(move |(id, cobs, deflate, mut data)| {
            if no_nul {
                data.iter_mut().for_each(|b| *b = (*b).max(1));
            }
            GgepExtension {
                id,
                cobs,
                deflate,
                data,
            }
        })
}

fn ggep(no_nul: bool) -> impl Strategy<Value = Ggep> {
    vec(ggep_extension(no_nul), 1..4).prop_map(Ggep::new)
}

fn urn() -> impl Strategy<Value = Urn> {
    prop_oneof![
        any::<[u8; 20]>().prop_map(Urn::Sha1),
        (any::<[u8; 20]>(), any::<[u8; 24]>())
            .prop_map(|(sha1, tiger)| Urn::Bitprint { sha1, tiger }),
        "urn:(ed2khash|md5|btih):[0-9a-f]{0,40}".prop_map(|s| Urn::Other(s.into_bytes())),
    ]
}

/// Extensions as they appear in a Query (`in_hit = false`) or a result.
fn extension(in_hit: bool) -> impl Strategy<Value = Extension> {
    prop_oneof![
        urn().prop_map(Extension::Urn),
        plain_bytes(0, 40).prop_map(|mut b| {
            b.insert(0, b'<');
            Extension::Xml(b)
        }),
        "[a-tv-z ][a-z0-9 =.]{0,30}".prop_map(|s| Extension::Text(s.into_bytes())),
        ggep(in_hit).prop_map(Extension::Ggep),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    (
        any::<[u8; 2]>(),
        plain_bytes(0, 60),
        vec(extension(false), 0..4),
        any::<bool>(),
    )
        .prop_map(|(speed, search, extensions, stray_nul)| Query {
            speed: SpeedField(speed),
            search,
            extensions,
            stray_nul,
        })
}

fn hit_result() -> impl Strategy<Value = HitResult> {
    (
        any::<u32>(),
        any::<u32>(),
        plain_bytes(0, 60),
        vec(extension(true), 0..4),
    )
        .prop_map(|(index, size, name, extensions)| HitResult {
            index,
            size,
            name,
            extensions,
        })
}

fn trailer() -> impl Strategy<Value = QhdTrailer> {
    (
        any::<[u8; 4]>(),
        vec(any::<u8>(), 0..6),
        vec(any::<u8>(), 0..40),
    )
        .prop_map(|(vendor, open_data, private_data)| QhdTrailer {
            vendor,
            open_data,
            private_data,
        })
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        proptest::option::of(ggep(false)).prop_map(|ggep| Payload::Ping(Ping { ggep })),
        (
            any::<u16>(),
            ipv4(),
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(ggep(false))
        )
            .prop_map(|(port, ip, files, kbytes, ggep)| Payload::Pong(Pong {
                port,
                ip,
                files,
                kbytes,
                ggep
            })),
        query().prop_map(Payload::Query),
        (
            any::<u16>(),
            ipv4(),
            any::<u32>(),
            vec(hit_result(), 0..5),
            proptest::option::of(trailer()),
            any::<[u8; 16]>()
        )
            .prop_map(|(port, ip, speed, results, trailer, id)| {
                Payload::QueryHit(QueryHit {
                    port,
                    ip,
                    speed,
                    results,
                    trailer,
                    servent_id: ServentId(id),
                })
            }),
        (
            any::<[u8; 16]>(),
            any::<u32>(),
            ipv4(),
            any::<u16>(),
            proptest::option::of(ggep(false))
        )
            .prop_map(|(id, file_index, ip, port, ggep)| Payload::Push(Push {
                servent_id: ServentId(id),
                file_index,
                ip,
                port,
                ggep
            })),
        (any::<u16>(), plain_bytes(0, 60))
            .prop_map(|(code, message)| Payload::Bye(Bye { code, message })),
        (
            any::<u8>().prop_filter("unknown code", |c| ![0, 1, 2, 0x40, 0x80, 0x81].contains(c)),
            vec(any::<u8>(), 0..100)
        )
            .prop_map(|(payload_type, bytes)| Payload::Unknown {
                payload_type,
                bytes
            }),
    ]
}

fn descriptor() -> impl Strategy<Value = Descriptor> {
    (any::<[u8; 16]>(), any::<u8>(), any::<u8>(), payload()).prop_map(|(id, ttl, hops, payload)| {
        Descriptor {
            id: DescriptorId(id),
            ttl,
            hops,
            payload,
        }
    })
}

/// Sorted cut points inside `0..=len`.
fn cuts(len: usize, raw: &[usize]) -> Vec<usize> {
    let mut c: Vec<usize> = raw.iter().map(|r| r % (len + 1)).collect();
    c.push(0);
    c.push(len);
    c.sort_unstable();
    c.dedup();
    c
}

fn drain(framer: &mut Framer, out: &mut Vec<Descriptor>) {
    // Bounded: each frame consumes at least 23 buffered bytes.
    for _ in 0..100_000 {
        match framer.next_descriptor().expect("valid stream") {
            Some((_, d)) => out.push(d.expect("frame decodes")),
            None => return,
        }
    }
    panic!("framer never ran dry");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn descriptor_round_trip(d in descriptor()) {
        let bytes = d.to_bytes();
        prop_assert_eq!(bytes.len(), d.encoded_len());
        let back = Descriptor::parse(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&back, &d);
        prop_assert_eq!(&back.to_bytes(), &bytes);
        prop_assert_eq!(Header::parse(&bytes).unwrap(), d.header());
    }

    #[test]
    fn ggep_round_trip(g in ggep(false)) {
        let mut bytes = Vec::new();
        g.encode(&mut bytes);
        prop_assert_eq!(bytes.len(), g.encoded_len());
        prop_assert_eq!(Ggep::parse(&bytes).unwrap(), g);
    }

    #[test]
    fn ggep_values_round_trip(id in ggep_id(false), value in vec(any::<u8>(), 0..300),
                              deflate in any::<bool>(), cobs in any::<bool>()) {
        let ext = GgepExtension::encoded(id, &value, deflate, cobs);
        if cobs {
            prop_assert!(!ext.data.contains(&0));
        }
        prop_assert_eq!(ext.value().unwrap(), value);
    }

    #[test]
    fn any_bytes_decode_without_panic(bytes in vec(any::<u8>(), 0..200), ty in any::<u8>()) {
        let _ = Descriptor::parse(&bytes);
        let _ = Payload::parse(ty.into(), &bytes);
        let _ = Ggep::parse(&bytes);
        // Whatever decodes re-encodes to the same bytes.
        if let Ok(d) = Descriptor::parse(&bytes) {
            prop_assert_eq!(d.to_bytes(), bytes);
        }
    }

    #[test]
    fn framer_reassembles_split_stream(ds in vec(descriptor(), 1..8),
                                       raw_cuts in vec(any::<usize>(), 0..12)) {
        let stream: Vec<u8> = ds.iter().flat_map(|d| d.to_bytes()).collect();
        let mut framer = Framer::new();
        let mut got = Vec::new();
        for w in cuts(stream.len(), &raw_cuts).windows(2) {
            framer.push(&stream[w[0]..w[1]]).expect("valid stream");
            drain(&mut framer, &mut got);
        }
        prop_assert_eq!(got, ds);
        prop_assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn deflated_framer_reassembles_split_stream(ds in vec(descriptor(), 1..8),
                                                batch_cuts in vec(any::<usize>(), 0..4),
                                                wire_cuts in vec(any::<usize>(), 0..12)) {
        let stream: Vec<u8> = ds.iter().flat_map(|d| d.to_bytes()).collect();
        // The sender flushes after each batch; the batches split descriptors anywhere.
        let mut deflater = Deflater::new();
        let mut wire = Vec::new();
        for w in cuts(stream.len(), &batch_cuts).windows(2) {
            deflater.compress_batch(&stream[w[0]..w[1]], &mut wire);
        }
        let mut framer = Framer::deflated();
        let mut got = Vec::new();
        for w in cuts(wire.len(), &wire_cuts).windows(2) {
            framer.push(&wire[w[0]..w[1]]).expect("compressed bytes are queued");
            drain(&mut framer, &mut got);
        }
        prop_assert_eq!(got, ds);
    }
}
