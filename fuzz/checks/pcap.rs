#![allow(dead_code)]
//! What must hold for any capture file and any TCP segment sequence. Shared
//! by the `pcap` and `tcp_reassembly` fuzz targets and by the regression
//! replay in protocol/tests/conformance_pcap.rs.

use std::net::SocketAddr;

use hazel_protocol::pcap::{
    decode_frame, read_capture, Capture, CaptureError, TcpEvent, TcpFlags, TcpReassembler,
    TcpSegment, Timestamp,
};

/// Any bytes as a capture file: frames are numbered upwards, lie inside the
/// input, and the reader stops after damage it cannot resume from; the
/// reassembled streams account for every delivered byte.
pub fn check_capture(data: &[u8]) {
    if let Ok(capture) = Capture::open(data) {
        let mut last = 0u32;
        let mut stopped = false;
        for item in capture.frames().take(1 << 20) {
            assert!(!stopped, "frames after a final error");
            match item {
                Ok(frame) => {
                    assert!(frame.number > last);
                    last = frame.number;
                    assert!(frame.data.len() <= data.len());
                    let _ = decode_frame(&frame);
                }
                Err(CaptureError::Damaged {
                    resumed_at: Some(at),
                    offset,
                    ..
                }) => assert!(at > offset && at <= data.len()),
                Err(_) => stopped = true,
            }
        }
    }
    if let Ok(contents) = read_capture(data) {
        for stream in &contents.tcp {
            for half in &stream.halves {
                let delivered: usize = half.segments.iter().map(|s| s.len).sum();
                assert_eq!(delivered, half.bytes.len());
                for pair in half.segments.windows(2) {
                    assert!(pair[0].offset + pair[0].len as u64 <= pair[1].offset);
                }
            }
        }
    }
}

/// The input as TCP segments of one connection, 8 bytes each (flags,
/// 3-byte sequence offset, 2-byte length, direction, unused): whatever the
/// order, overlap, flags or direction, each direction's output has
/// contiguous offsets (data and gaps), and nothing panics.
pub fn check_reassembly(data: &[u8]) {
    let client: SocketAddr = "192.0.2.1:1000".parse().unwrap();
    let server: SocketAddr = "192.0.2.2:2000".parse().unwrap();
    let isn = 0xffff_ff00u32;
    let mut r = TcpReassembler::new();
    let mut events = Vec::new();
    // Payload bytes follow their sequence number, so overlaps agree.
    let byte_at = |n: u64| (n % 251) as u8;
    for (i, rec) in data.chunks_exact(8).take(4096).enumerate() {
        let flags = rec[0];
        let offset = u64::from(u32::from_le_bytes([rec[1], rec[2], rec[3], 0])) % 200_000;
        let len = usize::from(u16::from_le_bytes([rec[4], rec[5]])) % 3000;
        let from_client = rec[6] & 1 == 0;
        let payload: Vec<u8> = (0..len as u64).map(|k| byte_at(offset + k)).collect();
        let syn = flags & 1 != 0;
        let seq = if syn {
            isn
        } else {
            isn.wrapping_add(1).wrapping_add(offset as u32)
        };
        let (src, dst) = if from_client {
            (client, server)
        } else {
            (server, client)
        };
        let seg = TcpSegment {
            src,
            dst,
            seq,
            ack: 0,
            flags: TcpFlags {
                syn,
                ack: flags & 2 != 0,
                fin: flags & 4 != 0,
                rst: flags & 8 != 0,
                psh: false,
            },
            payload: if syn { &[] } else { &payload },
        };
        r.push(i as u32 + 1, Timestamp::default(), &seg, &mut events);
    }
    r.finish(&mut events);
    let mut next = std::collections::HashMap::new();
    for e in &events {
        match e {
            TcpEvent::Data {
                stream,
                dir,
                offset,
                data,
                ..
            } => {
                let n = next.entry((*stream, *dir)).or_insert(0u64);
                assert_eq!(*offset, *n, "data offsets are contiguous");
                assert!(!data.is_empty());
                *n += data.len() as u64;
            }
            TcpEvent::Gap {
                stream,
                dir,
                offset,
                len,
                ..
            } => {
                let n = next.entry((*stream, *dir)).or_insert(0u64);
                assert_eq!(*offset, *n, "gaps start where data stopped");
                assert!(*len > 0);
                *n += len;
            }
            _ => {}
        }
    }
}
